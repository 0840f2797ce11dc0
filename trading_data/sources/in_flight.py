"""The in-flight permit: how every rate-limit store holds a granted permit's slot until its request is
done, and how long a waiter waits behind one (why: :mod:`trading_data.sources.rate_limit_store`). Its own
module so that the PostgreSQL bucket (:mod:`trading_data.db.rate_limit_bucket`) and the stores that
build it share it without importing each other."""

from __future__ import annotations

from pyrate_limiter import Rate
from pyrate_limiter.abstracts.algorithm import SlidingWindowLog

# How far ahead a granted permit is stamped until its request settles it: longer than any request
# can be in flight (httpx allows 30 s per read), so an unsettled permit never leaves the window
# while its request may still reach the vendor. A process killed mid-request leaves its permit
# there: the slot comes back ``IN_FLIGHT_HOLD_MS`` plus a window later.
IN_FLIGHT_HOLD_MS = 120_000
# While the permit that blocks a waiter is still in flight, its end is unknown: look again after
# this much (at most a quarter of the window, so the wait once it settles is never overshot).
IN_FLIGHT_POLL_MS = 100


class InFlightWindow(SlidingWindowLog):
    """pyrate-limiter's sliding window log over permits that may still be in flight.

    The library's wait is "until the blocking permit's stamp plus the window". A permit in flight is
    stamped in the future (``IN_FLIGHT_HOLD_MS`` ahead): that wait would be minutes while the request
    takes milliseconds, so poll instead until it settles and its real stamp gives the exact wait.
    """

    def retry_after(self, rate: Rate, now: int, blocking_timestamp: int | None) -> int:
        if blocking_timestamp is not None and blocking_timestamp > now:
            return max(1, min(IN_FLIGHT_POLL_MS, rate.interval // 4))
        return super().retry_after(rate, now, blocking_timestamp)


IN_FLIGHT_WINDOW = InFlightWindow()
