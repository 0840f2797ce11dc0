"""TickerFeed's hand-off of pages to its consumer, with sources that answer without waiting."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pandas as pd
import pytest

from trading_data.orchestration.feeds import FeedFailed, TickerFeed

PAGES = 5


def instant_feed(tickers: list[str], events: list[str], *, max_buffered: int = 4) -> TickerFeed:
    """A feed whose pages are built at once (as from memory or a cache); ``events`` records each page
    built and each page taken by the consumer, in order."""

    @asynccontextmanager
    async def clients() -> AsyncIterator[None]:
        yield None

    async def fetch(_: Any, ticker: str) -> AsyncIterator[pd.DataFrame]:
        for page in range(PAGES):
            if page % 2:
                await asyncio.sleep(0)  # an await that never waits, as through a mock transport
            events.append(f"built {ticker}{page}")
            yield pd.DataFrame({"ticker": [ticker], "page": [page]})

    return TickerFeed(
        feed="test", tickers=tickers, open_clients=clients, fetch=fetch, max_buffered_pages=max_buffered
    )


@pytest.mark.parametrize("tickers", [["A"], ["A", "B"], ["A", "B", "C"]])
def test_the_first_page_reaches_the_consumer_before_more_are_built(tickers):
    events: list[str] = []
    feed = instant_feed(tickers, events)
    for page in feed:
        events.append(f"taken {page['ticker'].iloc[0]}{page['page'].iloc[0]}")
    first_taken = next(i for i, e in enumerate(events) if e.startswith("taken"))
    # The first page built is the first taken; before, every ticker built pages until the buffer (4)
    # was full: 5 builds for one ticker, 6 for two.
    assert first_taken == 1
    assert sum(e.startswith("taken") for e in events) == PAGES * len(tickers)
    assert sorted(e[6:] for e in events if e.startswith("taken")) == sorted(
        f"{t}{p}" for t in tickers for p in range(PAGES)
    )


def test_the_buffer_stays_bounded():
    events: list[str] = []
    feed = instant_feed(["A", "B"], events, max_buffered=2)
    built = taken = 0
    for _ in feed:
        taken += 1
        built = sum(e.startswith("built") for e in events)
        # buffered pages plus one page in hand per producer
        assert built - taken <= 2 + 2
    assert built == taken == 2 * PAGES


def test_an_abandoned_stream_stops_the_fetch():
    events: list[str] = []
    feed = instant_feed(["A", "B"], events)
    stream = iter(feed)
    next(stream)
    stream.close()  # type: ignore[attr-defined]  # the consumer failed: the generator is closed
    built = sum(e.startswith("built") for e in events)
    assert built < 2 * PAGES


def test_every_ticker_failing_raises_after_the_pages():
    @asynccontextmanager
    async def clients() -> AsyncIterator[None]:
        yield None

    async def fetch(_: Any, ticker: str) -> AsyncIterator[pd.DataFrame]:
        raise ValueError(f"no {ticker}")
        yield pd.DataFrame()  # pragma: no cover - makes this an async generator

    feed = TickerFeed(feed="test", tickers=["A", "B"], open_clients=clients, fetch=fetch)
    with pytest.raises(FeedFailed, match=r"test: every ticker failed \(2\); e.g. A: ValueError: no A"):
        list(feed)
    assert feed.failures == {"A": "ValueError: no A", "B": "ValueError: no B"}


def test_a_cancelled_fetch_ends_without_queueing_the_end_of_the_stream():
    """The consumer has gone (the IO manager failed mid-stream) while the buffer is full: the cancelled
    fetch ends at once instead of waiting for room to queue the end-of-stream marker nobody reads."""

    @asynccontextmanager
    async def clients() -> AsyncIterator[None]:
        yield None

    async def fetch(_: Any, ticker: str) -> AsyncIterator[pd.DataFrame]:
        await asyncio.Event().wait()  # a request that never answers
        yield pd.DataFrame()  # pragma: no cover

    feed = TickerFeed(feed="test", tickers=["A"], open_clients=clients, fetch=fetch, max_buffered_pages=1)
    loop = asyncio.new_event_loop()
    try:
        queue: asyncio.Queue[Any] = asyncio.Queue(maxsize=1)
        queue.put_nowait(("A", pd.DataFrame({"ticker": ["A"]})))  # full, and nobody takes it
        task = loop.create_task(feed._fetch_all(queue, {}))
        loop.run_until_complete(asyncio.sleep(0.01))
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            loop.run_until_complete(asyncio.wait_for(task, 2))
    finally:
        loop.close()
