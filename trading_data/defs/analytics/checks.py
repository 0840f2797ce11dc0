"""The daily report's checks: coverage of the collected feeds, and the closed session's reconciliation
(aggregated in SQL, judged in :mod:`trading_data.domain.reconciliation`)."""

import dataclasses
import warnings
from typing import Any

import dagster as dg

from trading_data.calendar import session
from trading_data.clock import utc_now
from trading_data.db import queries
from trading_data.db.resources import MarketDatabase
from trading_data.domain.reconciliation import (
    DEFAULT_TOLERANCES,
    NON_PRICE_CONDITIONS,
    NON_VOLUME_CONDITIONS,
    TickerReconciliation,
    aggregates_from_frame,
    failure_summary,
    part_details,
    reconcile,
)
from trading_data.orchestration.sessions import check_sessions
from trading_data.partitions import session_partitions

# Partitioned checks are a preview feature, and the right one: without partitions_def a check on a
# partitioned asset loads every partition.
warnings.filterwarnings("ignore", message="Specifying a partitions_def on an AssetCheckSpec")


@dg.asset_check(
    asset="daily_report",
    partitions_def=session_partitions,
    description="Warns when a collected feed covers under half of the session's minutes.",
)
def daily_report_coverage(context: dg.AssetCheckExecutionContext, database: MarketDatabase) -> Any:
    def evaluate(key: str) -> dg.AssetCheckResult:
        rows = database.run(queries.poor_coverage, key)
        poor = [f"{table}/{ticker}: {coverage:.0%}" for table, ticker, coverage in rows]
        return dg.AssetCheckResult(
            passed=not poor,
            severity=dg.AssetCheckSeverity.WARN,
            metadata={"poor_coverage": dg.MetadataValue.json(poor)},
        )

    yield from check_sessions(context, evaluate)


def reconcile_session(
    database: MarketDatabase, session_key: str, tickers: list[str]
) -> list[TickerReconciliation]:
    """Reconcile a session's stored trades, bars and quotes per ticker (aggregates counted in SQL)."""
    today = session(session_key)
    frame = database.run(
        queries.reconciliation_aggregates,
        session_key,
        tickers,
        (today.open, today.close),
        non_volume_conditions=NON_VOLUME_CONDITIONS,
        non_price_conditions=NON_PRICE_CONDITIONS,
    )
    return reconcile(today, tickers, aggregates_from_frame(frame))


@dg.asset_check(
    asset="daily_report",
    partitions_def=session_partitions,
    description=(
        "The session reconciles, per active ticker, once it has closed: "
        f"{DEFAULT_TOLERANCES.describe()} (trades with conditions that set no volume or no price "
        "excluded; counted in SQL). Fails (ERROR) naming each ticker and part that is off, and when "
        "no ticker was active; before the close it warns that the session is not reconciled yet."
    ),
)
def daily_report_reconciled(context: dg.AssetCheckExecutionContext, database: MarketDatabase) -> Any:
    yield from check_sessions(context, lambda key: _reconciled(key, database))


def _reconciled(key: str, database: MarketDatabase) -> dg.AssetCheckResult:
    """The reconciliation verdict of one session."""
    today = session(key)
    if utc_now() < today.close:
        return dg.AssetCheckResult(
            passed=False,
            severity=dg.AssetCheckSeverity.WARN,
            description=f"Not reconciled yet: the {key} session closes at {today.close:%H:%M} ET.",
            metadata={"judged": False},
        )
    tickers = database.run(queries.active_tickers, key)
    results = reconcile_session(database, key, tickers)
    failures = {r.ticker: dict(r.failures) for r in results if not r.passed}
    description = failure_summary(results)
    if not tickers:
        description = (
            f"No active tickers for {key}: nothing was collected to reconcile (materialize selected_tickers)."
        )
    return dg.AssetCheckResult(
        passed=bool(tickers) and not failures,
        severity=dg.AssetCheckSeverity.ERROR,
        description=description,
        metadata={
            "judged": True,
            "tickers": len(tickers),
            "failed_tickers": dg.MetadataValue.json(sorted(failures)),
            "failures": dg.MetadataValue.json(failures),
            **{part: dg.MetadataValue.json(rows) for part, rows in part_details(results).items()},
            "tolerances": dg.MetadataValue.json(dataclasses.asdict(DEFAULT_TOLERANCES)),
        },
    )


ANALYTICS_CHECKS = [daily_report_coverage, daily_report_reconciled]
