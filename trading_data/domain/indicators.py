"""Technical indicators on minute bars, per ticker, without look-ahead.

TA-Lib supplies the standard definitions (so they match what traders' tools show):

* ``sma_20``  = ``talib.SMA(close, 20)``
* ``ema_12``, ``ema_26`` = ``talib.EMA(close, 12 | 26)`` (seeded with the SMA of the first period)
* ``rsi_14``  = ``talib.RSI(close, 14)`` (Wilder smoothing)
* ``macd``, ``macd_signal``, ``macd_hist`` = ``talib.MACD(close, 12, 26, 9)``
* ``bb_upper``, ``bb_middle``, ``bb_lower`` = ``talib.BBANDS(close, 20, 2, 2, SMA)`` (population σ)
* ``atr_14``  = ``talib.ATR(high, low, close, 14)`` (Wilder)

``vwap`` is session-anchored: ``sum(tp * volume) / sum(volume)`` over the ticker's bars from the
start of the bar's New York calendar day up to and including the bar, with typical price
``tp = (high + low + close) / 3``; it resets every New York day and is empty while the cumulative
volume is 0. If the bars include extended hours, those count from the first bar of the day.

No look-ahead: every one of these is causal, so the value at a bar uses only that bar and earlier
ones. Warm-up bars (earlier sessions) are prepended per ticker so the recursive indicators (EMA,
RSI, MACD, ATR) start converged; only the target ``bars`` rows are returned. The recursive ones
depend on how much warm-up is supplied (TA-Lib's "unstable period"): a few hundred bars make the
difference negligible.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from trading_data.calendar import NEW_YORK
from trading_data.schemas import Indicators

OUTPUT_COLUMNS = list(Indicators.to_schema().columns)
INDICATOR_COLUMNS = [c for c in OUTPUT_COLUMNS if c not in ("ts", "ticker", "close")]
REQUIRED_COLUMNS = ("ts", "ticker", "high", "low", "close", "volume")


def _minute_bars(frame: pd.DataFrame | None, role: str) -> pd.DataFrame:
    if frame is None or frame.empty:
        empty = pd.DataFrame({c: pd.Series(dtype="float64") for c in REQUIRED_COLUMNS})
        return empty.astype({"ts": "datetime64[ns, UTC]", "ticker": "object"})
    missing = [c for c in REQUIRED_COLUMNS if c not in frame.columns]
    if missing:
        raise ValueError(f"{role} lack column(s) {missing}")
    if "timespan" in frame.columns:
        frame = frame[frame["timespan"] == "minute"]
    out = frame.loc[:, list(REQUIRED_COLUMNS)].copy()
    out["ts"] = pd.to_datetime(out["ts"], utc=True)
    out["ticker"] = out["ticker"].astype(str)
    for column in ("high", "low", "close", "volume"):
        out[column] = out[column].astype("float64")
    return out


def ticker_indicators(bars: pd.DataFrame) -> pd.DataFrame:
    """All indicator columns for one ticker's bars, already sorted by ``ts`` (same index)."""
    # Imported here, not at module load: every process that loads the code location imports this module,
    # only the indicators step computes (its forkserver preloads talib: orchestration/executor.py).
    import talib

    high = bars["high"].to_numpy(dtype="float64")
    low = bars["low"].to_numpy(dtype="float64")
    close = bars["close"].to_numpy(dtype="float64")
    volume = bars["volume"].to_numpy(dtype="float64")
    macd, macd_signal, macd_hist = talib.MACD(close, fastperiod=12, slowperiod=26, signalperiod=9)
    bb_upper, bb_middle, bb_lower = talib.BBANDS(
        close, timeperiod=20, nbdevup=2.0, nbdevdn=2.0, matype=talib.MA_Type.SMA
    )

    day = bars["ts"].dt.tz_convert(NEW_YORK).dt.date.to_numpy()
    typical_volume = pd.Series((high + low + close) / 3.0 * volume, index=bars.index)
    cum_pv = typical_volume.groupby(day).cumsum()
    cum_volume = pd.Series(volume, index=bars.index).groupby(day).cumsum()
    vwap = (cum_pv / cum_volume.where(cum_volume > 0)).to_numpy()

    return pd.DataFrame(
        {
            "sma_20": talib.SMA(close, timeperiod=20),
            "ema_12": talib.EMA(close, timeperiod=12),
            "ema_26": talib.EMA(close, timeperiod=26),
            "rsi_14": talib.RSI(close, timeperiod=14),
            "macd": macd,
            "macd_signal": macd_signal,
            "macd_hist": macd_hist,
            "bb_upper": bb_upper,
            "bb_middle": bb_middle,
            "bb_lower": bb_lower,
            "atr_14": talib.ATR(high, low, close, timeperiod=14),
            "vwap": vwap,
        },
        index=bars.index,
    )


def compute_indicators(bars: pd.DataFrame, warmup_bars: pd.DataFrame | None = None) -> pd.DataFrame:
    """Indicators for every minute bar in ``bars`` (an Indicators frame, sorted by ticker and ts).

    ``warmup_bars`` (earlier minute bars) seed the recursive indicators; per ticker only warm-up
    bars strictly before that ticker's first target bar are used, so they can never look ahead.
    A duplicate (ticker, ts) in ``bars`` keeps the last row.
    """
    target = _minute_bars(bars, "bars").drop_duplicates(["ticker", "ts"], keep="last")
    if target.empty:
        return Indicators.validate(pd.DataFrame({c: pd.Series(dtype="object") for c in OUTPUT_COLUMNS}))
    warmup = _minute_bars(warmup_bars, "warm-up bars")
    first_ts = target.groupby("ticker")["ts"].min()
    warmup = warmup[warmup["ticker"].isin(first_ts.index)]
    warmup = warmup[warmup["ts"] < warmup["ticker"].map(first_ts)].drop_duplicates(
        ["ticker", "ts"], keep="last"
    )

    combined = pd.concat(
        [warmup.assign(is_target=False), target.assign(is_target=True)], ignore_index=True
    ).sort_values(["ticker", "ts"], kind="mergesort")
    parts = []
    for _, group in combined.groupby("ticker", sort=True):
        values = ticker_indicators(group)
        parts.append(pd.concat([group[["ts", "ticker", "close", "is_target"]], values], axis=1))
    result = pd.concat(parts)
    result = result[result["is_target"]].drop(columns="is_target")
    # TA-Lib can return tiny negative values from float cancellation where 0 is exact.
    result["atr_14"] = result["atr_14"].clip(lower=0)
    result["rsi_14"] = result["rsi_14"].clip(lower=0, upper=100)
    result[INDICATOR_COLUMNS] = result[INDICATOR_COLUMNS].astype("float64").replace([np.inf, -np.inf], np.nan)
    return Indicators.validate(result.loc[:, OUTPUT_COLUMNS].reset_index(drop=True))
