"""Client-side rate limiting: one pyrate-limiter window per vendor account, kept in this process or
shared by every process and host through PostgreSQL or Redis (:mod:`trading_data.sources.rate_limit_store`)."""

from __future__ import annotations

import hashlib
import itertools
import logging
import math
import os
import threading
import time
import uuid
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass

from pyrate_limiter import Limiter, Rate

from trading_data.settings import platform as settings
from trading_data.sources.rate_limit_store import (
    PROCESS,
    RateLimitStore,
    RateLimitStoreUnavailable,
    SettlingBucket,
    build_bucket,
    store_errors,
    unavailable,
)

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


WINDOW_PADDING = settings.RATE_LIMIT_PADDING.default  # 1% longer than the vendor's (see SharedRateLimiter)
# pyrate-limiter sleeps the exact wait it computed plus ``buffer_ms`` (50 by default) before trying
# again. The wait is already exact (the blocking permit's stamp plus the window plus 1 ms, on the
# store's clock), so the default buffer only leaves every freed slot idle for 50 ms: 5% of a
# 1-second window, a throughput loss with nothing gained. 1 ms is the retry step after contention.
BUFFER_MS = 1


@dataclass(frozen=True)
class Permit:
    """One granted request: ``name`` identifies it in the store; ``granted`` is its ``time.monotonic()``
    and ``waited`` the seconds spent waiting for it."""

    name: str
    granted: float
    waited: float


_PERMIT_PREFIX = f"{uuid.uuid4().hex[:12]}-{os.getpid()}"
_PERMIT_SEQUENCE = itertools.count()


def max_in_window(times: Iterable[float], window: float) -> int:
    """The most of ``times`` (seconds, any order) that fall within any ``window`` seconds."""
    ordered = sorted(times)
    best, lo = 0, 0
    for hi, t in enumerate(ordered):
        while t - ordered[lo] >= window:
            lo += 1
        best = max(best, hi - lo + 1)
    return best


class SharedRateLimiter:
    """A pyrate-limiter ``Limiter`` plus a record of when it granted each permit.

    One instance exists per (vendor, key, store) in the process (:func:`shared_rate_limiter`), so every
    concurrent request against the same account waits on the same window; with a shared ``store``
    every other process and host using it waits on that window too. ``grants`` records this
    process's permits only.

    Take a permit with :meth:`acquire`, send the request, and :meth:`settle` the permit as soon as
    the response (or the failure) is in: the window counts the permit from then on (why:
    :mod:`trading_data.sources.rate_limit_store`); until then it holds its slot.
    """

    def __init__(
        self,
        rate: RateLimit,
        *,
        store: RateLimitStore = PROCESS,
        vendor: str = "vendor",
        fingerprint: str = "",
        padding: float = WINDOW_PADDING,
        record: int = 10_000,
    ):
        self.rate = rate
        self.padding = padding
        self.store = store
        self._store_errors = store_errors() if store.kind != "process" else ()
        # The limiter's window is ``padding`` (WINDOW_PADDING unless TRADING_DATA_RATE_LIMIT_PADDING
        # says otherwise) longer than the vendor's. The delays between a grant and the vendor
        # counting the request need no padding: a permit's window starts when its request is done,
        # which is after the vendor counted it. What is left is the vendor's clock against the
        # store's: two clocks measuring the same window disagree by their rates (ppm) and their
        # granularity (a vendor counting in whole seconds or minutes). 1% (10 ms a second, 0.6 s a
        # minute) covers that many times over and costs 1% of throughput.
        window_ms = math.ceil(rate.per_seconds * 1000 * (1 + padding))
        bucket = build_bucket(store, vendor, fingerprint, [Rate(rate.requests, window_ms)])
        assert isinstance(bucket, SettlingBucket)
        self._bucket: SettlingBucket = bucket
        self._limiter = Limiter(bucket, buffer_ms=BUFFER_MS)
        self.grants: deque[float] = deque(maxlen=record)  # time.monotonic() of each granted permit
        # (granted, settled) time.monotonic() of each settled permit
        self.settled: deque[tuple[float, float]] = deque(maxlen=record)

    async def acquire(self) -> Permit:
        """Wait for a permit; :meth:`settle` it when its request is done."""
        started = time.monotonic()
        name = f"{_PERMIT_PREFIX}-{next(_PERMIT_SEQUENCE)}"
        try:
            granted_ok = await self._limiter.try_acquire_async(name)
        except RateLimitStoreUnavailable:
            raise
        except self._store_errors as exc:
            raise unavailable(self.store, exc) from exc
        if not granted_ok:
            raise RuntimeError(f"rate limiter {self.rate} refused a permit")
        granted = time.monotonic()
        self.grants.append(granted)
        return Permit(name, granted, granted - started)

    def settle(self, permit: Permit) -> None:
        """Start ``permit``'s window now: its request has been answered or has failed.

        A store that fails here leaves the permit in flight: its slot comes back late
        (``IN_FLIGHT_HOLD_MS`` plus a window), never early, and the next :meth:`acquire` reports the
        store in one sentence."""
        self.settled.append((permit.granted, time.monotonic()))
        try:
            self._bucket.settle(permit.name)
        except self._store_errors as exc:
            log.warning(
                "%s: could not settle a rate-limit permit: %s", self.rate, unavailable(self.store, exc)
            )

    def max_in_window(self, window_seconds: float | None = None) -> int:
        """The most permits granted within any window of ``window_seconds`` (default: the rate's)."""
        return max_in_window(self.grants, self.rate.per_seconds if window_seconds is None else window_seconds)

    def close(self) -> None:
        """Stop the library's leak thread and close the store's connections."""
        self._limiter.close()


_LIMITERS: dict[tuple[str, str, RateLimitStore], SharedRateLimiter] = {}
_LIMITERS_LOCK = threading.Lock()


def key_fingerprint(secret: str | None) -> str:
    """A short, non-reversible fingerprint of a key, safe to log and to use as a registry key."""
    return hashlib.sha256((secret or "").encode()).hexdigest()[:16]


def shared_rate_limiter(
    vendor: str, secret: str | None, rate: RateLimit, store: RateLimitStore = PROCESS
) -> SharedRateLimiter:
    """The process-wide limiter for ``vendor`` + ``secret`` in ``store``; replaced if ``rate`` changed.

    The key is known only by its fingerprint, in the registry, the store's table or key and the logs.
    """
    fingerprint = key_fingerprint(secret)
    registry_key = (vendor, fingerprint, store)
    padding = settings.RATE_LIMIT_PADDING.get()
    with _LIMITERS_LOCK:
        limiter = _LIMITERS.get(registry_key)
        if limiter is None or limiter.rate != rate or limiter.padding != padding:
            if limiter is not None:
                log.info("%s rate limit changed from %s to %s", vendor, limiter.rate, rate)
                limiter.close()
            limiter = SharedRateLimiter(
                rate, store=store, vendor=vendor, fingerprint=fingerprint, padding=padding
            )
            _LIMITERS[registry_key] = limiter
        return limiter


def reset_rate_limiters() -> None:
    """Close and forget every limiter of the process (tests)."""
    with _LIMITERS_LOCK:
        for limiter in _LIMITERS.values():
            limiter.close()
        _LIMITERS.clear()
