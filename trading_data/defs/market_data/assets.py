"""Intraday feeds for the active tickers: prices, quotes, trades and options flow.

While a session is live, each tick extends its partition: per ticker it fetches only what is newer
than the stored watermark and upserts it, so re-running a tick changes nothing. Once the session has
closed (a backfill, a manual re-run, the 16:30 full pipeline) a materialization recomputes it: every
active ticker's whole day is fetched again and replaces that ticker's stored rows of the window in
one transaction, so holes and vendor corrections are picked up (DESIGN.md decision 15). Pages stream
into the database. A backfill run of several sessions does the same for each session in turn, each
with its own selection (trading_data.orchestration.sessions).
"""

import datetime as dt
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from typing import Any

import dagster as dg
import pandas as pd

from trading_data.calendar import session, session_window
from trading_data.clock import utc_now
from trading_data.db.frame_chunks import FrameChunks
from trading_data.db.resources import MarketDatabase
from trading_data.orchestration.feeds import TickerFeed
from trading_data.orchestration.queues import queue_tags
from trading_data.orchestration.sessions import (
    add_session_metadata,
    label,
    rows_of_session,
    session_backfill_policy,
    session_streams,
)
from trading_data.orchestration.steps import (
    ChunkValidator,
    active_tickers,
    asset_metadata,
    vendor_retry_policy,
)
from trading_data.partitions import session_partitions
from trading_data.settings import PipelineSettingsResource
from trading_data.sources.breaker import CircuitBreaker
from trading_data.sources.resources import PolygonResource, UnusualWhalesResource

FEED_KINDS = {"polygon", "pandas", "postgres"}
FLOW_ALERTS = "record_type = 'flow_alert'"


def feed_asset(table: str, description: str, *, kinds: set[str] = FEED_KINDS, pool: str = "polygon") -> Any:
    """The decorator every feed shares: session partitions, vendor retries, a vendor pool, metadata."""
    return dg.asset(
        name=table,
        partitions_def=session_partitions,
        group_name="market_data",
        kinds=kinds,
        retry_policy=vendor_retry_policy(),
        backfill_policy=session_backfill_policy(),
        pool=pool,
        op_tags=queue_tags(pool),  # the pool's Celery queue (TRADING_DATA_EXECUTOR=celery)
        metadata=asset_metadata(table),
        description=description,
    )


def fetch_window(
    session_key: str, watermark: pd.Timestamp | None, now: dt.datetime | None = None
) -> tuple[dt.datetime, dt.datetime]:
    """[start, end) to fetch for one ticker: from its watermark (else the day's start) to now or the
    day's end, whichever is first. The watermark row itself is fetched again and upserted: vendors may
    publish more rows with the same timestamp."""
    day_start, day_end = session_window(session_key)
    start = max(day_start, watermark.to_pydatetime()) if watermark is not None else day_start
    now = now or utc_now()
    return start, min(day_end, max(now, start))


@dataclass(frozen=True)
class FeedPlan:
    """What one materialization of a feed fetches: per active ticker a window, whole or incremental."""

    tickers: list[str]
    windows: dict[str, tuple[dt.datetime, dt.datetime]]
    whole_session: bool
    """The session has closed: fetch each ticker's whole day and replace its stored window."""
    now: dt.datetime

    def metadata(self) -> dict[str, Any]:
        mode = "whole session, replacing each ticker's window" if self.whole_session else "incremental"
        return {
            "fetch_mode": dg.MetadataValue.text(mode),
            "active_tickers": dg.MetadataValue.int(len(self.tickers)),
        }


def plan_feed(
    context: dg.AssetExecutionContext,
    table: str,
    key: str,
    selected: pd.DataFrame,
    database: MarketDatabase,
    watermark_filter: str = "",
) -> FeedPlan:
    """The tickers and windows to fetch for session ``key`` (``selected``: the run's selection, of one or
    more sessions); fails at once when the session's selection is missing."""
    selected = rows_of_session(selected, key)
    tickers = active_tickers(selected)
    if not tickers:
        _explain_no_tickers(context, table, key, selected)
    now = utc_now()
    whole = session(key).has_closed(now)
    marks = {} if whole else database.watermarks(table, key, tickers, where=watermark_filter)
    windows = {t: fetch_window(key, marks.get(t), now) for t in tickers}
    if whole:
        context.log.info(
            f"{table}: {len(tickers)} active ticker(s); {key} has closed: fetching the whole session"
        )
    else:
        context.log.info(
            f"{label(context, table, key)}: {len(tickers)} active ticker(s); {len(marks)} with stored data "
            "resume from their watermark"
        )
    return FeedPlan(tickers, windows, whole, now)


def _explain_no_tickers(
    context: dg.AssetExecutionContext, table: str, key: str, selected: pd.DataFrame
) -> None:
    """No active ticker: a missing selection fails the step (never a silent empty success); a selection
    that exists but chose nothing is said so."""
    if selected.empty and not _materialized(context.instance, "selected_tickers", key):
        raise dg.Failure(
            description=(
                f"{table}: selected_tickers has no materialization for session {key}, so there are no "
                f"tickers to collect. Materialize it first (UI, or `dagster asset materialize -m "
                f"trading_data.definitions --select selected_tickers --partition {key}`); scheduled ticks "
                "fill it themselves."
            ),
            allow_retries=False,
        )
    reason = (
        f"selected_tickers for {key} is materialized but marks no ticker active "
        f"({len(selected)} row(s) in the focus universe): nothing to collect"
    )
    context.log.warning(f"{table}: {reason}")
    add_session_metadata(context, key, {"no_active_tickers": dg.MetadataValue.text(reason)})


def _materialized(instance: dg.DagsterInstance, asset: str, partition_key: str) -> bool:
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=dg.AssetKey(asset), asset_partitions=[partition_key]), limit=1
    ).records
    return bool(records)


def _strict(settings: PipelineSettingsResource) -> bool:
    return settings.to_settings().strict_validation


def _validator(
    context: dg.AssetExecutionContext,
    table: str,
    key: str,
    settings: PipelineSettingsResource,
    database: MarketDatabase,
) -> ChunkValidator:
    # A retried step replaces its own rejects rather than doubling them.
    database.clear_rejects(table, key, context.run_id)

    def store(rejects: pd.DataFrame) -> None:
        count = database.record_rejects(table, key, context.run_id, rejects)
        context.log.warning(
            f"{label(context, table, key)}: {count} row(s) failed validation and went to market.rejects: "
            f"{rejects['reject_reason'].value_counts().head(3).to_dict()}"
        )

    return ChunkValidator(table, strict=_strict(settings), on_rejects=store)


def _polygon_only(polygon: PolygonResource) -> Callable[[], AbstractAsyncContextManager[Any]]:
    @asynccontextmanager
    async def clients() -> AsyncIterator[Any]:
        async with polygon.client() as client:
            yield client

    return clients


def _polygon_stats(client: Any) -> dict[str, Any]:
    return client.stats.as_metadata()


def _tick_feed(
    context: dg.AssetExecutionContext,
    table: str,
    selected: pd.DataFrame,
    polygon: PolygonResource,
    settings: PipelineSettingsResource,
    database: MarketDatabase,
    pages: Callable[[str], Callable[[Any, str, dt.datetime, dt.datetime], AsyncIterator[pd.DataFrame]]],
    watermark_filter: str = "",
) -> FrameChunks:
    """The feed of every session of the run (``pages(key)`` fetches one ticker's window of session ``key``)."""
    return session_streams(
        context,
        lambda key: _session_feed(
            context, table, key, selected, polygon, settings, database, pages(key), watermark_filter
        ),
    )


def _session_feed(
    context: dg.AssetExecutionContext,
    table: str,
    key: str,
    selected: pd.DataFrame,
    polygon: PolygonResource,
    settings: PipelineSettingsResource,
    database: MarketDatabase,
    pages: Callable[[Any, str, dt.datetime, dt.datetime], AsyncIterator[pd.DataFrame]],
    watermark_filter: str = "",
) -> TickerFeed:
    plan = plan_feed(context, table, key, selected, database, watermark_filter)

    def fetch(client: Any, ticker: str) -> AsyncIterator[pd.DataFrame]:
        start, end = plan.windows[ticker]
        return pages(client, ticker, start, end)

    feed = TickerFeed(
        feed=label(context, table, key),
        tickers=plan.tickers,
        open_clients=_polygon_only(polygon),
        fetch=fetch,
        max_concurrency=polygon.concurrency(),
        chunk_filter=_validator(context, table, key, settings, database),
        stats=_polygon_stats,
        log=context.log,
        breakers=[CircuitBreaker(database.url, database.schema_name, vendor="polygon")],
        strict=_strict(settings),
        replace_window=plan.whole_session,
    )
    feed.metadata.update(plan.metadata())
    return feed


@feed_asset(
    "prices",
    "OHLCV minute bars and the daily bar for the active tickers (Polygon aggregates), "
    "upserted incrementally from each ticker's last stored minute.",
)
def prices(
    context: dg.AssetExecutionContext,
    selected_tickers: pd.DataFrame,
    polygon: PolygonResource,
    settings: PipelineSettingsResource,
    database: MarketDatabase,
) -> FrameChunks:
    def pages(day: str) -> Callable[[Any, str, dt.datetime, dt.datetime], AsyncIterator[pd.DataFrame]]:
        async def session_pages(
            client: Any, ticker: str, start: dt.datetime, end: dt.datetime
        ) -> AsyncIterator[pd.DataFrame]:
            start_ms = int(start.timestamp() * 1000)
            end_ms = int(end.timestamp() * 1000) - 1
            if end_ms >= start_ms:
                yield await client.bars(ticker, 1, "minute", start_ms, end_ms)
            # The daily bar (t = 00:00 New York) is partial until the close; every tick refreshes it.
            yield await client.bars(ticker, 1, "day", day, day)

        return session_pages

    return _tick_feed(
        context,
        "prices",
        selected_tickers,
        polygon,
        settings,
        database,
        pages,
        watermark_filter="timespan = 'minute'",
    )


def tick_feed_asset(table: str, description: str) -> dg.AssetsDefinition:
    """A Polygon v3 tick feed (``quotes``, ``trades``): ``PolygonClient.iter_<table>`` page by page."""

    @feed_asset(table, description)
    def _feed(
        context: dg.AssetExecutionContext,
        selected_tickers: pd.DataFrame,
        polygon: PolygonResource,
        settings: PipelineSettingsResource,
        database: MarketDatabase,
    ) -> FrameChunks:
        def pages(
            client: Any, ticker: str, start: dt.datetime, end: dt.datetime
        ) -> AsyncIterator[pd.DataFrame]:
            return getattr(client, f"iter_{table}")(ticker, gte_ns=start, lt_ns=end)

        return _tick_feed(context, table, selected_tickers, polygon, settings, database, lambda _key: pages)

    return _feed


quotes = tick_feed_asset(
    "quotes",
    "NBBO quotes for the active tickers (Polygon v3 quotes), streamed page by page and "
    "upserted incrementally from each ticker's watermark.",
)
trades = tick_feed_asset(
    "trades",
    "Individual trades for the active tickers (Polygon v3 trades), streamed page by page and "
    "upserted incrementally from each ticker's watermark.",
)


@feed_asset(
    "options_flow",
    "Unusual Whales flow alerts since the last stored alert, plus each poll's Polygon option "
    "chain snapshot (greeks, IV, open interest) for the active tickers. A backfill of a past "
    "session has alerts only: a snapshot is always of now.",
    kinds={"polygon", "unusual_whales", "postgres"},
    pool="unusual_whales",
)
def options_flow(
    context: dg.AssetExecutionContext,
    selected_tickers: pd.DataFrame,
    polygon: PolygonResource,
    unusual_whales: UnusualWhalesResource,
    settings: PipelineSettingsResource,
    database: MarketDatabase,
) -> FrameChunks:
    return session_streams(
        context,
        lambda key: _session_flow(
            context, key, selected_tickers, polygon, unusual_whales, settings, database
        ),
    )


def _session_flow(
    context: dg.AssetExecutionContext,
    key: str,
    selected_tickers: pd.DataFrame,
    polygon: PolygonResource,
    unusual_whales: UnusualWhalesResource,
    settings: PipelineSettingsResource,
    database: MarketDatabase,
) -> TickerFeed:
    plan = plan_feed(context, "options_flow", key, selected_tickers, database, FLOW_ALERTS)
    day_start, day_end = session_window(key)
    poll_snapshot = day_start <= plan.now < day_end

    @asynccontextmanager
    async def clients() -> AsyncIterator[Any]:
        async with polygon.client() as poly, unusual_whales.client() as uw:
            yield poly, uw

    async def fetch(both: Any, ticker: str) -> AsyncIterator[pd.DataFrame]:
        poly, uw = both
        start, end = plan.windows[ticker]
        yield await uw.flow_alerts(ticker, newer_than=start, older_than=end)
        if poll_snapshot:
            yield await poly.option_chain_snapshot(ticker, polled_at=plan.now)

    def stats(both: Any) -> dict[str, Any]:
        poly, uw = both
        return {**poly.stats.as_metadata(), **uw.stats.as_metadata()}

    if not poll_snapshot:
        context.log.info(f"{key} is not today's session: flow alerts only, no chain snapshot")
    feed = TickerFeed(
        feed=label(context, "options_flow", key),
        tickers=plan.tickers,
        open_clients=clients,
        fetch=fetch,
        max_concurrency=polygon.concurrency(),
        chunk_filter=_validator(context, "options_flow", key, settings, database),
        stats=stats,
        log=context.log,
        breakers=[
            CircuitBreaker(database.url, database.schema_name, vendor="polygon"),
            CircuitBreaker(database.url, database.schema_name, vendor="unusual_whales"),
        ],
        strict=_strict(settings),
        # Chain snapshots are of the moment they were polled and cannot be fetched again: a whole-session
        # re-fetch replaces the flow alerts only.
        replace_window=plan.whole_session,
        replace_filter=FLOW_ALERTS,
    )
    feed.metadata.update(plan.metadata())
    return feed
