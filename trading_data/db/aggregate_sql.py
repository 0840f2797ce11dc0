"""The SQL text of the bar aggregates: one SELECT per aggregate in either flavour, the TimescaleDB DDL
(continuous aggregates) and the retention policies. Text only, so migrations can use it
(:mod:`trading_data.db.aggregates` runs it). Schema names reach here validated by the caller."""

from __future__ import annotations

from typing import Literal

from trading_data.settings.history import RETENTION_DAYS

AGGREGATES: dict[str, str] = {"bars_5m": "5 minutes", "bars_1h": "1 hour"}
COLUMNS = ("ts", "ticker", "open", "high", "low", "close", "volume", "vwap", "transactions", "minute_bars")
Flavour = Literal["timescaledb", "postgresql"]


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
