"""5-minute and hourly bars from the minute bars (trading_data/db/aggregates.py): TimescaleDB continuous
aggregates refreshed for the session's window, or on plain PostgreSQL tables recomputed for it."""

import dagster as dg

from trading_data.calendar import session_window
from trading_data.db import aggregates
from trading_data.db.aggregate_sql import AGGREGATE_COLUMNS
from trading_data.db.resources import MarketDatabase
from trading_data.partitions import session_partitions


@dg.asset(
    partitions_def=session_partitions,
    group_name="analytics",
    kinds={"postgres", "sql"},
    deps=["prices"],
    # One run refreshes any range of sessions (one window): a backfill of a year is one step, not 252.
    backfill_policy=dg.BackfillPolicy.single_run(),
    metadata={
        "partition_expr": "ts",
        "write_mode": "replace",
        # The columns of both bars_5m and bars_1h (docs/data-dictionary.md), for the UI's Columns panel.
        "dagster/column_schema": dg.TableSchema(
            columns=[
                dg.TableColumn(
                    name,
                    column.sql_type.lower(),
                    description=column.description,
                    constraints=dg.TableColumnConstraints(nullable=column.nullable),
                )
                for name, column in AGGREGATE_COLUMNS.items()
            ]
        ),
    },
    description=(
        "5-minute (`bars_5m`) and hourly (`bars_1h`) OHLCV bars from the session's minute bars in "
        "`prices`: open of the first minute, high/low extremes, close of the last, summed volume and "
        "transactions, volume-weighted vwap, `minute_bars` counted; `ts` is the bucket's start in UTC. "
        "TimescaleDB continuous aggregates refreshed for the session's window, else tables recomputed "
        "for it in one transaction."
    ),
)
def bar_aggregates(context: dg.AssetExecutionContext, database: MarketDatabase) -> dg.MaterializeResult:
    keys = context.partition_keys
    start, end = session_window(keys[0])[0], session_window(keys[-1])[1]
    counts = aggregates.refresh(database.url, database.schema_name, start, end)
    context.log.info(f"bar aggregates of {keys[0]}..{keys[-1]}: {counts}")
    return dg.MaterializeResult(
        metadata={f"{name}/rows": dg.MetadataValue.int(n) for name, n in counts.items()}
    )
