"""Dynamic ticker selection and position sizing (the seed's 09:35 and 09:45 jobs)."""

import asyncio
import datetime as dt

import dagster as dg
import pandas as pd
import pandera.errors as pa_errors
from pydantic import Field

from trading_data.calendar import previous_sessions
from trading_data.db.resources import MarketDatabase
from trading_data.domain.selection import (
    SelectionParams,
    SelectionResult,
    fallback_selection,
    select_tickers,
)
from trading_data.domain.sizing import SizingParams, size_positions
from trading_data.domain.tickers import printable
from trading_data.orchestration.queues import queue_tags
from trading_data.orchestration.sessions import (
    add_session_metadata,
    rows_of_session,
    session_backfill_policy,
    session_frames,
)
from trading_data.orchestration.steps import (
    KINDS,
    asset_metadata,
    is_retryable,
    step_failure,
    vendor_retry_policy,
)
from trading_data.partitions import session_partitions
from trading_data.schemas import PositionSizes, SelectedTickers
from trading_data.settings import PipelineSettingsResource
from trading_data.sources.breaker import CircuitBreaker
from trading_data.sources.resources import PolygonResource


async def _daily_bars_window(
    polygon: PolygonResource, sessions: list[dt.date], symbols: tuple[str, ...] = ()
) -> tuple[pd.DataFrame, dict]:
    """The lookback window's daily bars: with ``symbols``, one range request per symbol (only the bars
    selection uses), else one whole-market grouped request per session."""
    async with polygon.client() as client:
        if symbols:
            ranges = (client.bars(t, 1, "day", sessions[0], sessions[-1]) for t in symbols)
            frames = await asyncio.gather(*ranges)
        else:
            frames = await asyncio.gather(*(client.grouped_daily(day) for day in sessions))
        stats = client.stats.as_metadata()
    bars = pd.concat([f for f in frames if len(f)], ignore_index=True) if frames else pd.DataFrame()
    return bars, stats


@dg.asset(
    partitions_def=session_partitions,
    group_name="selection",
    kinds=KINDS,
    retry_policy=vendor_retry_policy(),
    backfill_policy=session_backfill_policy(),
    pool="polygon",
    op_tags=queue_tags("polygon"),  # the pool's Celery queue (TRADING_DATA_EXECUTOR=celery)
    metadata=asset_metadata("selected_tickers"),
    description=(
        "Dynamic ticker selection from the whole-market daily bars of the previous `lookback_days` "
        "sessions: average volume, volatility (ATR / price) and an opportunity score "
        "(0.4·pct(volatility) + 0.3·pct(relative volume) + 0.3·pct(|momentum|)). Rows are the focus "
        "universe; `is_active` marks the tickers every feed collects. `symbols` replaces selection (and "
        "only those tickers' daily bars are fetched, one request each); "
        "on failure the default tickers are used and marked `is_fallback`."
    ),
)
def selected_tickers(
    context: dg.AssetExecutionContext,
    polygon: PolygonResource,
    settings: PipelineSettingsResource,
    database: MarketDatabase,
) -> pd.DataFrame:
    return session_frames(context, lambda key: _select_session(context, key, polygon, settings, database))


def _select_session(
    context: dg.AssetExecutionContext,
    key: str,
    polygon: PolygonResource,
    settings: PipelineSettingsResource,
    database: MarketDatabase,
) -> pd.DataFrame:
    """One session's selection (its own lookback window of daily bars), validated."""
    options = settings.to_settings()
    day = dt.date.fromisoformat(key)
    params = SelectionParams(
        lookback_days=options.lookback_days,
        min_volume=options.min_volume,
        min_volatility=options.min_volatility,
        focus_universe_size=options.focus_universe_size,
        opportunity_threshold=options.opportunity_threshold,
        max_active_tickers=options.max_active_tickers,
        default_tickers=options.default_tickers,
    )
    history = previous_sessions(day, options.lookback_days)
    stats: dict = {}
    try:
        with CircuitBreaker(database.url, database.schema_name, vendor="polygon").guard():
            bars, stats = asyncio.run(_daily_bars_window(polygon, history, options.symbols))
    except Exception as exc:  # noqa: BLE001 - the seed's fallback: a day never goes without tickers
        if not is_retryable(exc):
            # A rejected key or a bad setting is not a bad day: the default tickers would hide it.
            raise step_failure(exc) from None
        context.log.error(f"could not load daily bars for selection: {exc}")
        bars = pd.DataFrame()
    result, frame = _select_or_fall_back(context, day, bars, params, list(options.symbols))
    (context.log.warning if result.used_fallback or result.dropped.rows else context.log.info)(result.message)
    add_session_metadata(
        context,
        key,
        {
            "selection_source": result.source,
            "used_fallback": result.used_fallback,
            "message": result.message,
            "active_tickers": dg.MetadataValue.json(list(result.active_tickers)),
            "active_count": dg.MetadataValue.int(len(result.active_tickers)),
            "history_sessions": dg.MetadataValue.text(f"{history[0]} .. {history[-1]}"),
            "dropped_symbols": dg.MetadataValue.int(result.dropped.symbols),
            "dropped_symbol_rows": dg.MetadataValue.int(result.dropped.rows),
            "dropped_symbol_examples": dg.MetadataValue.json(list(result.dropped.examples)),
            **stats,
        },
    )
    return frame


def _select_or_fall_back(
    context: dg.AssetExecutionContext,
    day: dt.date,
    bars: pd.DataFrame,
    params: SelectionParams,
    symbols: list[str],
) -> tuple[SelectionResult, pd.DataFrame]:
    """Selection and its validated frame; a frame the model rejects falls back to the default tickers
    (a day never goes without tickers, seed section 6)."""
    try:
        result = select_tickers(day, bars, params, symbols=symbols or None)
        return result, SelectedTickers.validate(result.frame)
    except (pa_errors.SchemaError, pa_errors.SchemaErrors) as exc:
        problem = printable(str(exc).splitlines()[0][:300])
        context.log.error(f"the selection frame failed validation ({problem}); using the default tickers")
        result = fallback_selection(
            day, params.default_tickers, f"selection failed validation: {problem}", None, params
        )
        return result, SelectedTickers.validate(result.frame)


class SizingConfig(dg.Config):
    """Position sizing parameters (launchpad run config); fractions are of account_equity."""

    account_equity: float = Field(default=1_000_000.0, gt=0, description="Account equity in USD")
    risk_per_trade: float = Field(
        default=0.005, gt=0, le=1, description="Equity fraction risked per position"
    )
    atr_stop_multiple: float = Field(default=2.0, gt=0, description="Stop distance in ATRs (k)")
    max_position_weight: float = Field(default=0.10, gt=0, le=1, description="Cap on one position's weight")
    max_gross_exposure: float = Field(default=1.0, gt=0, description="Cap on the sum of weights")


@dg.asset(
    partitions_def=session_partitions,
    group_name="selection",
    kinds={"python", "pandas", "postgres"},
    backfill_policy=session_backfill_policy(),
    metadata=asset_metadata("position_sizes"),
    description=(
        "Volatility-targeted position per active ticker: shares = floor(equity × risk_per_trade / "
        "(k × ATR)), capped at max_position_weight × equity, then scaled so gross notional stays within "
        "max_gross_exposure × equity."
    ),
)
def position_sizes(
    context: dg.AssetExecutionContext, config: SizingConfig, selected_tickers: pd.DataFrame
) -> pd.DataFrame:
    def size(key: str) -> pd.DataFrame:
        day = dt.date.fromisoformat(key)
        selected = rows_of_session(selected_tickers, key)
        result = size_positions(day, selected, SizingParams(**config.model_dump()))
        for ticker, reason in result.reasons.items():
            context.log.warning(f"{ticker}: {reason}")
        frame = PositionSizes.validate(result.frame)
        add_session_metadata(
            context,
            key,
            {
                "gross_notional": dg.MetadataValue.float(round(result.gross_notional, 2)),
                "positions": dg.MetadataValue.int(int((frame["shares"] > 0).sum()) if len(frame) else 0),
                "unsized": dg.MetadataValue.json(result.reasons),
            },
        )
        return frame

    return session_frames(context, size)
