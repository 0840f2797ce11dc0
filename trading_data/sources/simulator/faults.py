"""Fault injection and request statistics for the simulator (thread-safe).

A fault plan is a list of :class:`Fault`; each request asks the injector which faults hit it. A fault
hits requests whose path starts with ``path_prefix`` (and whose vendor matches ``vendor`` when set),
``count`` times (None = every request). Page faults (``repeat_last_row``, ``next_url_cycle``) are
spent only on requests where they can apply (a paged response with a cursor / a next_url).
"""

from __future__ import annotations

import threading
import time
from collections import Counter, deque
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
PAGE_FAULTS = {"repeat_last_row", "next_url_cycle"}


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
    """The current fault plan plus an optional server-side rate limit; safe to use from any thread."""

    def __init__(
        self, faults: list[Fault] | None = None, *, rate_limit_per_second: float | None = None
    ) -> None:
        self._lock = threading.Lock()
        self._faults: list[Fault] = list(faults or [])
        self.rate_limit_per_second = rate_limit_per_second

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

    def admit(self, limit_per_second: float | None, now: float | None = None) -> bool:
        """Rate-limit check over accepted requests in the last second; counts a refusal when over."""
        if limit_per_second is None:
            return True
        now = time.monotonic() if now is None else now
        with self._lock:
            while self._accepted_window and self._accepted_window[0] <= now - 1.0:
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
