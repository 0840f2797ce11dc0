"""Client-side rate limiting: one pyrate-limiter window per vendor account in the process."""

from __future__ import annotations

import hashlib
import logging
import math
import threading
import time
from collections import deque
from dataclasses import dataclass

from pyrate_limiter import InMemoryBucket, Limiter, Rate

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RateLimit:
    """At most ``requests`` requests in any ``per_seconds`` window."""

    requests: int
    per_seconds: float = 60.0

    def __post_init__(self) -> None:
        if self.requests < 1 or self.per_seconds <= 0:
            raise ValueError(f"invalid rate limit: {self.requests} per {self.per_seconds}s")

    @classmethod
    def per_minute(cls, requests: int) -> RateLimit:
        return cls(requests, 60.0)

    def __str__(self) -> str:
        return f"{self.requests}/{self.per_seconds:g}s"


WINDOW_PADDING = 0.05  # the client-side window is 5% longer than the vendor's (see SharedRateLimiter)


class SharedRateLimiter:
    """A pyrate-limiter ``Limiter`` plus a record of when it granted each permit.

    One instance exists per (vendor, key) in the process (:func:`shared_rate_limiter`), so every
    concurrent request against the same account waits on the same window.
    """

    def __init__(self, rate: RateLimit, *, record: int = 10_000):
        self.rate = rate
        # The limiter's window is WINDOW_PADDING longer than the vendor's. Permits are granted here,
        # but the vendor counts arrivals, and the time from grant to arrival varies (event-loop delays,
        # connection set-up, a retry): with an exact window, request N+1 granted right as the window
        # slides can overtake a late request N and land in the same vendor window, which answers 429.
        # 5% (50 ms a second, 3 s a minute) absorbs that jitter and costs at most 5% of throughput
        # when the limit, not latency, is the bottleneck.
        window_ms = math.ceil(rate.per_seconds * 1000 * (1 + WINDOW_PADDING))
        self._limiter = Limiter(InMemoryBucket([Rate(rate.requests, window_ms)]))
        self.grants: deque[float] = deque(maxlen=record)  # time.monotonic() of each granted permit

    async def acquire(self) -> float:
        """Wait for a permit; returns the seconds spent waiting."""
        started = time.monotonic()
        if not await self._limiter.try_acquire_async("request"):
            raise RuntimeError(f"rate limiter {self.rate} refused a permit")
        granted = time.monotonic()
        self.grants.append(granted)
        return granted - started

    def max_in_window(self, window_seconds: float | None = None) -> int:
        """The most permits granted within any window of ``window_seconds`` (default: the rate's)."""
        window = self.rate.per_seconds if window_seconds is None else window_seconds
        times = sorted(self.grants)
        best, lo = 0, 0
        for hi, t in enumerate(times):
            while t - times[lo] >= window:
                lo += 1
            best = max(best, hi - lo + 1)
        return best


_LIMITERS: dict[tuple[str, str], SharedRateLimiter] = {}
_LIMITERS_LOCK = threading.Lock()


def key_fingerprint(secret: str | None) -> str:
    """A short, non-reversible fingerprint of a key, safe to log and to use as a registry key."""
    return hashlib.sha256((secret or "").encode()).hexdigest()[:16]


def shared_rate_limiter(vendor: str, secret: str | None, rate: RateLimit) -> SharedRateLimiter:
    """The process-wide limiter for ``vendor`` + ``secret``; replaced if ``rate`` changed."""
    registry_key = (vendor, key_fingerprint(secret))
    with _LIMITERS_LOCK:
        limiter = _LIMITERS.get(registry_key)
        if limiter is None or limiter.rate != rate:
            if limiter is not None:
                log.info("%s rate limit changed from %s to %s", vendor, limiter.rate, rate)
            limiter = _LIMITERS[registry_key] = SharedRateLimiter(rate)
        return limiter


def reset_rate_limiters() -> None:
    """Forget every shared limiter (tests)."""
    with _LIMITERS_LOCK:
        _LIMITERS.clear()
