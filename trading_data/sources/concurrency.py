"""Run one fetch per ticker concurrently, bounded, with failures isolated per ticker."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass
class FetchResults(Generic[T]):
    """``results`` for the tickers that succeeded, ``errors`` (ticker → exception) for the others."""

    results: dict[str, T] = field(default_factory=dict)
    errors: dict[str, BaseException] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.errors

    def error_messages(self) -> dict[str, str]:
        """ticker → ``ExceptionType: message`` (for logs and Dagster metadata)."""
        return {t: f"{type(e).__name__}: {e}" for t, e in sorted(self.errors.items())}


async def fetch_per_ticker(
    tickers: Iterable[str],
    fetch: Callable[[str], Awaitable[T]],
    *,
    max_concurrency: int = 8,
) -> FetchResults[T]:
    """Await ``fetch(ticker)`` for every ticker, at most ``max_concurrency`` at a time.

    The default matches ``TRADING_DATA_MAX_CONCURRENCY``'s (``settings.DEFAULT_MAX_CONCURRENCY``).

    An exception from one ticker is recorded in ``errors`` and does not stop the others (cancellation
    still propagates). Tickers are deduplicated, order preserved.
    """
    if max_concurrency < 1:
        raise ValueError(f"max_concurrency must be >= 1, got {max_concurrency}")
    semaphore = asyncio.Semaphore(max_concurrency)
    out: FetchResults[T] = FetchResults()

    async def one(ticker: str) -> None:
        async with semaphore:
            try:
                out.results[ticker] = await fetch(ticker)
            except Exception as exc:  # isolate per ticker; CancelledError is not an Exception
                log.warning("fetch for %s failed: %s: %s", ticker, type(exc).__name__, exc)
                out.errors[ticker] = exc

    unique = list(dict.fromkeys(tickers))
    await asyncio.gather(*(one(t) for t in unique))
    # Stable order: the order tickers were given.
    out.results = {t: out.results[t] for t in unique if t in out.results}
    return out
