"""The SQL of ``trading-data catalog``: per market table and bar aggregate, the rows and tickers of each
stored session and the bytes it takes on disk (a hypertable's chunks, a continuous aggregate's
materialized rows included)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from psycopg import sql

from trading_data.db.aggregate_sql import AGGREGATES
from trading_data.db.migrate import timescale_installed
from trading_data.schemas import TABLES

CATALOG_TABLES: tuple[str, ...] = (*TABLES, *AGGREGATES)
"""What the catalog covers: the market tables, then the bar aggregates (a table or a continuous aggregate)."""


@dataclass(frozen=True)
class StoredSessions:
    table: str
    sessions: dict[dt.date, int]  # session -> rows
    tickers: int
    rows: int
    bytes: int


def _session_expression(table: str) -> sql.Composable:
    if table in TABLES and TABLES[table].time_column == "session":
        return sql.Identifier("session")
    # A session's rows are those of its New York calendar day (trading_data.calendar.session_window).
    return sql.SQL("(ts AT TIME ZONE 'America/New_York')::date")


def _bytes(conn: Any, schema: str, table: str) -> int:
    name = f"{schema}.{table}"
    if timescale_installed(conn):
        # A continuous aggregate's rows are in its materialization hypertable, which hypertable_size counts.
        hyper = conn.execute(
            "SELECT 1 FROM timescaledb_information.hypertables WHERE hypertable_schema = %s "
            "AND hypertable_name = %s UNION ALL SELECT 1 FROM timescaledb_information.continuous_aggregates "
            "WHERE view_schema = %s AND view_name = %s",
            (schema, table, schema, table),
        ).fetchone()
        if hyper:
            return int(conn.execute("SELECT hypertable_size(%s::regclass)", (name,)).fetchone()[0] or 0)
    return int(conn.execute("SELECT pg_total_relation_size(%s::regclass)", (name,)).fetchone()[0])


def stored_sessions(conn: Any, schema: str, table: str) -> StoredSessions:
    """One scan for the sessions, one for the distinct tickers, and the size on disk."""
    target = sql.SQL("{}.{}").format(sql.Identifier(schema), sql.Identifier(table))
    per_session = conn.execute(
        sql.SQL("SELECT {} AS session, count(*) FROM {} GROUP BY 1 ORDER BY 1").format(
            _session_expression(table), target
        )
    ).fetchall()
    tickers = conn.execute(sql.SQL("SELECT count(DISTINCT ticker) FROM {}").format(target)).fetchone()[0]
    sessions = {day: int(n) for day, n in per_session}
    return StoredSessions(table, sessions, int(tickers), sum(sessions.values()), _bytes(conn, schema, table))
