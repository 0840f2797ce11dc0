"""The HTTP client for one vendor account: ``VendorHTTP`` wraps one ``httpx.AsyncClient`` and adds what
every vendor call needs:

* base URL and ``Authorization: Bearer`` on every request (including followed ``next_url`` pages),
* the account's shared client-side rate limiter (:mod:`trading_data.sources.rate_limit`),
* retries (tenacity, :mod:`trading_data.sources.retry`) on 413/429/499/500/502/503/504, timeouts and
  connection errors, honouring ``Retry-After``; no retries on 401/403/404/422,
* strict JSON: a malformed or truncated body is retried and then raises ``MalformedResponse``, it
  never becomes an empty result,
* statistics (:mod:`trading_data.sources.stats`) for Dagster metadata,
* messages passed through :func:`trading_data.redact.redact` with the key, so none carries it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any, ClassVar, Self

import httpx
import orjson
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception_type, stop_after_attempt

from trading_data.redact import redact
from trading_data.sources.errors import (
    MalformedResponse,
    VendorAuthError,
    VendorError,
    VendorNotFound,
    VendorRequestError,
    VendorUnavailable,
)
from trading_data.sources.paging import QueryParams
from trading_data.sources.rate_limit import RateLimit, shared_rate_limiter
from trading_data.sources.rate_limit_store import PROCESS, RateLimitStore
from trading_data.sources.retry import RETRYABLE_STATUSES, RetryPolicy, Transient, parse_retry_after
from trading_data.sources.stats import ClientStats

log = logging.getLogger(__name__)

BodyCheck = Callable[[Any], str | None]


def _vendor_message(response: httpx.Response) -> str | None:
    """The vendor's error message from a JSON body (``error``, ``message`` or ``msg``), if any."""
    if "json" not in response.headers.get("content-type", ""):
        return None
    try:
        body = orjson.loads(response.content)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(body, dict):
        return None
    for key in ("error", "message", "msg", "code"):
        value = body.get(key)
        if isinstance(value, str) and value.strip():
            return value.strip()
    return None


class VendorHTTP:
    """An async HTTP client for one vendor account. Use as ``async with VendorHTTP(...) as http``;
    page with :func:`trading_data.sources.paging.iter_pages` / :func:`~trading_data.sources.paging.paginate`.

    ``env_var`` names the variable that holds the key, for error messages. ``unparsed_error_statuses``
    lists statuses whose bodies are undocumented and must not be parsed (Unusual Whales 401/429).
    ``body_check`` returns a problem description when a 2xx JSON body has the wrong shape.
    ``sleep`` is awaited for retry waits (tests pass a recorder). ``rate_limit_store`` says where the
    account's window lives (default: this process; see :mod:`trading_data.sources.rate_limit_store`).
    """

    def __init__(
        self,
        *,
        vendor: str,
        base_url: str,
        api_key: str | None,
        env_var: str,
        rate_limit: RateLimit,
        rate_limit_store: RateLimitStore = PROCESS,
        retry: RetryPolicy | None = None,
        timeout: float | httpx.Timeout = 30.0,
        transport: httpx.AsyncBaseTransport | None = None,
        headers: Mapping[str, str] | None = None,
        usage_header_prefix: str | None = None,
        unparsed_error_statuses: Iterable[int] = (),
        body_check: BodyCheck | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ):
        self.vendor = vendor
        self.env_var = env_var
        self.retry = retry or RetryPolicy()
        self.stats = ClientStats(vendor=vendor)
        self.limiter = shared_rate_limiter(vendor, api_key, rate_limit, rate_limit_store)
        self._api_key = api_key
        self._usage_prefix = usage_header_prefix
        self._unparsed = frozenset(unparsed_error_statuses)
        self._body_check = body_check
        self._sleep = sleep
        all_headers = {"Accept": "application/json", "User-Agent": "trading_data"}
        all_headers.update(headers or {})
        if api_key:
            all_headers["Authorization"] = f"Bearer {api_key}"
        self._client = httpx.AsyncClient(
            base_url=base_url,
            headers=all_headers,
            timeout=timeout,
            transport=transport,
            follow_redirects=False,
        )

    def __repr__(self) -> str:  # never show the key
        return f"VendorHTTP(vendor={self.vendor!r}, base_url={str(self._client.base_url)!r})"

    @property
    def base_url(self) -> str:
        return str(self._client.base_url)

    async def aclose(self) -> None:
        await self._client.aclose()

    async def __aenter__(self) -> VendorHTTP:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    # -- single requests ---------------------------------------------------------------------------

    async def get_json(self, path: str, params: QueryParams | None = None) -> Any:
        """GET ``path`` (relative to the base URL) and return its JSON body, with retries."""
        body, _ = await self.get_response(path, params)
        return body

    async def get_response(self, path: str, params: QueryParams | None = None) -> tuple[Any, httpx.Response]:
        """Like :meth:`get_json`, also returning the final ``httpx.Response`` (for headers)."""
        clean = {k: _param(v) for k, v in (params or {}).items() if v is not None}
        retrying = AsyncRetrying(
            stop=stop_after_attempt(max(1, self.retry.attempts)),
            wait=self._wait,
            retry=retry_if_exception_type(Transient),
            sleep=self._sleep,
            before_sleep=self._before_sleep,
            reraise=True,
        )
        try:
            async for attempt in retrying:
                with attempt:
                    return await self._send(path, clean)
        except Transient as exc:
            final = exc.final
            raise type(final)(
                f"{final} (gave up after {self.retry.attempts} attempts)",
                vendor=final.vendor,
                status=final.status,
                url=final.url,
            ) from exc
        raise AssertionError("unreachable")  # pragma: no cover

    def _wait(self, state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, Transient) and exc.retry_after is not None:
            wait = min(exc.retry_after, self.retry.max_retry_after)
        else:
            rate_limited = isinstance(exc, Transient) and exc.rate_limited
            wait = self.retry.backoff(state.attempt_number, rate_limited=rate_limited)
        self.stats.retry_waits.append(wait)
        return wait

    def _before_sleep(self, state: RetryCallState) -> None:
        self.stats.retries += 1
        exc = state.outcome.exception() if state.outcome else None
        wait = state.next_action.sleep if state.next_action else 0.0
        log.warning(
            "%s: retrying in %.1fs after attempt %d: %s", self.vendor, wait, state.attempt_number, exc
        )

    def describe(self, method: str, url: httpx.URL | str) -> str:
        """``method`` and the path and query of ``url``, safe to show."""
        return redact(f"{method} {httpx.URL(str(url)).raw_path.decode('ascii')}", [self._api_key])

    async def _send(self, path: str, params: dict[str, str]) -> tuple[Any, httpx.Response]:
        request = self._client.build_request("GET", path, params=params or None)
        where = self.describe("GET", request.url)
        permit = await self.limiter.acquire()
        self.stats.rate_limit_wait_seconds += permit.waited
        self.stats.requests += 1
        started = time.perf_counter()
        try:
            try:
                response = await self._client.send(request)
            finally:
                # The vendor has counted the request by now (or never will): its window starts here.
                self.limiter.settle(permit)
        except httpx.TimeoutException as exc:
            self.stats.transport_errors += 1
            raise Transient(
                VendorUnavailable(
                    f"{self.vendor} {where}: timed out ({type(exc).__name__})",
                    vendor=self.vendor,
                    url=where,
                )
            ) from exc
        except httpx.TransportError as exc:
            self.stats.transport_errors += 1
            # A body cut short (Content-Length mismatch, connection closed mid-body) lands here too.
            raise Transient(
                VendorUnavailable(
                    f"{self.vendor} {where}: connection error ({type(exc).__name__}: "
                    f"{redact(str(exc), [self._api_key]) or 'no detail'})",
                    vendor=self.vendor,
                    url=where,
                )
            ) from exc
        finally:
            self.stats.latencies_ms.append((time.perf_counter() - started) * 1000)
        self.stats.bytes_received += len(response.content)
        self._read_usage(response)
        body = self._handle(response, where)
        # httpx binds a response to its (already read and closed) stream in a reference cycle: without
        # breaking it, each page's body (~10 MB for 50,000 quotes) waits for the cyclic GC.
        response.stream = httpx.ByteStream(b"")
        return body, response

    def _read_usage(self, response: httpx.Response) -> None:
        if self._usage_prefix:
            for name, value in response.headers.items():
                if name.lower().startswith(self._usage_prefix):
                    self.stats.usage[name.lower()] = value

    def _handle(self, response: httpx.Response, where: str) -> Any:
        status = response.status_code
        if 200 <= status < 300:
            return self._parse(response, where)
        message = None if status in self._unparsed else _vendor_message(response)
        message = redact(message, [self._api_key]) if message else None
        quoted = f': "{message}"' if message else ""
        reason = f"HTTP {status} {response.reason_phrase}".rstrip()
        if status in (401, 403):
            what = "rejected the credentials" if status == 401 else "refused access (not entitled)"
            hint = (
                f"set {self.env_var} to a valid key"
                if status == 401
                else f"check the plan behind {self.env_var}"
            )
            if not self._api_key:
                hint = f"{self.env_var} is not set"
            raise VendorAuthError(
                f"{self.vendor} {what} ({reason}){quoted}; {hint}. Request: {where}",
                vendor=self.vendor,
                status=status,
                url=where,
            )
        if status in RETRYABLE_STATUSES:
            if status == 429:
                self.stats.rate_limited += 1
            else:
                self.stats.server_errors += 1
            kind = response.headers.get("content-type", "").split(";")[0] or "no content-type"
            detail = quoted or f" ({kind} body)"
            raise Transient(
                VendorUnavailable(
                    f"{self.vendor} {where}: {reason}{detail}", vendor=self.vendor, status=status, url=where
                ),
                retry_after=parse_retry_after(response.headers.get("retry-after")),
                rate_limited=status == 429,
            )
        error_cls = VendorNotFound if status == 404 else VendorRequestError if status < 500 else VendorError
        raise error_cls(
            f"{self.vendor} {where}: {reason}{quoted}", vendor=self.vendor, status=status, url=where
        )

    def _parse(self, response: httpx.Response, where: str) -> Any:
        problem: str | None
        try:
            # orjson: 2-3x faster than json on 50,000-row pages, and decoding runs on the event loop,
            # where it holds back every other request in flight. Strict JSON (no NaN/Infinity).
            body = orjson.loads(response.content)
        except orjson.JSONDecodeError as exc:
            body, problem = None, f"body is not valid JSON ({exc}; {len(response.content)} bytes)"
        else:
            problem = self._body_check(body) if self._body_check else None
        if problem:
            self.stats.malformed += 1
            raise Transient(
                MalformedResponse(
                    f"{self.vendor} {where}: malformed response: {problem}",
                    vendor=self.vendor,
                    status=response.status_code,
                    url=where,
                )
            )
        return body


def _param(value: str | int | float | bool) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


class VendorClient:
    """What every vendor client shares: one :class:`VendorHTTP` built from the vendor's defaults, its
    stats, and ``async with`` closing it. Subclasses set the class attributes and add the endpoints."""

    vendor: ClassVar[str]
    env_var: ClassVar[str]
    default_base_url: ClassVar[str]
    default_rate_limit: ClassVar[RateLimit]
    http_options: ClassVar[Mapping[str, Any]] = {}
    """Vendor-specific VendorHTTP options (body check, usage headers, ...)."""

    def __init__(self, http: VendorHTTP):
        self.http = http

    @classmethod
    def create(
        cls,
        api_key: str | None,
        *,
        base_url: str | None = None,
        rate_limit: RateLimit | None = None,
        retry: RetryPolicy | None = None,
        timeout: float | httpx.Timeout = 30.0,
        transport: httpx.AsyncBaseTransport | None = None,
        **http_options: Any,
    ) -> Self:
        return cls(
            VendorHTTP(
                vendor=cls.vendor,
                base_url=base_url or cls.default_base_url,
                api_key=api_key,
                env_var=cls.env_var,
                rate_limit=rate_limit or cls.default_rate_limit,
                retry=retry,
                timeout=timeout,
                transport=transport,
                **{**cls.http_options, **http_options},
            )
        )

    @property
    def stats(self) -> ClientStats:
        return self.http.stats

    async def aclose(self) -> None:
        await self.http.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()
