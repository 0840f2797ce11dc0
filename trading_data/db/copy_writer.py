"""Bulk COPYs on a writer thread, so that the next chunk is fetched and built while the server loads one.

ADBC releases the GIL during ``adbc_ingest``; the connection is used by the writer thread alone while the
stream lasts, and by the caller again only after :meth:`CopyThread.close`. The queue holds at most
``depth`` chunks: memory stays bounded to a few chunks whatever the stream's length.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable

Job = Callable[[], None]

_POLL_SECONDS = 0.05


class CopyThread:
    """Runs jobs (COPYs, statements) in order on one thread; the first failure stops the rest."""

    def __init__(self, depth: int = 2):
        self._queue: queue.Queue[Job | None] = queue.Queue(maxsize=max(1, depth))
        self._error: BaseException | None = None
        self._cancelled = False
        self._thread = threading.Thread(target=self._run, name="adbc-copy", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while (job := self._queue.get()) is not None:
            if self._error is None and not self._cancelled:
                try:
                    job()
                except BaseException as exc:  # noqa: BLE001 - handed to the caller by submit/close
                    self._error = exc

    def submit(self, job: Job) -> None:
        """Queue ``job``, waiting while the queue is full; raises the failure of an earlier job."""
        while True:
            if self._error is not None:
                raise self._error
            try:
                self._queue.put(job, timeout=_POLL_SECONDS)
                return
            except queue.Full:
                continue

    def close(self) -> None:
        """Wait for every queued job; raise the first failure."""
        self._queue.put(None)
        self._thread.join()
        if self._error is not None:
            raise self._error

    def abandon(self) -> None:
        """The caller failed: skip the queued jobs, wait for the running one (the transaction rolls back)."""
        self._cancelled = True
        self._queue.put(None)
        self._thread.join()
