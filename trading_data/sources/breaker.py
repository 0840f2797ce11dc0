"""A per-vendor circuit breaker whose state lives in PostgreSQL (``market.circuit_breakers``).

Every run, step and process that talks to a vendor shares one row per vendor, so when Polygon is down
the quotes run, the trades run and the next schedule tick all fail fast instead of each spending its
own retries against a dead endpoint.

States (the row's ``state`` column):

- ``closed``: calls go through; each failure increments ``consecutive_failures``; a success resets it.
  At ``failure_threshold`` consecutive failures the breaker opens.
- ``open``: :meth:`CircuitBreaker.before_call` raises :class:`CircuitOpenError` until ``next_probe_at``
  (``opened_at + reset_timeout``).
- ``half_open``: the first caller after ``next_probe_at`` moved the row here (under ``SELECT … FOR
  UPDATE``, so exactly one caller in any process wins) and is the probe; everyone else still fails
  fast. The probe's success closes the breaker, its failure re-opens it with a new ``next_probe_at``.
  A probe that never reports (its process died) holds the half-open lease only for ``reset_timeout``;
  after that the next caller becomes the probe.

Each method is one short transaction on its own connection, with bound parameters. Times come from the
injected ``clock`` (aware UTC datetimes), never from the database, so tests can drive it.

Usage around a vendor call::

    breaker = CircuitBreaker(database.url, database.schema_name, vendor="polygon")
    with breaker.guard():            # raises CircuitOpenError when open
        await client.grouped_daily(...)  # VendorUnavailable / transport errors count as failures

The calls are synchronous (a few milliseconds); inside async code call them directly or through
``asyncio.to_thread`` if the loop must never block.
"""

import datetime as dt
import functools
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Literal

import psycopg

from trading_data.calendar import NEW_YORK
from trading_data.clock import utc_now
from trading_data.db import queries
from trading_data.db.migrate import DEFAULT_SCHEMA, validate_schema_name
from trading_data.redact import clip, redact
from trading_data.sources.errors import MalformedResponse, VendorUnavailable

BreakerStateName = Literal["closed", "open", "half_open"]
Clock = Callable[[], dt.datetime]
MAX_ERROR_CHARS = 500


@functools.cache
def default_trips_on() -> tuple[type[BaseException], ...]:
    """The errors that say "the vendor is unhealthy" (retries already spent; a 4xx the caller must fix
    does not count). Built on first use: it names httpx's TransportError, and the assets import this
    module at every definitions load, which then does without httpx (issue 11)."""
    import httpx

    return (VendorUnavailable, MalformedResponse, httpx.TransportError, TimeoutError, ConnectionError)


def _clean_error(error: str) -> str:
    """One line, no credential query parameters, bounded length."""
    text = redact(" ".join(str(error).split()))
    return clip(text, MAX_ERROR_CHARS)


def _et(moment: dt.datetime | None) -> str:
    return "?" if moment is None else moment.astimezone(NEW_YORK).strftime("%H:%M ET")


@dataclass(frozen=True)
class BreakerState:
    """One vendor's row in ``market.circuit_breakers`` (a vendor without a row is ``closed``)."""

    vendor: str
    state: BreakerStateName = "closed"
    consecutive_failures: int = 0
    opened_at: dt.datetime | None = None
    next_probe_at: dt.datetime | None = None
    last_error: str | None = None
    updated_at: dt.datetime | None = None

    @property
    def is_closed(self) -> bool:
        return self.state == "closed"

    def describe(self) -> str:
        if self.state == "closed":
            return f"{self.vendor} circuit closed ({self.consecutive_failures} consecutive failures)"
        if self.state == "half_open":
            return (
                f"{self.vendor} circuit half-open: one probe in flight since {_et(self.updated_at)} "
                f"(opened {_et(self.opened_at)}; last: {self.last_error})"
            )
        return (
            f"{self.vendor} circuit open since {_et(self.opened_at)}, next probe {_et(self.next_probe_at)} "
            f"({self.consecutive_failures} consecutive failures; last: {self.last_error})"
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "vendor": self.vendor,
            "state": self.state,
            "consecutive_failures": self.consecutive_failures,
            "opened_at": self.opened_at.isoformat() if self.opened_at else None,
            "next_probe_at": self.next_probe_at.isoformat() if self.next_probe_at else None,
            "last_error": self.last_error,
            "updated_at": self.updated_at.isoformat() if self.updated_at else None,
        }


class CircuitOpenError(RuntimeError):
    """The vendor's breaker is open (or another caller is probing): fail fast without calling it."""

    def __init__(self, state: BreakerState, message: str | None = None):
        super().__init__(message or state.describe())
        self.state = state
        self.vendor = state.vendor


class CircuitBreaker:
    """The shared breaker of one vendor (see the module docstring)."""

    def __init__(
        self,
        url: str,
        schema: str = DEFAULT_SCHEMA,
        *,
        vendor: str,
        failure_threshold: int = 5,
        reset_timeout: dt.timedelta = dt.timedelta(minutes=5),
        clock: Clock = utc_now,
        connect_timeout: int = 10,
    ):
        if failure_threshold < 1:
            raise ValueError("failure_threshold must be at least 1")
        if reset_timeout <= dt.timedelta(0):
            raise ValueError("reset_timeout must be positive")
        if not vendor:
            raise ValueError("vendor must be a non-empty name")
        self.url = url
        self.schema = validate_schema_name(schema)
        self.vendor = vendor
        self.failure_threshold = failure_threshold
        self.reset_timeout = reset_timeout
        self.clock = clock
        self.connect_timeout = connect_timeout

    def __repr__(self) -> str:
        return (
            f"CircuitBreaker(vendor={self.vendor!r}, url={redact(self.url)!r}, "
            f"threshold={self.failure_threshold}, reset_timeout={self.reset_timeout})"
        )

    # --- plumbing -------------------------------------------------------------------------------------

    def _now(self) -> dt.datetime:
        now = self.clock()
        if now.tzinfo is None:
            raise ValueError("the breaker clock must return aware datetimes")
        return now.astimezone(dt.UTC)

    @contextmanager
    def _transaction(self) -> Iterator[psycopg.Connection]:
        with psycopg.connect(self.url, connect_timeout=self.connect_timeout) as conn:
            yield conn  # committed on clean exit, rolled back on an exception

    def _lock_row(self, conn: psycopg.Connection) -> BreakerState:
        """Create the vendor's row if missing and lock it for the rest of the transaction."""
        return BreakerState(*queries.lock_breaker_row(conn, self.schema, self.vendor))

    def _write(self, conn: psycopg.Connection, state: BreakerState) -> None:
        queries.update_breaker_row(
            conn,
            self.schema,
            (
                self.vendor,
                state.state,
                state.consecutive_failures,
                state.opened_at,
                state.next_probe_at,
                state.last_error,
                state.updated_at,
            ),
        )

    # --- the API --------------------------------------------------------------------------------------

    def state(self) -> BreakerState:
        """The vendor's current row (``closed`` with no failures when it has none)."""
        with self._transaction() as conn:
            return self._read(conn)

    def before_call(self) -> BreakerStateName:
        """Allow a call or raise :class:`CircuitOpenError`.

        Returns ``"closed"`` for a normal call, or ``"half_open"`` when this caller is the single probe
        (it must then report :meth:`record_success` or :meth:`record_failure`).
        """
        now = self._now()
        with self._transaction() as conn:
            # Fast path without a row lock: a closed breaker (the normal case) needs no write.
            row = queries.breaker_status(conn, self.schema, self.vendor)
            if row is None or row[0] == "closed":
                return "closed"
            current = self._lock_row(conn)  # re-read under the lock: another process may have moved it
            if current.state == "closed":
                return "closed"
            probe_due = current.next_probe_at is None or now >= current.next_probe_at
            if not probe_due:
                if current.state == "half_open":
                    raise CircuitOpenError(
                        current,
                        f"{current.describe()}; next probe after "
                        f"{_et(current.next_probe_at)} if it never reports",
                    )
                raise CircuitOpenError(current)
            # This caller is the probe. next_probe_at becomes the probe's lease: if it never reports,
            # the next caller after the lease probes again.
            self._write(
                conn,
                BreakerState(
                    vendor=self.vendor,
                    state="half_open",
                    consecutive_failures=current.consecutive_failures,
                    opened_at=current.opened_at,
                    next_probe_at=now + self.reset_timeout,
                    last_error=current.last_error,
                    updated_at=now,
                ),
            )
            return "half_open"

    def record_success(self) -> BreakerState:
        """A call succeeded: close the breaker and reset the failure count."""
        now = self._now()
        with self._transaction() as conn:
            row = queries.breaker_status(conn, self.schema, self.vendor)
            if row is None or (row[0] == "closed" and row[1] == 0):
                return self._read(conn)
            current = self._lock_row(conn)
            closed = BreakerState(
                vendor=self.vendor,
                state="closed",
                consecutive_failures=0,
                opened_at=None,
                next_probe_at=None,
                last_error=current.last_error,
                updated_at=now,
            )
            self._write(conn, closed)
            return closed

    def record_failure(self, error: str | BaseException) -> BreakerState:
        """A call failed: count it; open at the threshold; a failed half-open probe re-opens."""
        now = self._now()
        message = _clean_error(
            f"{type(error).__name__}: {error}" if isinstance(error, BaseException) else error
        )
        with self._transaction() as conn:
            current = self._lock_row(conn)
            failures = current.consecutive_failures + 1
            if current.state == "half_open" or (
                current.state == "closed" and failures >= self.failure_threshold
            ):
                new = BreakerState(
                    vendor=self.vendor,
                    state="open",
                    consecutive_failures=failures,
                    opened_at=now,
                    next_probe_at=now + self.reset_timeout,
                    last_error=message,
                    updated_at=now,
                )
            else:  # still closed below the threshold, or already open (a call that started before it opened)
                new = BreakerState(
                    vendor=self.vendor,
                    state=current.state,
                    consecutive_failures=failures,
                    opened_at=current.opened_at,
                    next_probe_at=current.next_probe_at,
                    last_error=message,
                    updated_at=now,
                )
            self._write(conn, new)
            return new

    def reset(self) -> None:
        """Close the breaker by hand (an operator's override)."""
        with self._transaction() as conn:
            self._lock_row(conn)
            self._write(conn, BreakerState(vendor=self.vendor, updated_at=self._now()))

    def _read(self, conn: psycopg.Connection) -> BreakerState:
        row = queries.breaker_row(conn, self.schema, self.vendor)
        return BreakerState(*row) if row else BreakerState(vendor=self.vendor)

    @contextmanager
    def guard(self, trips_on: tuple[type[BaseException], ...] | None = None) -> Iterator[BreakerStateName]:
        """``before_call`` on entry; on exit ``record_success``, or ``record_failure`` for ``trips_on``
        errors (default :func:`default_trips_on`). Other errors (a 404, a bad request) prove the vendor
        answered: a probe counts them as a success, a closed breaker records nothing."""
        if trips_on is None:
            trips_on = default_trips_on()
        mode = self.before_call()
        try:
            yield mode
        except trips_on as exc:
            self.record_failure(exc)
            raise
        except Exception:
            if mode == "half_open":
                self.record_success()
            raise
        else:
            self.record_success()


def breaker_states(url: str, schema: str = DEFAULT_SCHEMA) -> list[BreakerState]:
    """Every vendor's row, for health reports."""
    with psycopg.connect(url, connect_timeout=10) as conn:
        rows = queries.breaker_rows(conn, validate_schema_name(schema))
    return [BreakerState(*row) for row in rows]
