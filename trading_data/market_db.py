"""Small, parameterised queries the assets and checks run beside the IO manager.

Watermarks for incremental ticks, rejected rows, and SQL asset checks. Ticker symbols and times
are always bound as parameters, never formatted into SQL text.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import dagster as dg
import pandas as pd
import psycopg
from psycopg import sql
from pydantic import Field

from trading_data.calendar import new_york_day
from trading_data.db.migrate import DEFAULT_SCHEMA, validate_schema_name
from trading_data.db.url import market_database_url, mask_password
from trading_data.schemas import TABLES

if TYPE_CHECKING:
    from trading_data.ops.breaker import CircuitBreaker


def session_bounds(session_key: str) -> tuple[dt.datetime, dt.datetime]:
    """The partition window of a session as UTC datetimes: New York midnight to midnight."""
    start, end = new_york_day(dt.date.fromisoformat(session_key))
    return start.astimezone(dt.UTC), end.astimezone(dt.UTC)


def _json_record(row: dict[str, Any]) -> str:
    """A rejected row as JSON: missing values (NaN, NA, NaT) become null, which JSON can hold."""
    return json.dumps({k: None if _missing(v) else v for k, v in row.items()}, default=str)


def _missing(value: Any) -> bool:
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):  # a list or array is a value, not a missing one
        return False


class MarketDatabase(dg.ConfigurableResource):
    """The market-data database for watermarks, rejects and checks (the IO manager does the writes)."""

    database_url: str | None = None
    schema_: str = Field(default=DEFAULT_SCHEMA, alias="schema")

    @property
    def url(self) -> str:
        return self.database_url or market_database_url()

    @property
    def schema_name(self) -> str:
        return validate_schema_name(self.schema_)

    @contextmanager
    def connect(self) -> Iterator[psycopg.Connection]:
        try:
            conn = psycopg.connect(self.url, connect_timeout=10)
        except psycopg.OperationalError as exc:
            raise RuntimeError(
                f"cannot reach PostgreSQL at {mask_password(self.url)}: {exc}. Start it with "
                "`trading-data db start` or set TRADING_DATA_DATABASE_URL."
            ) from exc
        with conn:
            yield conn

    def breaker(self, vendor: str) -> CircuitBreaker:
        """The vendor's circuit breaker; its state lives in this database, shared by every process."""
        from trading_data.ops.breaker import CircuitBreaker

        return CircuitBreaker(self.url, self.schema_name, vendor=vendor)

    def _table(self, table: str) -> sql.Composed:
        return sql.SQL("{}.{}").format(sql.Identifier(self.schema_name), sql.Identifier(TABLES[table].name))

    def watermarks(
        self, table: str, session_key: str, tickers: Sequence[str], where: str = ""
    ) -> dict[str, pd.Timestamp]:
        """Latest stored ``ts`` per ticker inside the session's window (incremental ticks start there)."""
        start, end = session_bounds(session_key)
        query = sql.SQL(
            "SELECT ticker, max(ts) FROM {} WHERE ts >= %s AND ts < %s AND ticker = ANY(%s) "
            + (f"AND {where} " if where else "")
            + "GROUP BY ticker"
        ).format(self._table(table))
        with self.connect() as conn:
            rows = conn.execute(query, (start, end, list(tickers))).fetchall()
        return {ticker: pd.Timestamp(latest) for ticker, latest in rows if latest is not None}

    def session_rows(self, table: str, session_key: str) -> dict[str, int]:
        """Row count per ticker in one session's window."""
        spec = TABLES[table]
        if spec.time_column == "session":
            clause, params = "session = %s", (dt.date.fromisoformat(session_key),)
        else:
            start, end = session_bounds(session_key)
            clause, params = "ts >= %s AND ts < %s", (start, end)  # type: ignore[assignment]
        query = sql.SQL("SELECT ticker, count(*) FROM {} WHERE " + clause + " GROUP BY ticker").format(
            self._table(table)
        )
        with self.connect() as conn:
            return {t: int(n) for t, n in conn.execute(query, params).fetchall()}

    def duplicate_keys(self, table: str, session_key: str) -> int:
        """Rows sharing a primary key: impossible by the key, checked to prove it (should be 0)."""
        spec = TABLES[table]
        key = sql.SQL(", ").join(sql.Identifier(c) for c in spec.primary_key)
        start, end = session_bounds(session_key)
        column = sql.Identifier(spec.time_column)
        bounds: tuple[Any, ...] = (
            (start, end)
            if spec.time_column == "ts"
            else (
                dt.date.fromisoformat(session_key),
                dt.date.fromisoformat(session_key) + dt.timedelta(days=1),
            )
        )
        query = sql.SQL(
            "SELECT count(*) FROM (SELECT {key} FROM {t} WHERE {c} >= %s AND {c} < %s "
            "GROUP BY {key} HAVING count(*) > 1) d"
        ).format(key=key, t=self._table(table), c=column)
        with self.connect() as conn:
            return int(conn.execute(query, bounds).fetchone()[0])  # type: ignore[index]

    def record_rejects(self, table: str, partition_key: str, run_id: str, rejects: pd.DataFrame) -> int:
        """Append rows that failed validation (strict_validation off), with the reason, as JSON.

        Append-only: a step streams many pages and each page's rejects are kept. A step clears its
        own earlier rejects once, when it starts (:meth:`clear_rejects`), so a retry does not double them.
        """
        if rejects.empty:
            return 0
        payload = [
            (table, partition_key, run_id, str(row.pop("reject_reason")), _json_record(row))
            for row in rejects.to_dict("records")
        ]
        query = sql.SQL(
            "COPY {}.rejects (table_name, partition_key, run_id, reason, record) FROM STDIN"
        ).format(sql.Identifier(self.schema_name))
        with self.connect() as conn, conn.cursor() as cur, cur.copy(query) as copy:
            for item in payload:
                copy.write_row(item)
        return len(payload)

    def clear_rejects(self, table: str, partition_key: str, run_id: str) -> int:
        """Delete this run's rejects of one table and partition (a step calls it once, as it starts)."""
        query = sql.SQL(
            "DELETE FROM {}.rejects WHERE table_name = %s AND partition_key = %s AND run_id = %s"
        ).format(sql.Identifier(self.schema_name))
        with self.connect() as conn:
            return conn.execute(query, (table, partition_key, run_id)).rowcount

    def reject_counts(self, session_key: str) -> dict[tuple[str, str], int]:
        """(table, ticker) -> distinct rows rejected for the session, over every run.

        A row rejected again by a later run (the next intraday tick re-fetching it, a re-run of a past
        session) is one row, counted once; rows rejected by different ticks all count.
        """
        query = sql.SQL(
            "SELECT table_name, coalesce(record->>'ticker', ''), count(DISTINCT record) FROM {}.rejects "
            "WHERE partition_key = %s GROUP BY 1, 2"
        ).format(sql.Identifier(self.schema_name))
        with self.connect() as conn:
            return {(t, k): int(n) for t, k, n in conn.execute(query, (session_key,)).fetchall()}

    def read_sql(self, query: sql.Composed | sql.SQL | str, params: Sequence[Any] = ()) -> pd.DataFrame:
        with self.connect() as conn, conn.cursor() as cur:
            cur.execute(query, params)  # type: ignore[arg-type]
            columns = [d.name for d in cur.description or []]
            return pd.DataFrame(cur.fetchall(), columns=columns)

    def minute_activity(self, table: str, session_key: str) -> pd.DataFrame:
        """Per ticker and minute: rows and last ts, aggregated in SQL (feeds have millions of rows)."""
        start, end = session_bounds(session_key)
        extra = "AND timespan = 'minute' " if table == "prices" else ""
        query = sql.SQL(
            "SELECT ticker, date_trunc('minute', ts) AS ts, count(*) AS n, max(ts) AS last_ts FROM {} "
            "WHERE ts >= %s AND ts < %s " + extra + "GROUP BY 1, 2 ORDER BY 1, 2"
        ).format(self._table(table))
        frame = self.read_sql(query, (start, end))
        if not frame.empty:
            frame["ts"] = pd.to_datetime(frame["ts"], utc=True)
            frame["last_ts"] = pd.to_datetime(frame["last_ts"], utc=True)
        return frame
