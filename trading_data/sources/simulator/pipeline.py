"""The path of every vendor request: stats, rate limit, faults, auth, recorded answer, endpoint, body faults.

``/_sim/...`` admin endpoints do not pass here. Endpoints are plain functions ``(market, call) -> Reply``
run in a worker thread; a :class:`~trading_data.sources.simulator.protocol.BadRequest` they raise
becomes the vendor's own 400 (Polygon) or 422 (Unusual Whales) body.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from trading_data.sources.simulator.fault_replies import (
    SimulatedConnectionReset,
    abort_connection,
    fault_reply,
    rate_limited,
)
from trading_data.sources.simulator.faults import RESPONSE_FAULTS, FaultInjector, RequestStats
from trading_data.sources.simulator.market import SimulatedMarket
from trading_data.sources.simulator.protocol import (
    POLYGON,
    UNUSUAL_WHALES,
    BadRequest,
    Call,
    Reply,
    dumps,
    polygon_error,
)
from trading_data.sources.simulator.recorded import RecordedKey, query_key
from trading_data.sources.simulator.unusual_whales import UsageCounter

Endpoint = Callable[[SimulatedMarket, Call], Reply]
# Faults spent before the endpoint runs; truncated_json is applied to its body afterwards.
_REQUEST_FAULTS = RESPONSE_FAULTS | {"latency", "timeout", "truncated_json"}


def send(reply: Reply) -> Response:
    return Response(reply.body, status_code=reply.status, media_type=reply.media_type, headers=reply.headers)


def check_auth(request: Request, vendor: str) -> Reply | None:
    """The vendor's 401 when the request carries no key (Polygon: bearer or apiKey; UW: bearer)."""
    header = request.headers.get("authorization", "")
    token = header[7:].strip() if header.lower().startswith("bearer ") else ""
    if vendor == POLYGON:
        if not token and not request.query_params.get("apiKey"):
            return polygon_error(401, "API Key was not provided")
        return None
    if not token:
        return Reply(401, dumps({"code": "unauthorized", "message": "Missing or invalid API token"}))
    return None


@dataclass
class VendorPipeline:
    """Everything a vendor request needs: the market, the fault plan, stats, recordings, UW usage."""

    market: SimulatedMarket
    faults: FaultInjector
    stats: RequestStats
    recorded: dict[RecordedKey, bytes]
    usage: UsageCounter = field(default_factory=UsageCounter)

    def route(self, path: str, endpoint: Endpoint) -> Route:
        """A GET route answering ``path`` through the pipeline with ``endpoint``."""

        async def handle(request: Request) -> Response:
            return await self.handle(request, endpoint)

        return Route(path, handle, methods=["GET"])

    async def handle(self, request: Request, endpoint: Endpoint) -> Response:
        path = request.url.path
        vendor = UNUSUAL_WHALES if path.startswith("/api/") else POLYGON
        self.stats.record(path)
        if not self.stats.admit(
            self.faults.rate_limit_per_second, window=self.faults.rate_limit_window_seconds
        ):
            return send(rate_limited())
        kinds = {f.kind: f for f in self.faults.take(path, vendor, _REQUEST_FAULTS)}
        if "latency" in kinds:
            await asyncio.sleep(kinds["latency"].seconds if kinds["latency"].seconds is not None else 0.5)
        if "timeout" in kinds:
            await asyncio.sleep(kinds["timeout"].seconds if kinds["timeout"].seconds is not None else 30.0)
        if "connection_reset" in kinds:
            if abort_connection(request.scope):
                return Response(b"", status_code=200)  # never reaches the client: the socket is gone
            raise SimulatedConnectionReset("simulated connection reset")
        early = fault_reply(kinds) or check_auth(request, vendor)
        if early is not None:
            return send(early)
        reply = self._recorded(request, vendor) or await self._answer(request, vendor, endpoint)
        if "truncated_json" in kinds and reply.status == 200:
            reply = Reply(200, reply.body[: max(len(reply.body) // 2, 1)], reply.media_type, reply.headers)
        if vendor == UNUSUAL_WHALES and reply.status == 200:
            reply.headers.update(self.usage.headers(self.market.now()))
        return send(reply)

    def _recorded(self, request: Request, vendor: str) -> Reply | None:
        if vendor != POLYGON or not self.recorded:
            return None
        body = self.recorded.get((request.url.path, query_key(request.url.query)))
        return Reply(200, body) if body is not None else None

    async def _answer(self, request: Request, vendor: str, endpoint: Endpoint) -> Reply:
        path = request.url.path
        params = {k: v for k, v in request.query_params.items() if k != "apiKey"}
        query = "&".join(f"{k}={v}" for k, v in params.items())
        call = Call(path, vendor, params, dict(request.path_params), query, self.faults)
        try:
            return await run_in_threadpool(endpoint, self.market, call)
        except BadRequest as exc:
            if vendor == POLYGON:
                return polygon_error(400, str(exc))
            url = f"{request.url.netloc}{path}" + (f"?{query}" if query else "")
            return Reply(422, dumps({"msg": str(exc), "path": path, "query": query, "url": url}))
        except Exception:
            if vendor == POLYGON:
                raise
            return Reply(500, b"Something went wrong", "text/plain")  # Unusual Whales' plain-text 500
