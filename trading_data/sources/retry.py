"""The retry policy for transient vendor failures: exponential backoff with jitter and ``Retry-After``."""

from __future__ import annotations

import datetime as dt
import email.utils
import random
from dataclasses import dataclass

from trading_data.sources.errors import VendorError

RETRYABLE_STATUSES = frozenset({413, 429, 499, 500, 502, 503, 504})


@dataclass(frozen=True)
class RetryPolicy:
    """How transient failures are retried.

    The wait before retry ``n`` (1-based) is ``min(max_wait, initial_wait * 2**(n-1)) + U(0, jitter)``;
    after a 429 it is at least ``min_wait_after_429`` (a per-minute quota needs a pause that matters);
    a ``Retry-After`` header replaces the computed wait, capped at ``max_retry_after``.
    """

    attempts: int = 5
    initial_wait: float = 1.0
    max_wait: float = 60.0
    jitter: float = 1.0
    min_wait_after_429: float = 10.0
    max_retry_after: float = 300.0

    def backoff(self, attempt: int, *, rate_limited: bool) -> float:
        wait = min(self.max_wait, self.initial_wait * 2 ** max(attempt - 1, 0)) + random.uniform(
            0, self.jitter
        )
        return max(wait, self.min_wait_after_429) if rate_limited else wait


def parse_retry_after(value: str | None, *, now: dt.datetime | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or HTTP date); None if absent/invalid."""
    if value is None or not value.strip():
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return max(0.0, (when - (now or dt.datetime.now(dt.UTC))).total_seconds())


class Transient(Exception):
    """A failure worth retrying (the client raises it inside its retry loop); ``final`` is raised once
    retries are spent."""

    def __init__(self, final: VendorError, *, retry_after: float | None = None, rate_limited: bool = False):
        super().__init__(str(final))
        self.final = final
        self.retry_after = retry_after
        self.rate_limited = rate_limited
