"""pyrate-limiter's ``PostgresBucket``, each permit stamped by the database inside its table lock and
held as in flight until its request settles it.

The library stamps a permit with the database's clock in one transaction and decides it under the
table lock in the next. Under load the gap grows (a process descheduled between the two), and a permit
stamped early leaves the window early by as much: the next process sees a free slot too soon. Here the
stamp is read after the lock is taken, so every decision is made at the moment it happens, in the one
order the lock imposes; and a permit refused for contention waits the limiter's buffer and tries again
(see ``put``). A granted permit is stored ``IN_FLIGHT_HOLD_MS`` ahead, and :meth:`settle` re-stamps
it with ``clock_timestamp()`` once its request is done (why: :mod:`trading_data.sources.rate_limit_store`).
The rest is the library's ``put`` as of pyrate-limiter 4.5.1.
"""

from __future__ import annotations

from typing import Any

from psycopg import sql
from psycopg.errors import LockNotAvailable
from pyrate_limiter import PostgresBucket, Rate, RateItem
from pyrate_limiter.abstracts.algorithm import ADMITTED, Decision

from trading_data.sources.in_flight import IN_FLIGHT_HOLD_MS, IN_FLIGHT_WINDOW

# Whole milliseconds of the database's clock: rounded down for a decision and up for a settled
# permit, so rounding can only make the measured gap between them shorter than the real one.
CLOCK_MS = "SELECT floor(extract(epoch FROM clock_timestamp()) * 1000)::bigint"
_SETTLED_AT = "TO_TIMESTAMP(ceil(extract(epoch FROM clock_timestamp()) * 1000) / 1000)"


class LockStampedPostgresBucket(PostgresBucket):
    """A ``PostgresBucket`` whose permits carry the time they were decided, then the time their
    request finished (see the module docstring)."""

    def __init__(self, pool: Any, table: str, rates: list[Rate]):
        super().__init__(pool, table, rates, algorithm=IN_FLIGHT_WINDOW)
        tbl = sql.Identifier(self._full_tbl)
        self._q_settle = sql.SQL(
            f"UPDATE {{table}} SET item_timestamp = {_SETTLED_AT} WHERE name = %s"
        ).format(table=tbl)
        self._q_resettle = sql.SQL(
            f"INSERT INTO {{table}} (name, weight, item_timestamp) VALUES (%s, 1, {_SETTLED_AT})"
        ).format(table=tbl)

    def put(self, item: RateItem) -> Any:
        if item.weight == 0:
            return self._record(item, ADMITTED)
        assert item.weight == 1, "permits are taken one at a time"
        with self._get_conn() as conn:
            try:
                conn.execute(self._q_lock)  # EXCLUSIVE ... NOWAIT: one decision at a time
            except LockNotAvailable:
                # Contention, not a full window: try again after the limiter's buffer. The
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
            in_flight_until = (item.timestamp + IN_FLIGHT_HOLD_MS) / 1000
            conn.execute(self._q_put, (item.name, item.weight, in_flight_until, item.weight))
        return True

    def settle(self, name: str) -> None:
        # No table lock: moving a stamp from the future to now leaves every window's count as it
        # was (both are inside it) and only brings the blocking permit's end closer.
        with self._get_conn() as conn:
            if conn.execute(self._q_settle, (name,)).rowcount == 0:
                conn.execute(self._q_resettle, (name,))  # leaked after a very long request: count it again
