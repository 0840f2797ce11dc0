"""The SQL the platform runs beside the IO manager, in one place: one function per statement.

Watermarks for incremental ticks, row counts, rejected rows, the asset checks' and the daily report's
aggregates, the burst sensor's minute bars, and the circuit breakers' rows. Every function takes an open psycopg connection and the
(validated) schema name; the caller owns the transaction. Ticker symbols and times are always bound as
parameters, never formatted into SQL text; schema and table names are composed as identifiers. The
IO manager's bulk reads and writes go through ADBC instead (:mod:`trading_data.db.io_manager`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import pandas as pd

from trading_data.calendar import session_window
from trading_data.schemas import TABLES

# psycopg is imported where a query runs: a definitions load imports this module for its functions only,
# and every step process would pay the driver's import (~0.09 s) for nothing.
if TYPE_CHECKING:
    import psycopg
    from psycopg import sql

    Connection = psycopg.Connection[Any]
    Query = sql.Composable | str
Params = Sequence[Any] | Mapping[str, Any]


def _table(schema: str, table: str) -> sql.Composed:
    from psycopg import sql

    return sql.SQL("{}.{}").format(sql.Identifier(schema), sql.Identifier(TABLES[table].name))


def _own(schema: str, table: str) -> sql.Composed:
    """A platform table outside the market models (``rejects``, ``circuit_breakers``)."""
    from psycopg import sql

    return sql.SQL("{}.{}").format(sql.Identifier(schema), sql.Identifier(table))


def read_frame(conn: Connection, query: Query, params: Params = ()) -> pd.DataFrame:
    """The rows of ``query`` as a DataFrame named by its columns."""
    with conn.cursor() as cur:
        cur.execute(query, params)  # type: ignore[arg-type]
        columns = [d.name for d in cur.description or []]
        return pd.DataFrame(cur.fetchall(), columns=columns)


# --- feeds: watermarks, row counts, keys ------------------------------------------------------------


def watermarks(
    conn: Connection, schema: str, table: str, session_key: str, tickers: Sequence[str], where: str = ""
) -> dict[str, pd.Timestamp]:
    """Latest stored ``ts`` per ticker inside the session's window (incremental ticks start there)."""
    from psycopg import sql

    start, end = session_window(session_key)
    query = sql.SQL(
        "SELECT ticker, max(ts) FROM {} WHERE ts >= %s AND ts < %s AND ticker = ANY(%s) "
        + (f"AND {where} " if where else "")
        + "GROUP BY ticker"
    ).format(_table(schema, table))
    rows = conn.execute(query, (start, end, list(tickers))).fetchall()
    return {ticker: pd.Timestamp(latest) for ticker, latest in rows if latest is not None}


def session_rows(conn: Connection, schema: str, table: str, session_key: str) -> dict[str, int]:
    """Row count per ticker in one session's window."""
    from psycopg import sql

    params: tuple[Any, ...]
    if TABLES[table].time_column == "session":
        clause, params = "session = %s", (dt.date.fromisoformat(session_key),)
    else:
        clause, params = "ts >= %s AND ts < %s", session_window(session_key)
    query = sql.SQL("SELECT ticker, count(*) FROM {} WHERE " + clause + " GROUP BY ticker").format(
        _table(schema, table)
    )
    return {t: int(n) for t, n in conn.execute(query, params).fetchall()}


def minute_activity(conn: Connection, schema: str, table: str, session_key: str) -> pd.DataFrame:
    """Per ticker and minute: rows and last ts, aggregated in SQL (feeds have millions of rows)."""
    from psycopg import sql

    extra = "AND timespan = 'minute' " if table == "prices" else ""
    query = sql.SQL(
        "SELECT ticker, date_trunc('minute', ts) AS ts, count(*) AS n, max(ts) AS last_ts FROM {} "
        "WHERE ts >= %s AND ts < %s " + extra + "GROUP BY 1, 2 ORDER BY 1, 2"
    ).format(_table(schema, table))
    frame = read_frame(conn, query, session_window(session_key))
    if not frame.empty:
        frame["ts"] = pd.to_datetime(frame["ts"], utc=True)
        frame["last_ts"] = pd.to_datetime(frame["last_ts"], utc=True)
    return frame


def minute_bars(conn: Connection, schema: str, session_key: str, tickers: Sequence[str]) -> pd.DataFrame:
    """The session's minute bars of ``tickers``, oldest first (the daily report's chart)."""
    from psycopg import sql

    query = sql.SQL(
        "SELECT ts, ticker, timespan, open, high, low, close, volume FROM {} WHERE ts >= %s "
        "AND ts < %s AND timespan = 'minute' AND ticker = ANY(%s) ORDER BY ts"
    ).format(_table(schema, "prices"))
    frame = read_frame(conn, query, (*session_window(session_key), list(tickers)))
    if len(frame):
        frame["ts"] = pd.to_datetime(frame["ts"], utc=True)
    return frame


# --- rejected rows ----------------------------------------------------------------------------------


def copy_rejects(conn: Connection, schema: str, rows: Iterable[tuple[str, str, str, str, str]]) -> None:
    """Append (table_name, partition_key, run_id, reason, record JSON) rows to ``rejects`` by COPY."""
    from psycopg import sql

    query = sql.SQL("COPY {} (table_name, partition_key, run_id, reason, record) FROM STDIN").format(
        _own(schema, "rejects")
    )
    with conn.cursor() as cur, cur.copy(query) as copy:
        for row in rows:
            copy.write_row(row)


def delete_rejects(conn: Connection, schema: str, table: str, partition_key: str, run_id: str) -> int:
    """Delete one run's rejects of one table and partition; the number deleted."""
    from psycopg import sql

    query = sql.SQL("DELETE FROM {} WHERE table_name = %s AND partition_key = %s AND run_id = %s").format(
        _own(schema, "rejects")
    )
    return conn.execute(query, (table, partition_key, run_id)).rowcount


def reject_counts(conn: Connection, schema: str, session_key: str) -> dict[tuple[str, str], int]:
    """(table, ticker) -> distinct rows rejected for the session, over every run.

    A row rejected again by a later run (the next intraday tick re-fetching it, a re-run of a past
    session) is one row, counted once; rows rejected by different ticks all count.
    """
    from psycopg import sql

    query = sql.SQL(
        "SELECT table_name, coalesce(record->>'ticker', ''), count(DISTINCT record) FROM {} "
        "WHERE partition_key = %s GROUP BY 1, 2"
    ).format(_own(schema, "rejects"))
    return {(t, k): int(n) for t, k, n in conn.execute(query, (session_key,)).fetchall()}


# --- the volatility-burst sensor -------------------------------------------------------------------


def burst_window(
    conn: Connection,
    schema: str,
    session_date: dt.date,
    window: tuple[dt.datetime, dt.datetime],
    session_open: dt.datetime,
) -> tuple[pd.DataFrame, dict[str, float]]:
    """The session's active tickers' minute bars (ticker, ts, close, volume) in ``window`` and their
    minute volume from ``session_open`` to the window's end."""
    from psycopg import sql

    prices, selected = _table(schema, "prices"), _table(schema, "selected_tickers")
    active = sql.SQL("SELECT ticker FROM {} WHERE session = %s AND is_active").format(selected)
    minutes = sql.SQL("FROM {} WHERE timespan = 'minute' AND ts >= %s AND ts < %s AND ticker IN ({})")
    bars = read_frame(
        conn,
        sql.SQL("SELECT ticker, ts, close, volume ")
        + minutes.format(prices, active)
        + sql.SQL(" ORDER BY ticker, ts"),
        (*window, session_date),
    )
    totals = conn.execute(
        sql.SQL("SELECT ticker, sum(volume) ") + minutes.format(prices, active) + sql.SQL(" GROUP BY ticker"),
        (session_open, window[1], session_date),
    ).fetchall()
    return bars, {str(t): float(v) for t, v in totals}


# --- asset checks -----------------------------------------------------------------------------------


def active_tickers(conn: Connection, schema: str, session_key: str) -> list[str]:
    """The session's active selected tickers, in symbol order."""
    from psycopg import sql

    query = sql.SQL("SELECT ticker FROM {} WHERE session = %s AND is_active ORDER BY ticker").format(
        _table(schema, "selected_tickers")
    )
    return [row[0] for row in conn.execute(query, (dt.date.fromisoformat(session_key),))]


def position_totals(conn: Connection, schema: str, session_key: str) -> tuple[float, int]:
    """(gross weight, smallest share count) of the session's positions; (0.0, 0) without any."""
    from psycopg import sql

    query = sql.SQL(
        "SELECT coalesce(sum(weight), 0) AS gross, coalesce(min(shares), 0) AS min_shares FROM {} "
        "WHERE session = %s"
    ).format(_table(schema, "position_sizes"))
    gross, min_shares = conn.execute(query, (dt.date.fromisoformat(session_key),)).fetchone()  # type: ignore[misc]
    return float(gross), int(min_shares)


def crossed_quotes(conn: Connection, schema: str, session_key: str) -> tuple[int, int, int]:
    """(quotes, crossed, locked) of the session: crossed is ask < bid and locked ask = bid, both
    sides quoted."""
    from psycopg import sql

    query = sql.SQL(
        "SELECT count(*) AS quotes, "
        "count(*) FILTER (WHERE bid_price > 0 AND ask_price > 0 AND ask_price < bid_price) AS crossed, "
        "count(*) FILTER (WHERE bid_price > 0 AND ask_price = bid_price) AS locked "
        "FROM {} WHERE ts >= %s AND ts < %s"
    ).format(_table(schema, "quotes"))
    quotes, crossed, locked = conn.execute(query, session_window(session_key)).fetchone()  # type: ignore[misc]
    return int(quotes), int(crossed), int(locked)


def poor_coverage(conn: Connection, schema: str, session_key: str) -> list[tuple[str, str, float]]:
    """(table, ticker, coverage) of the report's collected feeds covering under half the minutes."""
    from psycopg import sql

    query = sql.SQL(
        "SELECT table_name, ticker, coverage FROM {} WHERE session = %s AND "
        "table_name IN ('prices', 'quotes', 'trades') AND coverage < 0.5"
    ).format(_table(schema, "daily_report"))
    rows = conn.execute(query, (dt.date.fromisoformat(session_key),)).fetchall()
    return [(str(t), str(k), float(c)) for t, k, c in rows]


def reconciliation_aggregates(
    conn: Connection,
    schema: str,
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
    from psycopg import sql

    day_start, day_end = session_window(session_key)
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
    tables = {name: _table(schema, name) for name in ("prices", "trades", "quotes")}
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
    return read_frame(conn, query, params)


# --- circuit breakers -------------------------------------------------------------------------------

# A breaker row's columns, in the order of trading_data.sources.breaker.BreakerState's fields.
BREAKER_COLUMNS = (
    "vendor",
    "state",
    "consecutive_failures",
    "opened_at",
    "next_probe_at",
    "last_error",
    "updated_at",
)


def _breaker_select() -> sql.Composed:
    from psycopg import sql

    return sql.SQL(", ").join(sql.Identifier(c) for c in BREAKER_COLUMNS)


def breaker_row(conn: Connection, schema: str, vendor: str, *, lock: bool = False) -> tuple[Any, ...] | None:
    """The vendor's breaker row (BREAKER_COLUMNS), or None; ``lock`` holds it until the transaction ends."""
    from psycopg import sql

    query = sql.SQL("SELECT {} FROM {} WHERE vendor = %s" + (" FOR UPDATE" if lock else "")).format(
        _breaker_select(), _own(schema, "circuit_breakers")
    )
    return conn.execute(query, (vendor,)).fetchone()


def breaker_status(conn: Connection, schema: str, vendor: str) -> tuple[str, int] | None:
    """(state, consecutive_failures) of the vendor's breaker without a lock, or None without a row."""
    from psycopg import sql

    query = sql.SQL("SELECT state, consecutive_failures FROM {} WHERE vendor = %s").format(
        _own(schema, "circuit_breakers")
    )
    return conn.execute(query, (vendor,)).fetchone()  # type: ignore[return-value]


def lock_breaker_row(conn: Connection, schema: str, vendor: str) -> tuple[Any, ...]:
    """Create the vendor's row if missing and lock it for the rest of the transaction."""
    from psycopg import sql

    conn.execute(
        sql.SQL("INSERT INTO {} (vendor) VALUES (%s) ON CONFLICT (vendor) DO NOTHING").format(
            _own(schema, "circuit_breakers")
        ),
        (vendor,),
    )
    row = breaker_row(conn, schema, vendor, lock=True)
    assert row is not None
    return row


def update_breaker_row(conn: Connection, schema: str, row: Sequence[Any]) -> None:
    """Write a breaker row (BREAKER_COLUMNS order) over the vendor's stored one."""
    from psycopg import sql

    vendor, *values = row
    assignments = sql.SQL(", ").join(
        sql.SQL("{} = %s").format(sql.Identifier(c)) for c in BREAKER_COLUMNS[1:]
    )
    conn.execute(
        sql.SQL("UPDATE {} SET {} WHERE vendor = %s").format(_own(schema, "circuit_breakers"), assignments),
        (*values, vendor),
    )


def breaker_rows(conn: Connection, schema: str) -> list[tuple[Any, ...]]:
    """Every vendor's breaker row (BREAKER_COLUMNS), by vendor."""
    from psycopg import sql

    query = sql.SQL("SELECT {} FROM {} ORDER BY vendor").format(
        _breaker_select(), _own(schema, "circuit_breakers")
    )
    return conn.execute(query).fetchall()
