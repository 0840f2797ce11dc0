"""Dynamic ticker selection: from whole-market daily bars to a focus universe and active tickers.

Input: daily bars for the ``lookback_days`` sessions before the target session, one row per ticker
per session (columns ``ticker, ts, open, high, low, close, volume``; ``vwap`` and ``transactions``
are ignored). A ticker may be missing some days; its metrics then use the bars it has. Rows whose
ticker cannot be a symbol (``domain.tickers.TICKER_PATTERN``; vendors serve lowercase, padded and binary
junk) are dropped before anything else, counted and reported (``SelectionResult.dropped``).

Per ticker, over its bars in the window (oldest first, ``C`` = close, ``H`` = high, ``L`` = low):

* ``avg_volume``      = mean of the daily volumes
* ``last_close``      = the close of its last bar
* ``atr``             = Wilder's average true range, period ``n = atr_period`` (14):
  ``TR_t = max(H_t - L_t, |H_t - C_{t-1}|, |L_t - C_{t-1}|)`` for every bar after the first (the
  first bar has no previous close, so it gives no TR, as in TA-Lib). With ``m`` TRs:
  if ``m >= n``: ``ATR = mean(TR_1..TR_n)`` then ``ATR_t = (ATR_{t-1} * (n - 1) + TR_t) / n`` for
  each later TR (identical to ``talib.ATR``'s last value); if ``1 <= m < n``: ``ATR = mean(TR)``.
  Fewer than 2 bars: no ATR, and the ticker cannot pass the volatility filter.
* ``volatility``      = ``atr / last_close``
* ``relative_volume`` = last bar's volume / ``avg_volume`` (0 when ``avg_volume`` is 0)
* ``momentum``        = ``last_close / first close - 1``

Filters (all must hold): at least 2 bars, ``avg_volume >= min_volume``,
``volatility >= min_volatility`` and, when ``require_latest_session`` (default), a bar on the
window's latest session (a halted or delisted ticker has stale metrics).

``opportunity_score`` (0..1), computed among the tickers that pass the filters only, so that it
ranks today's candidates against each other rather than against illiquid names::

    score = 0.4 * pct(volatility) + 0.3 * pct(relative_volume) + 0.3 * pct(|momentum|)

where ``pct(x)`` is the cross-sectional percentile rank ``rank(x) / N`` (ascending, ties share the
average rank, ``N`` = tickers passing the filters), so the best ticker on every measure scores 1.0.

Ranking: by score descending, ties by ticker ascending (deterministic); rank 1 is best. The focus
universe is the top ``focus_universe_size``; active tickers are the focus tickers with
``score >= opportunity_threshold``, at most ``max_active_tickers`` in rank order. The frame holds the
focus universe only (tickers outside it are summarised in the message).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd

from trading_data.calendar import NEW_YORK
from trading_data.clock import utc_now
from trading_data.domain.tickers import (
    DEFAULT_TICKERS,
    DroppedSymbols,
    drop_invalid_tickers,
    normalize_symbols,
)
from trading_data.schemas import SelectedTickers

SCORE_WEIGHTS = {"volatility": 0.4, "relative_volume": 0.3, "abs_momentum": 0.3}
REQUIRED_BAR_COLUMNS = ("ticker", "ts", "high", "low", "close", "volume")
METRIC_COLUMNS = ["avg_volume", "last_close", "atr", "volatility", "relative_volume", "momentum"]
OUTPUT_COLUMNS = list(SelectedTickers.to_schema().columns)


@dataclass(frozen=True)
class SelectionParams:
    """The seed's selection options (section 7) plus the ATR period and the staleness rule."""

    lookback_days: int = 20
    min_volume: float = 1_000_000.0
    min_volatility: float = 0.01
    focus_universe_size: int = 40
    opportunity_threshold: float = 0.5
    max_active_tickers: int = 10
    default_tickers: tuple[str, ...] = DEFAULT_TICKERS
    atr_period: int = 14
    require_latest_session: bool = True

    def __post_init__(self) -> None:
        if self.lookback_days < 2:
            raise ValueError("lookback_days must be >= 2 (ATR needs a previous close)")
        if self.atr_period < 1:
            raise ValueError("atr_period must be >= 1")
        if self.focus_universe_size < 1 or self.max_active_tickers < 1:
            raise ValueError("focus_universe_size and max_active_tickers must be >= 1")
        if not 0.0 <= self.opportunity_threshold <= 1.0:
            raise ValueError("opportunity_threshold is on the score's 0..1 scale")
        if self.min_volume < 0 or self.min_volatility < 0:
            raise ValueError("min_volume and min_volatility must be >= 0")


@dataclass(frozen=True)
class SelectionResult:
    """The SelectedTickers frame, a one-line account of what happened, and the fallback flag."""

    frame: pd.DataFrame
    message: str
    used_fallback: bool
    source: str  # "selection", "symbols" or "fallback"
    active_tickers: tuple[str, ...] = field(default=())
    dropped: DroppedSymbols = field(default_factory=DroppedSymbols)


def wilder_atr(high: np.ndarray, low: np.ndarray, close: np.ndarray, period: int = 14) -> float:
    """Wilder's ATR at the last bar (see the module docstring); NaN with fewer than 2 bars."""
    if len(close) < 2:
        return float("nan")
    previous_close = close[:-1]
    true_range = np.maximum.reduce(
        [high[1:] - low[1:], np.abs(high[1:] - previous_close), np.abs(low[1:] - previous_close)]
    )
    if len(true_range) < period:
        return float(true_range.mean())
    atr = float(true_range[:period].mean())
    for value in true_range[period:]:
        atr = (atr * (period - 1) + float(value)) / period
    return atr


def prepare_bars(session: dt.date, bars: pd.DataFrame, lookback_days: int) -> tuple[pd.DataFrame, int]:
    """Clean daily bars: keep sessions before ``session`` (no look-ahead), the last
    ``lookback_days`` of them, and drop rows with unusable prices. Returns (bars, dropped rows).

    Raises ValueError when the frame lacks a required column or nothing usable is left.
    """
    missing = [c for c in REQUIRED_BAR_COLUMNS if c not in bars.columns]
    if missing:
        raise ValueError(f"daily bars lack column(s) {missing}")
    if bars.empty:
        raise ValueError("no daily bars for the lookback window")
    frame = bars.loc[:, list(REQUIRED_BAR_COLUMNS)].copy()
    frame["ticker"] = frame["ticker"].astype(str)
    frame["ts"] = pd.to_datetime(frame["ts"], utc=True, format="ISO8601")
    for column in ("high", "low", "close", "volume"):
        frame[column] = pd.to_numeric(frame[column], errors="coerce").astype("float64")
    # Daily bars are stamped at New York midnight (or thereabouts): the New York date is the session.
    frame["day"] = frame["ts"].dt.tz_convert(NEW_YORK).dt.date
    frame = frame[frame["day"] < session]

    usable = (
        np.isfinite(frame[["high", "low", "close", "volume"]]).all(axis=1)
        & (frame["close"] > 0)
        & (frame["low"] > 0)
        & (frame["high"] >= frame["low"])
        & (frame["volume"] >= 0)
    )
    dropped = int((~usable).sum())
    frame = frame[usable]
    days = sorted(frame["day"].unique())[-lookback_days:]
    frame = frame[frame["day"].isin(days)]
    if frame.empty:
        raise ValueError(f"no usable daily bars before {session.isoformat()}")
    # One bar per ticker per session: a duplicate keeps the last row given.
    frame = frame.drop_duplicates(["ticker", "day"], keep="last").sort_values(["ticker", "day"])
    return frame.reset_index(drop=True), dropped


def ticker_metrics(bars: pd.DataFrame, atr_period: int = 14) -> pd.DataFrame:
    """Per-ticker metrics from prepared bars (``prepare_bars``), indexed by ticker.

    Columns: the METRIC_COLUMNS plus ``bars`` (count) and ``last_day`` (date of the last bar).
    """
    rows: list[dict[str, object]] = []
    for ticker, group in bars.groupby("ticker", sort=True):
        high = group["high"].to_numpy()
        low = group["low"].to_numpy()
        close = group["close"].to_numpy()
        volume = group["volume"].to_numpy()
        avg_volume = float(volume.mean())
        last_close = float(close[-1])
        atr = wilder_atr(high, low, close, atr_period)
        rows.append(
            {
                "ticker": ticker,
                "avg_volume": avg_volume,
                "last_close": last_close,
                "atr": atr,
                "volatility": atr / last_close,
                # 0/0 (never traded in the window) reads as "no unusual volume", not missing.
                "relative_volume": float(volume[-1]) / avg_volume if avg_volume > 0 else 0.0,
                "momentum": last_close / float(close[0]) - 1.0,
                "bars": len(group),
                "last_day": group["day"].iloc[-1],
            }
        )
    columns = ["ticker", *METRIC_COLUMNS, "bars", "last_day"]
    return pd.DataFrame(rows, columns=columns).set_index("ticker")


def opportunity_scores(metrics: pd.DataFrame) -> pd.Series:
    """The 0..1 score (module docstring) among the rows given: weighted percentile ranks."""
    if metrics.empty:
        return pd.Series(dtype="float64", index=metrics.index)
    ranks = {
        "volatility": metrics["volatility"].rank(pct=True, method="average"),
        "relative_volume": metrics["relative_volume"].rank(pct=True, method="average"),
        "abs_momentum": metrics["momentum"].abs().rank(pct=True, method="average"),
    }
    score = sum(SCORE_WEIGHTS[name] * rank for name, rank in ranks.items())
    return pd.Series(score, index=metrics.index, dtype="float64")


def _now(now: dt.datetime | pd.Timestamp | None) -> pd.Timestamp:
    stamp = pd.Timestamp(utc_now() if now is None else now)
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")


def _to_frame(session: dt.date, rows: pd.DataFrame, now: pd.Timestamp) -> pd.DataFrame:
    """Fill the bookkeeping columns, order the columns as the model, validate and coerce."""
    frame = rows.copy()
    frame["session"] = session
    frame["selected_at"] = now
    for column in METRIC_COLUMNS + ["opportunity_score"]:
        if column not in frame.columns:
            frame[column] = np.nan
        frame[column] = frame[column].astype("float64")
    frame["rank"] = frame["rank"].astype("Int64")
    frame = frame.loc[:, OUTPUT_COLUMNS].reset_index(drop=True)
    return SelectedTickers.validate(frame)


def rank_universe(
    session: dt.date,
    bars: pd.DataFrame,
    params: SelectionParams,
    now: dt.datetime | pd.Timestamp | None = None,
) -> tuple[pd.DataFrame, dict[str, int]]:
    """Filter, score and rank the market; returns (SelectedTickers frame of the focus universe,
    funnel counts). Raises ValueError on unusable input. Tickers must be valid symbols:
    ``select_tickers`` drops the others first (``drop_invalid_tickers``)."""
    prepared, dropped = prepare_bars(session, bars, params.lookback_days)
    metrics = ticker_metrics(prepared, params.atr_period)
    latest_day = prepared["day"].max()

    passes = (
        (metrics["bars"] >= 2)
        & (metrics["avg_volume"] >= params.min_volume)
        & (metrics["volatility"] >= params.min_volatility)  # NaN (one bar) compares False
    )
    if params.require_latest_session:
        passes &= metrics["last_day"] == latest_day
    candidates = metrics[passes].copy()
    candidates["opportunity_score"] = opportunity_scores(candidates)
    candidates = (
        candidates.reset_index()
        .sort_values(["opportunity_score", "ticker"], ascending=[False, True], kind="mergesort")
        .reset_index(drop=True)
    )
    candidates["rank"] = np.arange(1, len(candidates) + 1)
    focus = candidates.head(params.focus_universe_size).copy()
    focus["in_focus"] = True
    eligible = focus["opportunity_score"] >= params.opportunity_threshold
    active_ranks = set(focus.loc[eligible, "rank"].head(params.max_active_tickers))
    focus["is_active"] = focus["rank"].isin(active_ranks)
    focus["is_fallback"] = False
    focus["selection_source"] = "selection"
    funnel = {
        "tickers": len(metrics),
        "dropped_rows": dropped,
        "passed_volume": int((metrics["avg_volume"] >= params.min_volume).sum()),
        "passed_filters": len(candidates),
        "focus": len(focus),
        "active": len(active_ranks),
    }
    return _to_frame(session, focus, _now(now)), funnel


def symbols_selection(
    session: dt.date,
    symbols: str | Sequence[str],
    bars: pd.DataFrame | None = None,
    params: SelectionParams | None = None,
    now: dt.datetime | pd.Timestamp | None = None,
) -> SelectionResult:
    """The ``symbols`` override: every symbol active and in focus, ranked in the order given.

    Metrics (and a score among the symbols that have them) are filled where bars exist; no filter
    applies. Raises ValueError on an invalid or empty symbol list (a configuration error).
    """
    params = params or SelectionParams()
    tickers = normalize_symbols(symbols)
    if not tickers:
        raise ValueError("the symbols override is empty")
    rows = pd.DataFrame({"ticker": tickers})
    notes = ""
    if bars is not None and not bars.empty:
        try:
            prepared, _ = prepare_bars(session, bars[bars["ticker"].isin(tickers)], params.lookback_days)
            metrics = ticker_metrics(prepared, params.atr_period)
            metrics["opportunity_score"] = opportunity_scores(metrics.dropna(subset=["volatility"]))
            rows = rows.merge(
                metrics[METRIC_COLUMNS + ["opportunity_score"]].reset_index(), on="ticker", how="left"
            )
        except (ValueError, KeyError) as exc:
            notes = f"; metrics unavailable ({exc})"
    rows["rank"] = np.arange(1, len(rows) + 1)
    rows["in_focus"] = True
    rows["is_active"] = True
    rows["is_fallback"] = False
    rows["selection_source"] = "symbols"
    frame = _to_frame(session, rows, _now(now))
    with_metrics = int(frame["last_close"].notna().sum())
    message = f"symbols override: {len(tickers)} ticker(s) active ({with_metrics} with metrics){notes}"
    return SelectionResult(frame, message, False, "symbols", tuple(tickers))


def fallback_selection(
    session: dt.date,
    default_tickers: Sequence[str],
    reason: str,
    bars: pd.DataFrame | None = None,
    params: SelectionParams | None = None,
    now: dt.datetime | pd.Timestamp | None = None,
) -> SelectionResult:
    """The default tickers, all active, ``is_fallback`` True; ``reason`` goes into the message.

    Metrics are filled on a best-effort basis when ``bars`` are given (sizing needs price and ATR).
    """
    result = symbols_selection(session, default_tickers, bars, params, now)
    frame = result.frame.assign(is_fallback=True, selection_source="fallback")
    message = f"fallback to {len(frame)} default ticker(s): {reason}"
    return SelectionResult(SelectedTickers.validate(frame), message, True, "fallback", result.active_tickers)


def select_tickers(
    session: dt.date,
    bars: pd.DataFrame,
    params: SelectionParams,
    symbols: str | Sequence[str] | None = None,
    now: dt.datetime | pd.Timestamp | None = None,
) -> SelectionResult:
    """Select the session's tickers: the ``symbols`` override when given, else dynamic selection,
    falling back to ``params.default_tickers`` when selection fails on bad data or activates none.
    Rows whose ticker cannot be a symbol are dropped first and reported in ``dropped``.
    """
    bars, dropped = drop_invalid_tickers(bars)
    result = _select(session, bars, params, symbols, now)
    if not dropped.rows:
        return result
    return replace(result, message=f"{result.message}; {dropped.describe()}", dropped=dropped)


def _select(
    session: dt.date,
    bars: pd.DataFrame,
    params: SelectionParams,
    symbols: str | Sequence[str] | None,
    now: dt.datetime | pd.Timestamp | None,
) -> SelectionResult:
    if symbols:
        return symbols_selection(session, symbols, bars, params, now)
    try:
        frame, funnel = rank_universe(session, bars, params, now)
    except (ValueError, KeyError, TypeError, ArithmeticError) as exc:
        # Bad or missing market data must not leave the day without tickers (seed section 6).
        return fallback_selection(
            session, params.default_tickers, f"selection failed: {exc}", None, params, now
        )
    if funnel["active"] == 0:
        if funnel["passed_filters"] == 0:
            reason = (
                f"no ticker passed the filters ({funnel['tickers']} tickers, "
                f"{funnel['passed_volume']} with avg volume >= {params.min_volume:g}, "
                f"none also with volatility >= {params.min_volatility:g}, 2+ bars"
                + (", a bar on the latest session)" if params.require_latest_session else ")")
            )
        else:
            best = float(frame["opportunity_score"].max())
            reason = (
                f"no focus ticker reached opportunity threshold {params.opportunity_threshold:g} "
                f"(best score {best:.3f})"
            )
        return fallback_selection(session, params.default_tickers, reason, bars, params, now)
    active = tuple(frame.loc[frame["is_active"], "ticker"])
    message = (
        f"selected {funnel['active']} active of {funnel['focus']} focus tickers; "
        f"{funnel['passed_filters']} of {funnel['tickers']} passed the filters"
    )
    if funnel["dropped_rows"]:
        message += f"; {funnel['dropped_rows']} unusable bar(s) ignored"
    return SelectionResult(frame, message, False, "selection", active)
