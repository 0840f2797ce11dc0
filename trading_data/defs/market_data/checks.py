"""The feeds' checks, in SQL against one session partition (DESIGN.md decision 12; a backfill run of
several sessions evaluates each of them): every active ticker collected once the session has been open a
while (blocking for prices, which the indicators read), and the share of crossed quotes."""

import datetime as dt
import warnings
from typing import Any

import dagster as dg

from trading_data.calendar import session
from trading_data.clock import utc_now
from trading_data.db import queries
from trading_data.db.resources import MarketDatabase
from trading_data.orchestration.sessions import check_sessions
from trading_data.partitions import session_partitions

# Partitioned checks are a preview feature, and the right one: without partitions_def a check on a
# partitioned asset loads every partition.
warnings.filterwarnings("ignore", message="Specifying a partitions_def on an AssetCheckSpec")

# A feed is expected to hold every active ticker this long after the open (slow names trade late).
FEED_GRACE = dt.timedelta(minutes=20)
# Consolidated NBBO quotes are crossed (ask < bid) for moments; past this share of a session's quotes
# the feed itself is suspect, and quotes_not_crossed warns (README, Operations).
CROSSED_QUOTES_WARN_SHARE = 0.01


def _feed_check(table: str, blocking: bool) -> dg.AssetChecksDefinition:
    @dg.asset_check(
        asset=table,
        name=f"{table}_covers_active_tickers",
        partitions_def=session_partitions,
        blocking=blocking,
        description=f"Every active ticker has {table} rows once the session has been open "
        f"{int(FEED_GRACE.total_seconds() // 60)} minutes.",
    )
    def _check(context: dg.AssetCheckExecutionContext, database: MarketDatabase) -> Any:
        yield from check_sessions(context, lambda key: _covers_active_tickers(table, key, database))

    return _check


def _covers_active_tickers(table: str, key: str, database: MarketDatabase) -> dg.AssetCheckResult:
    active = database.run(queries.active_tickers, key)
    rows = database.session_rows(table, key)
    missing = sorted(t for t in active if rows.get(t, 0) == 0)
    opened = session(key).open
    due = utc_now() >= opened + FEED_GRACE
    return dg.AssetCheckResult(
        passed=not (due and missing),
        severity=dg.AssetCheckSeverity.ERROR,
        metadata={
            "missing_tickers": dg.MetadataValue.json(missing),
            "rows": sum(rows.values()),
            "due": due,
        },
    )


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
    def quotes_not_crossed(context: dg.AssetCheckExecutionContext, database: MarketDatabase) -> Any:
        yield from check_sessions(context, lambda key: _crossed_share(key, database))

    return quotes_not_crossed


def _crossed_share(key: str, database: MarketDatabase) -> dg.AssetCheckResult:
    quotes, crossed, locked = database.run(queries.crossed_quotes, key)
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


MARKET_DATA_CHECKS = [
    _feed_check("prices", blocking=True),
    _feed_check("quotes", blocking=False),
    _feed_check("trades", blocking=False),
    _crossed_quotes_check(),
]
