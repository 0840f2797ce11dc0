"""The simulator's own ``/_sim`` endpoints: read and set the fault plan, read and reset request stats."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from trading_data.sources.simulator.faults import Fault, FaultInjector, RequestStats
from trading_data.sources.simulator.protocol import dumps


def _json(payload: object, status: int = 200) -> Response:
    return Response(dumps(payload), status, media_type="application/json")


def admin_routes(faults: FaultInjector, stats: RequestStats) -> list[Route]:
    """``/_sim/faults`` (GET, POST a plan, DELETE) and ``/_sim/stats`` (GET, DELETE)."""

    def plan_body() -> dict[str, object]:
        return {
            "faults": [f.to_dict() for f in faults.faults],
            "rate_limit_per_second": faults.rate_limit_per_second,
            "rate_limit_window_seconds": faults.rate_limit_window_seconds,
        }

    async def set_faults(request: Request) -> Response:
        payload = await request.json()
        if isinstance(payload, dict):
            items = payload.get("faults", [])
            if "rate_limit_per_second" in payload:
                faults.rate_limit_per_second = payload["rate_limit_per_second"]
        else:
            items = payload
        try:
            plan = [Fault.from_dict(item) for item in items]
        except (TypeError, ValueError) as exc:
            return _json({"error": str(exc)}, 400)
        faults.replace(plan)
        return _json(plan_body())

    async def get_faults(request: Request) -> Response:
        return _json(plan_body())

    async def clear_faults(request: Request) -> Response:
        faults.clear()
        return _json({"faults": []})

    async def get_stats(request: Request) -> Response:
        return _json(stats.snapshot())

    async def reset_stats(request: Request) -> Response:
        stats.reset()
        return _json(stats.snapshot())

    return [
        Route("/_sim/faults", set_faults, methods=["POST"]),
        Route("/_sim/faults", get_faults, methods=["GET"]),
        Route("/_sim/faults", clear_faults, methods=["DELETE"]),
        Route("/_sim/stats", get_stats, methods=["GET"]),
        Route("/_sim/stats", reset_stats, methods=["DELETE"]),
    ]
