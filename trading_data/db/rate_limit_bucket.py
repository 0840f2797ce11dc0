"""pyrate-limiter's ``PostgresBucket``, each permit stamped by the database inside its table lock.

The library stamps a permit with the database's clock in one transaction and decides it under the
table lock in the next. Under load the gap grows (a process descheduled between the two), and a permit
stamped early leaves the window early by as much: the next process sees a free slot too soon. Here the
stamp is read after the lock is taken, so every permit's time is the moment it was decided, in the one
order the lock imposes; and a permit refused for contention waits the limiter's buffer and tries again
(see ``put``). The rest is the library's ``put`` as of pyrate-limiter 4.5.1.
"""

from __future__ import annotations

from typing import Any

from psycopg.errors import LockNotAvailable
from pyrate_limiter import PostgresBucket, RateItem
from pyrate_limiter.abstracts.algorithm import ADMITTED, Decision

CLOCK_MS = "SELECT (extract(epoch FROM clock_timestamp()) * 1000)::bigint"


class LockStampedPostgresBucket(PostgresBucket):
    """A ``PostgresBucket`` whose permits carry the time they were decided (see the module docstring)."""

    def put(self, item: RateItem) -> Any:
        if item.weight == 0:
            return self._record(item, ADMITTED)
        with self._get_conn() as conn:
            try:
                conn.execute(self._q_lock)  # EXCLUSIVE ... NOWAIT: one decision at a time
            except LockNotAvailable:
                # Contention, not a full window: try again after the limiter's buffer (50 ms). The
                # library leaves the wait unknown here, and waiting() then derives it from a peek
                # outside the lock, which can come out at exactly -1 ms: the limiter's "can never
                # fit" sentinel, which fails the acquisition ("refused a permit").
                return self._record(item, Decision(failing_rate=self.rates[0], retry_after_ms=0))
            row = conn.execute(CLOCK_MS).fetchone()
            assert row is not None
            item.timestamp = int(row[0])
            params = [self._algorithm.window_start(rate, item.timestamp) / 1000 for rate in self.rates]
            counts = conn.execute(self._q_count_windows, params).fetchone()

            def peek_timestamp(offset: int) -> int | None:
                peeked = conn.execute(self._q_peek, (offset,)).fetchone()
                return None if peeked is None else int(peeked[2])

            decision = self._algorithm.decide(self.rates, counts, item.weight, item.timestamp, peek_timestamp)
            if not self._record(item, decision):
                return False
            conn.execute(self._q_put, (item.name, item.weight, item.timestamp / 1000, item.weight))
        return True
