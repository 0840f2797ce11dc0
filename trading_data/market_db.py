"""Small, parameterised queries the assets and checks run beside the IO manager.

Watermarks for incremental ticks, rejected rows, and SQL asset checks. Ticker symbols and times
are always bound as parameters, never formatted into SQL text.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import dagster as dg
import pandas as pd
import psycopg
from psycopg import sql
from pydantic import Field

from trading_data.calendar import session_window
from trading_data.db.migrate import DEFAULT_SCHEMA, validate_schema_name
from trading_data.db.url import market_database_url, mask_password
from trading_data.schemas import TABLES

if TYPE_CHECKING:
    from trading_data.ops.breaker import CircuitBreaker


session_bounds = session_window  # moves with this module into trading_data.db


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

    @classmethod
    def check_configuration(cls, config: Mapping[str, Any]) -> None:
        """A bad schema name fails the run before any step (see trading_data.defs.executor)."""
        validate_schema_name(config.get("schema") or DEFAULT_SCHEMA)

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

    def reconciliation_aggregates(
        self,
        session_key: str,
        tickers: Sequence[str],
        regular_session: tuple[dt.datetime, dt.datetime],
        non_volume_conditions: Sequence[int] = (),
        non_price_conditions: Sequence[int] = (),
    ) -> pd.DataFrame:
        """Per ticker, what reconciling a session compares (``domain.reconciliation``), counted in SQL.

        ``day_bar_volume`` (null without a daily bar), ``trade_volume`` (sizes of the New York day's
        trades carrying none of ``non_volume_conditions``) and ``trade_count``; over the regular session
        ``[open, close)``: ``trade_minutes`` (minutes with a trade carrying none of
        ``non_price_conditions``), ``covered_trade_minutes`` (those with a minute bar), ``bar_minutes``,
        and ``quoted_half_hours`` (indices from the open of the half hours holding a quote). Minutes and
        half hours are EXISTS probes on the primary-key indexes: no trade or quote leaves the server.
        """
        day_start, day_end = session_bounds(session_key)
        opens, closes = (moment.astimezone(dt.UTC) for moment in regular_session)
        params = {
            "tickers": list(dict.fromkeys(tickers)),
            "day_start": day_start,
            "day_end": day_end,
            "open": opens,
            "close": closes,
            "non_volume": list(non_volume_conditions),
            "non_price": list(non_price_conditions),
        }
        tables = {name: self._table(name) for name in ("prices", "trades", "quotes")}
        query = sql.SQL(
            """
            WITH t AS (SELECT unnest(%(tickers)s::text[]) AS ticker),
            volumes AS (
                SELECT x.ticker, count(*) AS trade_count, coalesce(sum(x.size) FILTER (WHERE NOT coalesce(
                    string_to_array(x.conditions, ',')::int[] && %(non_volume)s::int[], false)), 0) AS volume
                FROM {trades} x
                WHERE x.ts >= %(day_start)s AND x.ts < %(day_end)s AND x.ticker = ANY(%(tickers)s)
                GROUP BY x.ticker
            ),
            grid AS (
                SELECT t.ticker,
                    EXISTS (SELECT 1 FROM {prices} p WHERE p.ticker = t.ticker AND p.timespan = 'minute'
                        AND p.ts >= m.start AND p.ts < m.start + interval '1 minute') AS has_bar,
                    EXISTS (SELECT 1 FROM {trades} x WHERE x.ticker = t.ticker AND x.ts >= m.start
                        AND x.ts < m.start + interval '1 minute' AND NOT coalesce(
                            string_to_array(x.conditions, ',')::int[] && %(non_price)s::int[], false)
                    ) AS has_trade
                FROM t CROSS JOIN generate_series(%(open)s::timestamptz,
                    %(close)s::timestamptz - interval '1 minute', interval '1 minute') AS m(start)
            ),
            minutes AS (
                SELECT ticker, count(*) FILTER (WHERE has_trade) AS trade_minutes,
                    count(*) FILTER (WHERE has_trade AND has_bar) AS covered_trade_minutes,
                    count(*) FILTER (WHERE has_bar) AS bar_minutes
                FROM grid GROUP BY ticker
            ),
            halves AS (
                SELECT t.ticker, array_agg(h.i ORDER BY h.i) FILTER (WHERE EXISTS (
                    SELECT 1 FROM {quotes} q WHERE q.ticker = t.ticker
                        AND q.ts >= %(open)s::timestamptz + h.i * interval '30 minutes'
                        AND q.ts < least(%(open)s::timestamptz + (h.i + 1) * interval '30 minutes',
                            %(close)s::timestamptz))) AS quoted_half_hours
                FROM t CROSS JOIN generate_series(0,
                    ceil(extract(epoch FROM %(close)s::timestamptz - %(open)s::timestamptz) / 1800)::int - 1
                ) AS h(i)
                GROUP BY t.ticker
            )
            SELECT t.ticker,
                (SELECT sum(p.volume) FROM {prices} p WHERE p.ticker = t.ticker AND p.timespan = 'day'
                    AND p.ts >= %(day_start)s AND p.ts < %(day_end)s) AS day_bar_volume,
                coalesce(v.volume, 0) AS trade_volume, coalesce(v.trade_count, 0) AS trade_count,
                m.trade_minutes, m.covered_trade_minutes, m.bar_minutes,
                coalesce(h.quoted_half_hours, '{{}}') AS quoted_half_hours
            FROM t LEFT JOIN volumes v USING (ticker) JOIN minutes m USING (ticker) JOIN halves h USING (ticker)
            ORDER BY t.ticker
            """
        ).format(**tables)
        # psycopg binds a mapping of named parameters; read_sql is typed for positional ones.
        return self.read_sql(query, params)  # type: ignore[arg-type]
