"""Derived tables: technical indicators and the daily report (the seed's full pipeline report)."""

import base64
import datetime as dt
from typing import Any

import dagster as dg
import pandas as pd

from trading_data.calendar import NEW_YORK, previous_sessions, session
from trading_data.clock import utc_now
from trading_data.db import queries
from trading_data.db.resources import MarketDatabase
from trading_data.defs.analytics.checks import reconcile_session
from trading_data.domain.indicators import compute_indicators
from trading_data.domain.reconciliation import TickerReconciliation, failure_summary
from trading_data.domain.report import (
    coverage_report,
    render_chart,
    render_markdown,
    render_reconciliation,
    with_reconciliation,
)
from trading_data.orchestration.sessions import (
    add_session_metadata,
    is_one_session,
    rows_of_session,
    session_backfill_policy,
    session_frames,
)
from trading_data.orchestration.steps import KINDS, active_tickers, asset_metadata
from trading_data.partitions import session_partitions
from trading_data.schemas import DailyReport, Indicators
from trading_data.settings import PipelineSettingsResource

REPORTED_TABLES = ("prices", "quotes", "trades", "options_flow", "indicators")
CHART_TICKERS = 4


def split_warmup(bars: pd.DataFrame, session_key: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Minute bars of the session, and the earlier ones that warm the recursive indicators up."""
    minute = bars[bars["timespan"] == "minute"]
    day = minute["ts"].dt.tz_convert(NEW_YORK).dt.date
    target = dt.date.fromisoformat(session_key)
    return minute[day == target], minute[day < target]


def session_and_previous(bars: pd.DataFrame, session_key: str) -> pd.DataFrame:
    """Of bars loaded for a range of sessions, those of ``session_key`` and the session before it: what a
    one-session run loads (its partition mapping's window)."""
    target = dt.date.fromisoformat(session_key)
    day = bars["ts"].dt.tz_convert(NEW_YORK).dt.date
    return bars[(day <= target) & (day >= previous_sessions(target, 1)[0])]


@dg.asset(
    partitions_def=session_partitions,
    group_name="analytics",
    kinds=KINDS,
    ins={"prices": dg.AssetIn(partition_mapping=dg.TimeWindowPartitionMapping(start_offset=-1))},
    backfill_policy=session_backfill_policy(),
    metadata=asset_metadata("indicators"),
    description=(
        "Per ticker and minute bar: sma_20, ema_12, ema_26, rsi_14, macd (12/26/9), Bollinger bands "
        "(20, 2σ), atr_14 (TA-Lib definitions) and session VWAP, from bars at or before each bar only; "
        "the previous session's bars warm the recursive indicators up."
    ),
)
def indicators(context: dg.AssetExecutionContext, prices: pd.DataFrame) -> pd.DataFrame:
    def compute(key: str) -> pd.DataFrame:
        loaded = prices if is_one_session(context) else session_and_previous(prices, key)
        bars, warmup = split_warmup(loaded, key)
        frame = Indicators.validate(compute_indicators(bars, warmup_bars=warmup))
        add_session_metadata(
            context,
            key,
            {
                "tickers": dg.MetadataValue.int(int(frame["ticker"].nunique()) if len(frame) else 0),
                "warmup_bars": dg.MetadataValue.int(len(warmup)),
            },
        )
        return frame

    return session_frames(context, compute)


@dg.asset(
    partitions_def=session_partitions,
    group_name="analytics",
    kinds={"python", "matplotlib", "postgres"},
    deps=["prices", "quotes", "trades", "options_flow", "position_sizes"],
    output_required=False,
    backfill_policy=session_backfill_policy(),
    metadata=asset_metadata("daily_report"),
    description=(
        "The session's validation report: per table and ticker, rows, coverage of the session's trading "
        "minutes, gaps (runs of 5+ uncovered minutes), validation failures (market.rejects) and "
        "freshness; after the close, the session's reconciliation per active ticker (trade volume "
        "against the daily bar, minute bars, quotes in every half hour; verdict in the "
        "daily_report_reconciled check); a markdown summary and a chart of the leading tickers as "
        "metadata. Skipped when generate_report is off."
    ),
)
def daily_report(
    context: dg.AssetExecutionContext,
    selected_tickers: pd.DataFrame,
    indicators: pd.DataFrame,
    database: MarketDatabase,
    settings: PipelineSettingsResource,
):
    if not settings.to_settings().generate_report:
        context.log.info("generate_report is off: no report for this session")
        return

    def report(key: str) -> pd.DataFrame:
        frame, metadata = _session_report(
            key, rows_of_session(selected_tickers, key), rows_of_session(indicators, key, "ts"), database
        )
        add_session_metadata(context, key, metadata)
        return frame

    yield dg.Output(session_frames(context, report))


def _session_report(
    key: str, selected_tickers: pd.DataFrame, indicators: pd.DataFrame, database: MarketDatabase
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """One session's report frame and its materialization metadata (markdown, chart, reconciliation)."""
    today = session(key)
    tickers = active_tickers(selected_tickers)
    activity = {
        table: database.minute_activity(table, key) for table in REPORTED_TABLES if table != "indicators"
    }
    activity["indicators"] = indicators[["ticker", "ts"]].assign(n=1) if len(indicators) else pd.DataFrame()
    now = utc_now()
    report = coverage_report(today, activity, database.reject_counts(key), now, expected_tickers=tickers)
    # The same verdict as the daily_report_reconciled check, for the report; judged once closed.
    reconciliation = reconcile_session(database, key, tickers) if now >= today.close else None
    # Coverage is computed from per-minute aggregates; the row counts come from the tables themselves.
    for table in REPORTED_TABLES:
        counts = database.session_rows(table, key)
        mask = report["table_name"] == table
        report.loc[mask, "rows"] = report.loc[mask, "ticker"].map(counts).fillna(0).astype("int64")
    report = with_reconciliation(DailyReport.validate(report), reconciliation)
    prices = database.run(queries.minute_bars, key, tickers[:CHART_TICKERS])
    chart = render_chart(prices, indicators, tickers[:CHART_TICKERS], today) if len(prices) else b""
    markdown = render_markdown(report, today, notes=[f"active tickers: {', '.join(tickers) or 'none'}"])
    markdown += "\n" + render_reconciliation(reconciliation, today)
    if chart:
        markdown += f"\n\n![leading tickers](data:image/png;base64,{base64.b64encode(chart).decode()})\n"
    worst = report[report["table_name"].isin(["prices", "quotes", "trades"])]["coverage"]
    return report, {
        "report": dg.MetadataValue.md(markdown),
        "min_coverage": dg.MetadataValue.float(float(worst.min()) if len(worst) else 0.0),
        "validation_failures": dg.MetadataValue.int(int(report["validation_failures"].sum())),
        "chart_bytes": dg.MetadataValue.int(len(chart)),
        **_reconciliation_metadata(reconciliation),
    }


def _reconciliation_metadata(results: list[TickerReconciliation] | None) -> dict[str, dg.MetadataValue]:
    if results is None:
        return {
            "reconciled": dg.MetadataValue.bool(False),
            "reconciliation": dg.MetadataValue.text("not judged"),
        }
    failed = sorted(r.ticker for r in results if not r.passed)
    return {
        "reconciled": dg.MetadataValue.bool(bool(results) and not failed),
        "reconciliation_failed_tickers": dg.MetadataValue.json(failed),
        "reconciliation": dg.MetadataValue.text(failure_summary(results)),
    }
