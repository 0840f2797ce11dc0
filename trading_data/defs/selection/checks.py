"""The selection's blocking checks, in SQL against one session partition (DESIGN.md decision 12; each
session of a backfill run's range): no active tickers, or positions beyond the gross limit, stop the
session's run before the feeds use them."""

import warnings
from typing import Any

import dagster as dg

from trading_data.db import queries
from trading_data.db.resources import MarketDatabase
from trading_data.orchestration.sessions import check_sessions
from trading_data.partitions import session_partitions
from trading_data.settings import PipelineSettingsResource

# Partitioned checks are a preview feature, and the right one: without partitions_def a check on a
# partitioned asset loads every partition.
warnings.filterwarnings("ignore", message="Specifying a partitions_def on an AssetCheckSpec")


@dg.asset_check(
    asset="selected_tickers",
    partitions_def=session_partitions,
    blocking=True,
    description="At least one active ticker, and no more than max_active_tickers.",
)
def selected_tickers_has_active(
    context: dg.AssetCheckExecutionContext, database: MarketDatabase, settings: PipelineSettingsResource
) -> Any:
    limit = settings.to_settings().max_active_tickers
    symbols = settings.to_settings().symbols

    def evaluate(key: str) -> dg.AssetCheckResult:
        active = database.run(queries.active_tickers, key)
        ok = bool(active) and (len(active) <= limit or bool(symbols))
        return dg.AssetCheckResult(passed=ok, metadata={"active": len(active), "max_active_tickers": limit})

    yield from check_sessions(context, evaluate)


@dg.asset_check(
    asset="position_sizes",
    partitions_def=session_partitions,
    blocking=True,
    description="Total weight within the gross exposure limit; no negative positions.",
)
def position_sizes_within_limits(context: dg.AssetCheckExecutionContext, database: MarketDatabase) -> Any:
    def evaluate(key: str) -> dg.AssetCheckResult:
        gross, min_shares = database.run(queries.position_totals, key)
        return dg.AssetCheckResult(
            passed=gross <= 1.0 + 1e-9 and min_shares >= 0,
            metadata={"gross_weight": gross, "min_shares": min_shares},
        )

    yield from check_sessions(context, evaluate)


SELECTION_CHECKS = [selected_tickers_has_active, position_sizes_within_limits]
