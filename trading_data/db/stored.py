"""What the market tables hold per ticker and session, for estimates (``trading-data backfill plan``)."""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg import sql

from trading_data.calendar import NEW_YORK
from trading_data.db.migrate import validate_schema_name
from trading_data.schemas import TABLES

ESTIMATED_TABLES = ("prices", "quotes", "trades", "options_flow", "indicators")


def table_rates(url: str, schema: str) -> dict[str, tuple[float, float]]:
    """Per table holding rows: (rows per ticker and session, bytes on disk per row, indexes included).
    Counted exactly (``count(DISTINCT ...)``): an estimate made before a backfill, not on a hot path."""
    validate_schema_name(schema)
    rates: dict[str, tuple[float, float]] = {}
    with psycopg.connect(url) as conn:
        for table in ESTIMATED_TABLES:
            spec = TABLES[table]
            target = sql.SQL("{}.{}").format(sql.Identifier(schema), sql.Identifier(spec.name))
            row: Any = conn.execute(
                sql.SQL(
                    "SELECT count(*), count(DISTINCT (ticker, ({} AT TIME ZONE %s)::date)), "
                    "pg_total_relation_size(%s) FROM {}"
                ).format(sql.Identifier(spec.time_column), target),
                (str(NEW_YORK), f"{schema}.{spec.name}"),
            ).fetchone()
            rows, ticker_sessions, size = row
            if rows and ticker_sessions:
                rates[table] = (rows / ticker_sessions, size / rows)
    return rates
