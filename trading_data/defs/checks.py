"""Asset checks, in SQL against one session partition (DESIGN.md decision 12).

Blocking checks stop bad data from flowing downstream in the same run: no active tickers, feeds
missing whole tickers once the session has been open a while, positions beyond the gross limit.
"""

import dataclasses
import datetime as dt
import warnings

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
from trading_data.partitions import session_partitions
from trading_data.settings import PipelineSettingsResource

# Partitioned checks are a preview feature, and the right one: without partitions_def a check on a
# partitioned asset loads every partition.
warnings.filterwarnings("ignore", message="Specifying a partitions_def on an AssetCheckSpec")

# A feed is expected to hold every active ticker this long after the open (slow names trade late).
FEED_GRACE = dt.timedelta(minutes=20)
# Consolidated NBBO quotes are crossed (ask < bid) for moments; past this share of a session's quotes
# the feed itself is suspect, and quotes_not_crossed warns (README, Operations).
CROSSED_QUOTES_WARN_SHARE = 0.01


@dg.asset_check(
    asset="selected_tickers",
    partitions_def=session_partitions,
    blocking=True,
    description="At least one active ticker, and no more than max_active_tickers.",
)
def selected_tickers_has_active(
    context: dg.AssetCheckExecutionContext, database: MarketDatabase, settings: PipelineSettingsResource
) -> dg.AssetCheckResult:
    active = database.run(queries.active_tickers, context.partition_key)
    limit = settings.to_settings().max_active_tickers
    symbols = settings.to_settings().symbols
    ok = bool(active) and (len(active) <= limit or bool(symbols))
    return dg.AssetCheckResult(passed=ok, metadata={"active": len(active), "max_active_tickers": limit})


@dg.asset_check(
    asset="position_sizes",
    partitions_def=session_partitions,
    blocking=True,
    description="Total weight within the gross exposure limit; no negative positions.",
)
def position_sizes_within_limits(
    context: dg.AssetCheckExecutionContext, database: MarketDatabase
) -> dg.AssetCheckResult:
    gross, min_shares = database.run(queries.position_totals, context.partition_key)
    return dg.AssetCheckResult(
        passed=gross <= 1.0 + 1e-9 and min_shares >= 0,
        metadata={"gross_weight": gross, "min_shares": min_shares},
    )


def _feed_check(table: str, blocking: bool) -> dg.AssetChecksDefinition:
    @dg.asset_check(
        asset=table,
        name=f"{table}_covers_active_tickers",
        partitions_def=session_partitions,
        blocking=blocking,
        description=f"Every active ticker has {table} rows once the session has been open "
        f"{int(FEED_GRACE.total_seconds() // 60)} minutes.",
    )
    def _check(context: dg.AssetCheckExecutionContext, database: MarketDatabase) -> dg.AssetCheckResult:
        key = context.partition_key
        active = database.run(queries.active_tickers, key)
        rows = database.session_rows(table, key)
        missing = sorted(t for t in active if rows.get(t, 0) == 0)
        opened = session(key).open
        due = dt.datetime.now(dt.UTC) >= opened + FEED_GRACE
        return dg.AssetCheckResult(
            passed=not (due and missing),
            severity=dg.AssetCheckSeverity.ERROR,
            metadata={
                "missing_tickers": dg.MetadataValue.json(missing),
                "rows": sum(rows.values()),
                "due": due,
            },
        )

    return _check


def _crossed_quotes_check() -> dg.AssetChecksDefinition:
    @dg.asset_check(
        asset="quotes",
        partitions_def=session_partitions,
        description=(
            "Counts the session's crossed (ask < bid) and locked (ask = bid) NBBO quotes, both sides "
            "quoted. Both are real consolidated-feed data and are stored; the check warns when crossed "
            f"quotes pass {CROSSED_QUOTES_WARN_SHARE:.0%} of the session's quotes (a suspect feed)."
        ),
    )
    def quotes_not_crossed(
        context: dg.AssetCheckExecutionContext, database: MarketDatabase
    ) -> dg.AssetCheckResult:
        quotes, crossed, locked = database.run(queries.crossed_quotes, context.partition_key)
        crossed_share = crossed / quotes if quotes else 0.0
        return dg.AssetCheckResult(
            passed=crossed_share <= CROSSED_QUOTES_WARN_SHARE,
            severity=dg.AssetCheckSeverity.WARN,
            metadata={
                "quotes": dg.MetadataValue.int(quotes),
                "crossed_quotes": dg.MetadataValue.int(crossed),
                "locked_quotes": dg.MetadataValue.int(locked),
                "crossed_share": dg.MetadataValue.float(crossed_share),
                "locked_share": dg.MetadataValue.float(locked / quotes if quotes else 0.0),
                "warn_share": dg.MetadataValue.float(CROSSED_QUOTES_WARN_SHARE),
            },
        )

    return quotes_not_crossed


@dg.asset_check(
    asset="daily_report",
    partitions_def=session_partitions,
    description="Warns when a collected feed covers under half of the session's minutes.",
)
def daily_report_coverage(
    context: dg.AssetCheckExecutionContext, database: MarketDatabase
) -> dg.AssetCheckResult:
    rows = database.run(queries.poor_coverage, context.partition_key)
    poor = [f"{table}/{ticker}: {coverage:.0%}" for table, ticker, coverage in rows]
    return dg.AssetCheckResult(
        passed=not poor,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={"poor_coverage": dg.MetadataValue.json(poor)},
    )


ASSET_CHECKS = [
    selected_tickers_has_active,
    position_sizes_within_limits,
    _feed_check("prices", blocking=True),
    _feed_check("quotes", blocking=False),
    _feed_check("trades", blocking=False),
    _crossed_quotes_check(),
    daily_report_coverage,
]


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
def daily_report_reconciled(
    context: dg.AssetCheckExecutionContext, database: MarketDatabase
) -> dg.AssetCheckResult:
    key = context.partition_key
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


ASSET_CHECKS.append(daily_report_reconciled)
