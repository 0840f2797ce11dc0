"""5-minute and hourly bars from the minute bars, TimescaleDB-native where it exists, and the retention
and compression state ``trading-data db status`` shows.

One SELECT defines each aggregate. In TimescaleDB mode it is a continuous aggregate (``time_bucket``,
``first``/``last``) that :func:`refresh` refreshes for a session's window; on plain PostgreSQL the same
columns are a table that :func:`refresh` recomputes for the window in one transaction (``date_bin``,
ordered ``array_agg``). Buckets start on the UTC clock (New York's offsets are whole hours, so 09:30 New
York opens a 5-minute bucket and the 09:00 hourly bucket holds 09:30-09:59), like Polygon's own bars.
"""

from __future__ import annotations

import datetime as dt

from trading_data.db.aggregate_sql import AGGREGATES, COLUMNS, aggregate_select
from trading_data.db.migrate import aggregate_kind, aggregate_kinds, hypertables, validate_schema_name
from trading_data.settings.history import RETENTION_DAYS


def refresh(url: str, schema: str, start: dt.datetime, end: dt.datetime) -> dict[str, int]:
    """Bring every aggregate up to date for ``[start, end)``; returns its rows in the window."""
    import psycopg
    from psycopg import sql

    validate_schema_name(schema)
    counts: dict[str, int] = {}
    # refresh_continuous_aggregate cannot run inside a transaction block: autocommit.
    with psycopg.connect(url, autocommit=True) as conn:
        for name, interval in AGGREGATES.items():
            target = sql.SQL("{}.{}").format(sql.Identifier(schema), sql.Identifier(name))
            if aggregate_kind(conn, schema, name) == "table":
                with conn.transaction():
                    conn.execute(
                        sql.SQL("DELETE FROM {} WHERE ts >= %s AND ts < %s").format(target), (start, end)
                    )
                    select = aggregate_select(schema, interval, "postgresql", window=True)
                    columns = sql.SQL(", ").join(map(sql.Identifier, COLUMNS))
                    statement = sql.SQL("INSERT INTO {} ({}) ").format(target, columns) + sql.SQL(select)  # type: ignore[arg-type]
                    conn.execute(statement, (start, end))
            else:
                conn.execute(
                    "CALL refresh_continuous_aggregate(%s, %s, %s)", (f"{schema}.{name}", start, end)
                )
            row = conn.execute(
                sql.SQL("SELECT count(*) FROM {} WHERE ts >= %s AND ts < %s").format(target), (start, end)
            ).fetchone()
            counts[name] = int(row[0]) if row else 0
    return counts


def status(url: str, schema: str) -> dict[str, object]:
    """Aggregates, retention and compression as ``trading-data db status`` shows them."""
    import psycopg

    validate_schema_name(schema)
    configured = {t: (f"{s.get()} days" if s.get() else "forever") for t, s in RETENTION_DAYS.items()}
    with psycopg.connect(url) as conn:
        aggregates = {
            name: found or "missing (run `trading-data db migrate`)"
            for name, found in aggregate_kinds(conn, schema).items()
        }
        # Per schema: a database with the extension may also hold a schema migrated in plain mode.
        tables = hypertables(conn, schema)
        if not tables:
            return {
                "aggregates": aggregates,
                "retention": {"configured": configured, "enforced": "no: plain PostgreSQL keeps every row"},
                "compression": "not available: plain PostgreSQL",
            }
        policies: dict[str, dict[str, str]] = {t: {} for t in tables}
        for table, proc, config in conn.execute(
            "SELECT hypertable_name, proc_name, config FROM timescaledb_information.jobs "
            "WHERE proc_name IN ('policy_retention', 'policy_compression') AND hypertable_schema = %s",
            (schema,),
        ):
            key = "drop_after" if proc == "policy_retention" else "compress_after"
            policies[str(table)][key] = str((config or {}).get(key))
        chunks = {
            str(table): (int(total), int(done or 0))
            for table, total, done in conn.execute(
                "SELECT hypertable_name, count(*), count(*) FILTER (WHERE is_compressed) "
                "FROM timescaledb_information.chunks WHERE hypertable_schema = %s GROUP BY 1",
                (schema,),
            )
        }
    retention = {t: p["drop_after"] for t, p in policies.items() if "drop_after" in p}
    compression = {
        t: {
            "compress_after": policies[t].get("compress_after", "never (no policy)"),
            "chunks": chunks.get(t, (0, 0))[0],
            "compressed_chunks": chunks.get(t, (0, 0))[1],
        }
        for t in tables
    }
    return {
        "aggregates": aggregates,
        "retention": {
            "configured": configured,
            "enforced": "yes: TimescaleDB retention policies drop older chunks",
            "policies": retention,
        },
        "compression": compression,
    }
