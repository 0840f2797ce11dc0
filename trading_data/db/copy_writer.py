"""Bulk COPYs on a writer thread, so that the next chunk is fetched and built while the server loads one.

ADBC releases the GIL during ``adbc_ingest``; the connection is used by the writer thread alone while the
stream lasts, and by the caller again only after :meth:`StreamedCopies.close` (or ``CopyThread.close``).
The queue holds at most ``depth`` jobs, and a :class:`BatchFeed` at most ``depth`` batches: memory stays
bounded to a few chunks whatever the stream's length.

Consecutive chunks for one table go through one COPY (:class:`BatchFeed`): ADBC sends each record batch
as soon as it has encoded it, so the server parses one batch while the driver encodes the next. A COPY
per chunk, or of one large batch, encodes everything it holds before the server sees a byte (measured
for issue 11 with ``bench/bench_ingest.py``: 500,000 quotes in one COPY of 10,000-row batches took
0.73–0.79× the time of one COPY of a single table, on the 2-core machine).
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator
from typing import TypeVar

import pyarrow as pa

Job = Callable[[], None]
T = TypeVar("T")

_POLL_SECONDS = 0.05
BATCH_ROWS = 10_000
"""Rows per record batch of a streamed COPY: small enough that encoding and the server's parsing overlap."""
FEED_BATCHES = 2 * 50_000 // BATCH_ROWS
"""Batches a :class:`BatchFeed` holds: two 50,000-row pages, as many rows as the job queue held before."""


class CopyCancelled(Exception):
    """The caller abandoned the write: the COPY in progress ends with this error, the transaction rolls
    back."""


class CopyThread:
    """Runs jobs (COPYs, statements) in order on one thread; the first failure stops the rest."""

    def __init__(self, depth: int = 2):
        self._queue: queue.Queue[Job | None] = queue.Queue(maxsize=max(1, depth))
        self._error: BaseException | None = None
        self.cancelled = False
        self._thread = threading.Thread(target=self._run, name="adbc-copy", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while (job := self._queue.get()) is not None:
            if self._error is None and not self.cancelled:
                try:
                    job()
                except BaseException as exc:  # noqa: BLE001 - handed to the caller by submit/close
                    self._error = exc

    def raise_failure(self) -> None:
        """Raise the failure of an earlier job, if any."""
        if self._error is not None:
            raise self._error

    def submit(self, job: Job) -> None:
        """Queue ``job``, waiting while the queue is full; raises the failure of an earlier job."""
        _put(self._queue, job, self)

    def close(self) -> None:
        """Wait for every queued job; raise the first failure."""
        self._queue.put(None)
        self._thread.join()
        self.raise_failure()

    def abandon(self) -> None:
        """The caller failed: skip the queued jobs, end the running one (a streamed COPY ends with
        :class:`CopyCancelled`), wait for it (the transaction rolls back)."""
        self.cancelled = True
        self._queue.put(None)
        self._thread.join()


class BatchFeed:
    """Record batches handed from the caller to one streaming ``adbc_ingest`` on the writer thread.

    ``writer.submit(lambda: cur.adbc_ingest(name, feed.reader(), ...))``, then :meth:`put` each chunk
    and :meth:`finish`: the COPY ends after the last batch put.
    """

    _END = object()

    def __init__(self, writer: CopyThread, schema: pa.Schema, depth: int = FEED_BATCHES):
        self._writer = writer
        self._schema = schema
        self._queue: queue.Queue[object] = queue.Queue(maxsize=max(1, depth))

    def reader(self) -> pa.RecordBatchReader:
        return pa.RecordBatchReader.from_batches(self._schema, self._batches())

    def _batches(self) -> Iterator[pa.RecordBatch]:
        # Runs on the writer thread, called by the driver for each next batch.
        while True:
            try:
                item = self._queue.get(timeout=_POLL_SECONDS)
            except queue.Empty:
                if self._writer.cancelled:
                    raise CopyCancelled("the write was abandoned") from None
                continue
            if item is self._END:
                return
            assert isinstance(item, pa.RecordBatch)
            yield item

    def put(self, table: pa.Table) -> None:
        """Queue ``table``'s rows in batches of ``BATCH_ROWS``, waiting while the feed is full; raises
        the writer's failure."""
        for batch in table.to_batches(max_chunksize=BATCH_ROWS):
            _put(self._queue, batch, self._writer)

    def finish(self) -> None:
        """End the COPY after the batches put so far."""
        _put(self._queue, self._END, self._writer)


class StreamedCopies:
    """Chunks COPYed on a writer thread; consecutive chunks for the same destination go through one COPY."""

    def __init__(self, depth: int = 2):
        self.writer = CopyThread(depth)
        self._open: tuple[str, BatchFeed] | None = None  # the COPY in progress: its destination and feed

    def put(self, destination: str, ingest: Callable[[pa.RecordBatchReader], None], table: pa.Table) -> None:
        """COPY ``table`` into ``destination``: into the COPY in progress if it is the same destination,
        else through a new one, ``ingest(reader)`` (an ``adbc_ingest``), after the COPY in progress ends."""
        if self._open is None or self._open[0] != destination:
            self.end()
            feed = BatchFeed(self.writer, table.schema)
            self.writer.submit(lambda: ingest(feed.reader()))
            self._open = (destination, feed)
        self._open[1].put(table)

    def submit(self, job: Job) -> None:
        """Run ``job`` (a statement) on the writer thread after the COPY in progress."""
        self.end()
        self.writer.submit(job)

    def end(self) -> None:
        """End the COPY in progress after the batches put so far."""
        if self._open is not None:
            self._open[1].finish()
            self._open = None

    def close(self) -> None:
        """End the COPY in progress and wait for every queued job; raise the first failure."""
        self.end()
        self.writer.close()

    def abandon(self) -> None:
        self.writer.abandon()


def _put(into: queue.Queue[T], item: T, writer: CopyThread) -> None:
    """Put ``item``, waiting while ``into`` is full; raise the writer's failure (then nobody reads it)."""
    while True:
        writer.raise_failure()
        try:
            into.put(item, timeout=_POLL_SECONDS)
            return
        except queue.Full:
            continue
