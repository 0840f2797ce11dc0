"""Fetch per-ticker pages concurrently and hand them to the IO manager as one stream.

The asset returns a :class:`TickerFeed`; the IO manager iterates it inside its write transaction.
Pages are fetched by up to ``max_concurrency`` tickers at once on a private event loop, buffered in
a bounded queue (memory stays bounded whatever the day's volume) and yielded in arrival order.
One ticker's failure is recorded and the others go on; when every ticker fails the stream raises
and the transaction rolls back, so a retry starts clean.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from contextlib import AbstractAsyncContextManager, suppress
from typing import TYPE_CHECKING, Any

import dagster as dg
import pandas as pd

from trading_data.db.frame_chunks import FrameChunks
from trading_data.orchestration.steps import ChunkValidator, step_failure
from trading_data.sources.errors import VendorError
from trading_data.validation import ValidationFailed

if TYPE_CHECKING:
    # httpx comes with it: imported where a feed closes, not by every definitions load (issue 11).
    from trading_data.sources.breaker import CircuitBreaker

_DONE = object()

FetchPages = Callable[[Any, str], AsyncIterator[pd.DataFrame]]
OpenClients = Callable[[], AbstractAsyncContextManager[Any]]
ChunkFilter = Callable[[pd.DataFrame], pd.DataFrame]


class FeedFailed(VendorError):
    """No ticker of a feed could be fetched."""


def describe_error(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


class TickerFeed(FrameChunks):
    """Pages of one feed for many tickers, fetched concurrently, consumed once."""

    def __init__(
        self,
        *,
        feed: str,
        tickers: Sequence[str],
        open_clients: OpenClients,
        fetch: FetchPages,
        max_concurrency: int = 8,
        max_buffered_pages: int = 4,
        chunk_filter: ChunkFilter | None = None,
        stats: Callable[[Any], dict[str, Any]] | None = None,
        log: Any = None,
        breakers: Sequence[CircuitBreaker] = (),
        strict: bool = False,
        replace_window: bool = False,
        replace_filter: str = "",
    ):
        super().__init__(self._iterate())
        self.replace_filter = replace_filter
        self.feed = feed
        self.tickers = list(tickers)
        self.failures: dict[str, str] = {}
        self._errors: dict[str, BaseException] = {}
        self.rows_by_ticker: dict[str, int] = {t: 0 for t in self.tickers}
        self._open_clients = open_clients
        self._fetch = fetch
        self._max_concurrency = max(1, max_concurrency)
        self._max_buffered = max(1, max_buffered_pages)
        self._chunk_filter = chunk_filter
        self._stats = stats
        self._log = log
        self._breakers = list(breakers)
        self._strict = strict
        self._replace_window = replace_window
        self._consumer_waiting = False
        self._handing_over = False  # a page was queued for the waiting consumer in this pass of the loop
        if isinstance(chunk_filter, ChunkValidator):
            # Every page yielded is the validator's output: the IO manager need not validate it again.
            self.validated_model = chunk_filter.spec.model

    def _iterate(self) -> Iterator[pd.DataFrame]:
        # An open breaker fails the run at once with the time of the next probe.
        for breaker in self._breakers:
            breaker.before_call()
        started = time.perf_counter()
        loop = asyncio.new_event_loop()
        queue: asyncio.Queue[Any] = asyncio.Queue(maxsize=self._max_buffered)
        stats: dict[str, Any] = {}

        task = loop.create_task(self._fetch_all(queue, stats))
        try:
            while (item := self._next_page(loop, queue)) is not _DONE:
                page = self._accept(*item)
                if page is not None:
                    yield page
            try:
                loop.run_until_complete(task)  # re-raises a failure to open the clients
            except Exception as exc:
                raise step_failure(exc) from exc
        finally:
            if not task.done():
                task.cancel()
                with suppress(BaseException):  # the stream is being abandoned
                    loop.run_until_complete(task)
            loop.close()
        self._finish(stats, time.perf_counter() - started)

    def _next_page(self, loop: asyncio.AbstractEventLoop, queue: asyncio.Queue[Any]) -> Any:
        """The next queued page, running the loop only while none is queued.

        The loop runs until a producer has queued a page (:meth:`_queued` stops it): a loop stops only
        between batches of callbacks, and ``run_until_complete(queue.get())`` let every ticker whose
        page was ready go on building pages until the queue was full, so with a fast source (pages
        served from memory or a cache) the first page reached the COPY after ``max_buffered_pages``
        more had been built instead of at once.
        """
        while queue.empty():
            self._consumer_waiting = True
            self._handing_over = False
            try:
                loop.run_forever()
            finally:
                self._consumer_waiting = False
        return queue.get_nowait()

    async def _queued(self, queue: asyncio.Queue[Any], item: Any) -> None:
        """Queue ``item``; wake a waiting consumer at the end of this batch and let it run before this
        producer builds another page."""
        await queue.put(item)
        if self._consumer_waiting:
            asyncio.get_running_loop().stop()
            self._handing_over = True
        await asyncio.sleep(0)

    async def _fetch_all(self, queue: asyncio.Queue[Any], stats: dict[str, Any]) -> None:
        """Every ticker's pages into ``queue``, up to ``max_concurrency`` tickers at once, then ``_DONE``."""
        semaphore = asyncio.Semaphore(self._max_concurrency)
        try:
            async with self._open_clients() as clients:
                await asyncio.gather(*(self._fetch_one(clients, t, queue, semaphore) for t in self.tickers))
                if self._stats is not None:
                    stats.update(self._stats(clients))
        except asyncio.CancelledError:
            # The stream was abandoned (its consumer failed): nobody reads the queue any more, and with
            # the queue full, waiting for room for _DONE would never end.
            raise
        except BaseException:
            await self._queued(queue, _DONE)
            raise
        await self._queued(queue, _DONE)

    async def _fetch_one(
        self, clients: Any, ticker: str, queue: asyncio.Queue[Any], semaphore: asyncio.Semaphore
    ) -> None:
        async with semaphore:
            if self._handing_over:
                # Another ticker's page is on its way to the consumer: start after it has been taken.
                await asyncio.sleep(0)
            try:
                async for page in self._fetch(clients, ticker):
                    if ticker in self.discard_tickers:
                        return  # its pages failed validation: fetching more is wasted
                    if len(page):
                        await self._queued(queue, (ticker, page))
            except Exception as exc:  # noqa: BLE001 - isolated per ticker, reported below
                self._fail(ticker, exc)

    def _accept(self, ticker: str, page: pd.DataFrame) -> pd.DataFrame | None:
        """The page as stored (filtered and counted), or None when the ticker's rows are discarded."""
        if ticker in self.discard_tickers:
            return None
        if self._chunk_filter is not None:
            try:
                page = self._chunk_filter(page)
            except ValidationFailed as exc:
                # Strict validation, or a page no row of which can be trusted: this ticker's
                # rows are not stored (the IO manager drops what it staged), the others go on.
                self._fail(ticker, exc)
                self.discard_tickers.add(ticker)
                return None
        self.rows_by_ticker[ticker] = self.rows_by_ticker.get(ticker, 0) + len(page)
        return page

    def _fail(self, ticker: str, exc: BaseException) -> None:
        self.failures.setdefault(ticker, describe_error(exc))
        self._errors.setdefault(ticker, exc)

    def _finish(self, stats: dict[str, Any], seconds: float) -> None:
        if self._strict:
            # strict_validation: a failing ticker stores nothing of this run, whatever the reason.
            self.discard_tickers.update(self.failures)
        if self._replace_window:
            # A closed session fetched whole replaces each ticker's window; a ticker that failed keeps
            # its stored rows.
            self.replace_tickers = [t for t in self.tickers if t not in self.failures]
        for ticker in self.discard_tickers:
            self.rows_by_ticker[ticker] = 0
        self.metadata.update(
            {
                "tickers": dg.MetadataValue.int(len(self.tickers)),
                "tickers_failed": dg.MetadataValue.int(len(self.failures)),
                "fetch_seconds": dg.MetadataValue.float(round(seconds, 3)),
                "rows_by_ticker": dg.MetadataValue.json(self.rows_by_ticker),
                "validation_failures": dg.MetadataValue.int(int(getattr(self._chunk_filter, "failures", 0))),
                **{k: _metadata_value(v) for k, v in stats.items()},
            }
        )
        everything_failed = bool(self.tickers) and len(self.failures) == len(self.tickers)
        if self.failures:
            self.metadata["failed_tickers"] = dg.MetadataValue.json(self.failures)
            if self._log is not None and not everything_failed:
                self._log.warning(
                    f"{self.feed}: {len(self.failures)} of {len(self.tickers)} ticker(s) failed; "
                    f"the others are stored: {self.failures}"
                )
        from trading_data.sources.breaker import default_trips_on

        trips_on = default_trips_on()
        for breaker in self._breakers:
            # One ticker answering proves the vendors are up. Every ticker failing counts against a vendor
            # only for outage errors (as CircuitBreaker.guard counts them) that name it: a 403 or a bug
            # is not an outage, and in options_flow a Unusual Whales outage says nothing of Polygon.
            if not everything_failed:
                breaker.record_success()
                continue
            blamed = [
                e
                for e in self._errors.values()
                if isinstance(e, trips_on) and getattr(e, "vendor", breaker.vendor) == breaker.vendor
            ]
            if blamed:
                breaker.record_failure(describe_error(blamed[0]))
        if everything_failed:
            first = next(iter(self.failures.items()))
            raise self._failure(
                f"{self.feed}: every ticker failed ({len(self.failures)}); e.g. {first[0]}: {first[1]}"
            )
        if self.failures and self._strict:
            # strict_validation: the other tickers' rows are kept, but the step fails and says why.
            self.error_after_commit = self._failure(
                f"{self.feed}: {len(self.failures)} of {len(self.tickers)} ticker(s) failed (the others were "
                f"stored): {self.failures}"
            )

    def _failure(self, message: str) -> BaseException:
        """The step's error: retried only when a retry can help some failed ticker (the same data fails
        validation the same way again; a 401 or a bad setting stays)."""
        causes = [e for e in self._errors.values() if not isinstance(e, ValidationFailed)]
        if not causes:
            return dg.Failure(description=message, allow_retries=False)
        return step_failure(FeedFailed(message, vendor="multiple"), causes=causes)


def _metadata_value(value: Any) -> Any:
    if isinstance(value, bool | str):
        return value
    if isinstance(value, int):
        return dg.MetadataValue.int(value)
    if isinstance(value, float):
        return dg.MetadataValue.float(value)
    return value
