"""The SQL text of the bar aggregates: one SELECT per aggregate in either flavour, the TimescaleDB DDL
(continuous aggregates) and the retention policies. Text only, so migrations can use it
(:mod:`trading_data.db.aggregates` runs it). Schema names reach here validated by the caller."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from trading_data.settings.history import RETENTION_DAYS

AGGREGATES: dict[str, str] = {"bars_5m": "5 minutes", "bars_1h": "1 hour"}
"""Each aggregate's name and bucket width (a PostgreSQL interval)."""
KEY = ("ticker", "ts")
"""One row per ticker and bucket: the plain tables' primary key, the continuous aggregates' GROUP BY."""


@dataclass(frozen=True)
class AggregateColumn:
    sql_type: str
    nullable: bool
    description: str


AGGREGATE_COLUMNS: dict[str, AggregateColumn] = {
    "ts": AggregateColumn("TIMESTAMPTZ", False, "Bucket start (UTC); the bar covers [ts, ts + bucket)"),
    "ticker": AggregateColumn("TEXT", False, "Stock ticker"),
    "open": AggregateColumn("DOUBLE PRECISION", False, "Open of the bucket's first minute bar, USD"),
    "high": AggregateColumn("DOUBLE PRECISION", False, "Highest high of the bucket's minute bars, USD"),
    "low": AggregateColumn("DOUBLE PRECISION", False, "Lowest low of the bucket's minute bars, USD"),
    "close": AggregateColumn("DOUBLE PRECISION", False, "Close of the bucket's last minute bar, USD"),
    "volume": AggregateColumn("DOUBLE PRECISION", False, "Shares traded: the minute bars' volumes summed"),
    "vwap": AggregateColumn(
        "DOUBLE PRECISION",
        True,
        "Volume-weighted average price, USD: sum(vwap x volume) / sum(volume) over the minute bars that "
        "have a vwap (null when none has)",
    ),
    "transactions": AggregateColumn("BIGINT", True, "Number of trades: the minute bars' counts summed"),
    "minute_bars": AggregateColumn(
        "BIGINT",
        False,
        "Minute bars aggregated: at most 5 (bars_5m) or 60 (bars_1h), fewer where a minute had no trade",
    ),
}
"""The aggregates' columns in their order: SQL type and nullability of the plain tables (migration 0005;
a continuous aggregate computes the same types) and the description the catalog and dictionary show."""
COLUMNS = tuple(AGGREGATE_COLUMNS)
Flavour = Literal["timescaledb", "postgresql"]


_REFRESHED = (
    "aggregated from the minute bars of prices by the bar_aggregates asset, which every prices tick, the "
    "16:30 pipeline and backfills run for their session"
)
AGGREGATE_DESCRIPTIONS = {
    "bars_5m": f"5-minute OHLCV bars per ticker, {_REFRESHED}.",
    "bars_1h": f"Hourly OHLCV bars per ticker, {_REFRESHED}.",
}
AGGREGATE_TIME_CONVENTIONS = {
    "bars_5m": (
        "`ts` is the bucket's start in UTC (a bar covers [ts, ts + 5 min)); buckets follow the UTC clock, "
        "so 09:30 New York opens one; a session's bars are those of its New York day"
    ),
    "bars_1h": (
        "`ts` is the bucket's start in UTC (a bar covers [ts, ts + 1 hour)); buckets follow the UTC clock, "
        "whole hours in New York too: the 09:00 New York bar holds the minute bars 09:00-09:59, pre-market "
        "09:00-09:29 included; a session's bars are those of its New York day"
    ),
}


def aggregate_select(schema: str, interval: str, flavour: Flavour, *, window: bool = False) -> str:
    """The SELECT of one aggregate over ``schema.prices``' minute bars; ``window`` adds ``ts >= %s AND
    ts < %s`` (the plain table's per-session recompute)."""
    if interval not in AGGREGATES.values():
        raise ValueError(f"no aggregate of {interval!r}; known: {', '.join(AGGREGATES.values())}")
    if flavour == "timescaledb":
        bucket = f"time_bucket(INTERVAL '{interval}', ts)"
        first_open, last_close = "first(open, ts)", "last(close, ts)"
    else:
        bucket = f"date_bin(INTERVAL '{interval}', ts, TIMESTAMPTZ '2000-01-01 00:00+00')"
        first_open = "(array_agg(open ORDER BY ts))[1]"
        last_close = "(array_agg(close ORDER BY ts DESC))[1]"
    where = "timespan = 'minute'" + (" AND ts >= %s AND ts < %s" if window else "")
    return (
        f"SELECT {bucket} AS ts, ticker, {first_open} AS open, max(high) AS high, min(low) AS low, "
        f"{last_close} AS close, sum(volume) AS volume, "
        "sum(vwap * volume) / NULLIF(sum(volume) FILTER (WHERE vwap IS NOT NULL), 0) AS vwap, "
        "sum(transactions)::BIGINT AS transactions, count(*) AS minute_bars "
        f"FROM {schema}.prices WHERE {where} GROUP BY 1, ticker"
    )


def timescale_ddl(schema: str) -> list[str]:
    """Replace the plain aggregate tables by continuous aggregates (their rows are derived: nothing is
    lost), idempotently; then the retention policies of the settings."""
    statements = []
    for name, interval in AGGREGATES.items():
        statements += [
            "DO $$ BEGIN IF EXISTS (SELECT 1 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            f"WHERE n.nspname = '{schema}' AND c.relname = '{name}' AND c.relkind = 'r') THEN "
            f"DROP TABLE {schema}.{name}; END IF; END $$",
            f"CREATE MATERIALIZED VIEW IF NOT EXISTS {schema}.{name} WITH (timescaledb.continuous) AS "
            f"{aggregate_select(schema, interval, 'timescaledb')} WITH NO DATA",
        ]
    return statements + retention_ddl(schema)


def retention_ddl(schema: str, days: dict[str, int] | None = None) -> list[str]:
    """Per table: drop its retention policy, then add the configured one (0 days: none, keep forever)."""
    days = {t: s.get() for t, s in RETENTION_DAYS.items()} if days is None else days
    statements = []
    for table, keep in days.items():
        statements.append(f"SELECT remove_retention_policy('{schema}.{table}', if_exists => TRUE)")
        if keep:
            statements.append(
                f"SELECT add_retention_policy('{schema}.{table}', drop_after => INTERVAL '{keep} days')"
            )
    return statements
