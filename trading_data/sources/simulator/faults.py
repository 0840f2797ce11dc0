"""Fault injection and request statistics for the simulator (thread-safe).

A fault plan is a list of :class:`Fault`; each request asks the injector which faults hit it. A fault
hits requests whose path starts with ``path_prefix`` (and whose vendor matches ``vendor`` when set),
``count`` times (None = every request). Page faults (``repeat_last_row``, ``next_url_cycle``) are
spent only on requests where they can apply (a paged response with a cursor / a next_url).

Body faults (``junk_tickers``) rewrite a successful answer. They are applied by :class:`BodyFaults`,
an ASGI middleware around the simulator app sharing its injector, and switched on like any other
fault (``POST /_sim/faults`` or :meth:`FaultInjector.add`); they are spent only on grouped-daily
requests, the answers they apply to.
"""

from __future__ import annotations

import datetime as dt
import json
import threading
import time
from collections import Counter, deque
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import asdict, dataclass, field
from typing import Any

FAULT_KINDS = (
    "http_429",
    "http_5xx_html",
    "http_5xx_empty",
    "http_500_text",
    "latency",
    "timeout",
    "connection_reset",
    "truncated_json",
    "repeat_last_row",
    "next_url_cycle",
    "http_401",
    "http_403",
    "junk_tickers",
)
# Faults answered before the request is handled (they replace the response).
RESPONSE_FAULTS = {
    "http_429",
    "http_5xx_html",
    "http_5xx_empty",
    "http_500_text",
    "http_401",
    "http_403",
    "connection_reset",
}
# Faults that rewrite a successful answer's body (BodyFaults), and the answers they apply to.
BODY_FAULTS = {"junk_tickers"}
GROUPED_DAILY_PATH = "/v2/aggs/grouped/"
# Tickers Polygon has served in grouped daily bars (polygon-io/issues#138): lowercase, padded, binary.
JUNK_TICKERS = ("brk.b", "AAPL ", "\x00\x9f\ufffd\x1b[2J")


@dataclass
class Fault:
    """One entry of the fault plan.

    ``kind`` is one of FAULT_KINDS. ``path_prefix`` selects requests by URL path ("" = all);
    ``vendor`` is "polygon", "unusualwhales" or None (both). ``count`` is how many requests it hits
    (None = all). ``status`` picks the code for the 5xx kinds (default 502 for html, 503 for empty).
    ``retry_after`` (seconds) adds a Retry-After header to ``http_429``. ``seconds`` is the delay for
    ``latency`` (default 0.5) and ``timeout`` (default 30).
    """

    kind: str
    path_prefix: str = ""
    count: int | None = 1
    vendor: str | None = None
    status: int | None = None
    retry_after: float | None = None
    seconds: float | None = None
    hits: int = field(default=0, compare=False)

    def __post_init__(self) -> None:
        if self.kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {self.kind!r}; expected one of {FAULT_KINDS}")

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Fault:
        allowed = {"kind", "path_prefix", "count", "vendor", "status", "retry_after", "seconds"}
        unknown = set(data) - allowed
        if unknown:
            raise ValueError(f"unknown fault fields {sorted(unknown)}")
        return cls(**data)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def matches(self, path: str, vendor: str) -> bool:
        if self.count is not None and self.hits >= self.count:
            return False
        return path.startswith(self.path_prefix) and (self.vendor is None or self.vendor == vendor)


class FaultInjector:
    """The current fault plan plus an optional server-side rate limit; safe to use from any thread.

    The limit admits ``rate_limit_per_second`` requests in any sliding ``rate_limit_window_seconds``
    (1 s unless set: 60 with 5 is Polygon's free plan of 5 a minute)."""

    def __init__(
        self,
        faults: list[Fault] | None = None,
        *,
        rate_limit_per_second: float | None = None,
        rate_limit_window_seconds: float = 1.0,
    ) -> None:
        self._lock = threading.Lock()
        self._faults: list[Fault] = list(faults or [])
        self.rate_limit_per_second = rate_limit_per_second
        self.rate_limit_window_seconds = rate_limit_window_seconds

    def replace(self, faults: list[Fault]) -> None:
        """Replace the plan."""
        with self._lock:
            self._faults = list(faults)

    def add(self, fault: Fault) -> None:
        with self._lock:
            self._faults.append(fault)

    def clear(self) -> None:
        """Remove every fault and the rate limit."""
        with self._lock:
            self._faults = []
            self.rate_limit_per_second = None
            self.rate_limit_window_seconds = 1.0

    @property
    def faults(self) -> list[Fault]:
        with self._lock:
            return list(self._faults)

    def take(self, path: str, vendor: str, kinds: set[str] | frozenset[str] | None = None) -> list[Fault]:
        """The faults that hit this request (among ``kinds``; first per kind), spending one of each's ``count``."""
        taken: list[Fault] = []
        with self._lock:
            for fault in self._faults:
                if any(t.kind == fault.kind for t in taken):
                    continue  # the first matching fault of each kind wins; later ones keep their count
                if (kinds is None or fault.kind in kinds) and fault.matches(path, vendor):
                    fault.hits += 1
                    taken.append(fault)
        return taken

    def take_one(self, kind: str, path: str, vendor: str) -> Fault | None:
        """Spend and return the first fault of ``kind`` hitting this request, if any."""
        found = self.take(path, vendor, {kind})
        return found[0] if found else None


class RequestStats:
    """Counts requests per path, the busiest 1-second window, totals and rate-limit refusals."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        with self._lock:
            self._per_path: Counter[str] = Counter()
            self._window: deque[float] = deque()
            self._accepted_window: deque[float] = deque()
            self._max_per_second = 0
            self._total = 0
            self._refused = 0

    def record(self, path: str, now: float | None = None) -> int:
        """Count one request; returns the number of requests in the last second including it."""
        now = time.monotonic() if now is None else now
        with self._lock:
            self._per_path[path] += 1
            self._total += 1
            self._window.append(now)
            while self._window and self._window[0] <= now - 1.0:
                self._window.popleft()
            self._max_per_second = max(self._max_per_second, len(self._window))
            return len(self._window)

    def admit(self, limit_per_second: float | None, now: float | None = None, window: float = 1.0) -> bool:
        """Rate-limit check over accepted requests in the last ``window`` seconds, counted when they
        arrive (as a vendor counts them); counts a refusal when over."""
        if limit_per_second is None:
            return True
        now = time.monotonic() if now is None else now
        with self._lock:
            while self._accepted_window and self._accepted_window[0] <= now - window:
                self._accepted_window.popleft()
            if len(self._accepted_window) >= limit_per_second:
                self._refused += 1
                return False
            self._accepted_window.append(now)
            return True

    def snapshot(self) -> dict[str, Any]:
        """``{"total", "per_path", "max_per_second", "rate_limited"}``."""
        with self._lock:
            return {
                "total": self._total,
                "per_path": dict(self._per_path),
                "max_per_second": self._max_per_second,
                "rate_limited": self._refused,
            }


# ----- body faults --------------------------------------------------------------------------------
def inject_junk_tickers(body: bytes, path: str) -> bytes:
    """A grouped-daily answer with one row per JUNK_TICKERS on top, built to rank first: ten times the
    answer's largest volume, a 45% high-low range and a close rising day by day (momentum)."""
    payload = json.loads(body)
    rows = payload.get("results") or []
    if not rows:
        return body
    day = dt.date.fromisoformat(path.rstrip("/").rsplit("/", 1)[-1])
    step = day.toordinal() % 100  # rises for 100 days, so over any lookback window but a wrap
    close = 50.0 + 0.5 * step
    volume = 10.0 * max(float(r.get("v") or 0) for r in rows) * (1 + step / 100)
    junk = [
        {
            "T": symbol,
            "v": volume,
            "vw": close,
            "o": close,
            "c": close,
            "h": close * 1.25,
            "l": close * 0.8,
            "t": rows[0]["t"],
            "n": 100_000,
        }
        for symbol in JUNK_TICKERS
    ]
    payload["results"] = junk + rows
    for key in ("queryCount", "resultsCount", "count"):
        if key in payload:
            payload[key] = len(payload["results"])
    return json.dumps(payload, separators=(",", ":")).encode()


Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


class BodyFaults:
    """ASGI middleware: applies the injector's body faults to the wrapped simulator app's answers.

    ``SimulatorServer(...).app = BodyFaults(server.app, server.faults)`` before ``start()``; a 200
    answer of a request a ``junk_tickers`` fault hits gets :data:`JUNK_TICKERS` rows.
    """

    def __init__(self, app: Callable[[Scope, Receive, Send], Awaitable[None]], faults: FaultInjector):
        self.app = app
        self.faults = faults

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "") if scope["type"] == "http" else ""
        if not path.startswith(GROUPED_DAILY_PATH) or not self.faults.take_one(
            "junk_tickers", path, "polygon"
        ):
            await self.app(scope, receive, send)
            return
        start: Message = {}
        chunks: list[bytes] = []

        async def rewrite(message: Message) -> None:
            if message["type"] == "http.response.start":
                start.update(message)
                return
            if message["type"] != "http.response.body":
                await send(message)
                return
            chunks.append(message.get("body", b""))
            if message.get("more_body"):
                return
            body = b"".join(chunks)
            if start.get("status") == 200:
                body = inject_junk_tickers(body, path)
            headers = [(k, v) for k, v in start.get("headers", []) if k.lower() != b"content-length"]
            await send({**start, "headers": [*headers, (b"content-length", str(len(body)).encode())]})
            await send({"type": "http.response.body", "body": body})

        await self.app(scope, receive, rewrite)
