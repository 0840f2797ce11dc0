"""Indicators: TA-Lib agreement on random walks, hand-worked SMA and VWAP, no look-ahead."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest
import talib

from trading_data.calendar import NEW_YORK
from trading_data.domain.indicators import INDICATOR_COLUMNS, compute_indicators
from trading_data.schemas import Indicators, Prices


def minute_bars(
    ticker: str, day: dt.date, closes: np.ndarray, seed: int = 0, start: dt.time = dt.time(9, 30)
) -> pd.DataFrame:
    """Minute bars from ``start`` New York time with highs/lows around the given closes."""
    rng = np.random.default_rng(seed)
    n = len(closes)
    first = pd.Timestamp(dt.datetime.combine(day, start, tzinfo=NEW_YORK)).tz_convert("UTC")
    opens = np.concatenate([[closes[0]], closes[:-1]])
    high = np.maximum(opens, closes) * (1 + rng.uniform(0, 0.002, n))
    low = np.minimum(opens, closes) * (1 - rng.uniform(0, 0.002, n))
    return pd.DataFrame(
        {
            "ts": first + pd.to_timedelta(np.arange(n), unit="min"),
            "ticker": ticker,
            "timespan": "minute",
            "open": opens,
            "high": high,
            "low": low,
            "close": closes,
            "volume": rng.integers(100, 5000, n).astype(float),
            "vwap": closes,
            "transactions": pd.array(rng.integers(1, 50, n), dtype="Int64"),
        }
    )


def random_walk(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return 100 * np.exp(np.cumsum(rng.normal(0, 0.001, n)))


DAY1, DAY2 = dt.date(2026, 11, 24), dt.date(2026, 11, 25)


def two_days(ticker: str, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    closes = random_walk(780, seed)
    return minute_bars(ticker, DAY1, closes[:390], seed), minute_bars(ticker, DAY2, closes[390:], seed + 100)


def test_matches_talib_on_random_walks_with_warmup() -> None:
    warm_a, day_a = two_days("AAA", 1)
    warm_b, day_b = two_days("BBB", 2)
    Prices.validate(pd.concat([warm_a, day_a]))
    result = compute_indicators(pd.concat([day_b, day_a]), pd.concat([warm_a, warm_b]))
    Indicators.validate(result)
    assert list(result.columns) == list(Indicators.to_schema().columns)
    assert len(result) == 780 and set(result["ts"].dt.tz_convert(NEW_YORK).dt.date) == {DAY2}

    for ticker, warm, day in (("AAA", warm_a, day_a), ("BBB", warm_b, day_b)):
        full = pd.concat([warm, day])
        h, lo, c = (full[k].to_numpy() for k in ("high", "low", "close"))
        macd, signal, hist = talib.MACD(c, 12, 26, 9)
        upper, middle, lower = talib.BBANDS(c, 20, 2, 2, talib.MA_Type.SMA)
        expected = {
            "sma_20": talib.SMA(c, 20),
            "ema_12": talib.EMA(c, 12),
            "ema_26": talib.EMA(c, 26),
            "rsi_14": talib.RSI(c, 14),
            "macd": macd,
            "macd_signal": signal,
            "macd_hist": hist,
            "bb_upper": upper,
            "bb_middle": middle,
            "bb_lower": lower,
            "atr_14": talib.ATR(h, lo, c, 14),
        }
        got = result[result["ticker"] == ticker]
        for column, values in expected.items():
            np.testing.assert_allclose(got[column].to_numpy(), values[390:], rtol=1e-10, err_msg=column)
        # VWAP restarts on DAY2: cumulative typical price * volume over DAY2 bars only.
        tp = (day["high"] + day["low"] + day["close"]) / 3
        np.testing.assert_allclose(
            got["vwap"].to_numpy(), ((tp * day["volume"]).cumsum() / day["volume"].cumsum()).to_numpy()
        )
        np.testing.assert_array_equal(got["close"].to_numpy(), day["close"].to_numpy())


def test_without_warmup_early_values_are_empty() -> None:
    _, day = two_days("AAA", 3)
    result = compute_indicators(day.head(30), None)
    assert result["sma_20"].iloc[:19].isna().all() and result["sma_20"].iloc[19:].notna().all()
    assert result["macd_signal"].isna().all()  # needs 26 + 9 - 1 = 34 bars
    assert result["vwap"].notna().all()


def test_hand_worked_sma() -> None:
    closes = np.arange(1.0, 26.0)  # 1, 2, ..., 25
    result = compute_indicators(minute_bars("AAA", DAY2, closes), None)
    assert result["sma_20"].iloc[:19].isna().all()
    assert result["sma_20"].iloc[19] == pytest.approx(10.5)  # mean(1..20)
    assert result["sma_20"].iloc[24] == pytest.approx(15.5)  # mean(6..25)
    assert result["bb_middle"].iloc[24] == pytest.approx(15.5)
    # Population σ of 20 consecutive integers = sqrt((20² - 1) / 12).
    assert result["bb_upper"].iloc[24] == pytest.approx(15.5 + 2 * np.sqrt(399 / 12))


def test_hand_worked_vwap_resets_each_new_york_day() -> None:
    def rows(day: dt.date, hlcv: list[tuple[float, float, float, float]]) -> pd.DataFrame:
        frame = minute_bars("AAA", day, np.array([r[2] for r in hlcv]))
        frame[["high", "low", "close", "volume"]] = np.array(hlcv)
        return frame

    day1 = rows(DAY1, [(11, 9, 10, 0), (11, 9, 10, 100), (12, 10, 11, 300), (13, 11, 12, 0)])
    day2 = rows(DAY2, [(21, 19, 20, 50), (24, 21, 21, 50)])
    result = compute_indicators(pd.concat([day1, day2]), None)
    # Day 1: no volume yet -> empty; tp 10 * 100 -> 10; (1000 + 11 * 300) / 400 = 10.75; zero volume -> 10.75.
    # Day 2 restarts: 20; (20 * 50 + 22 * 50) / 100 = 21.
    assert np.isnan(result["vwap"].iloc[0])
    assert result["vwap"].iloc[1:].tolist() == pytest.approx([10.0, 10.75, 10.75, 20.0, 21.0])


def test_no_look_ahead() -> None:
    warm, day = two_days("AAA", 4)
    full = compute_indicators(day, warm)
    for cut in (0, 40, 200, 389):
        truncated = compute_indicators(day.iloc[: cut + 1], warm)
        altered_day = day.copy()
        later = altered_day.index > altered_day.index[cut]
        altered_day.loc[later, ["open", "high", "low", "close"]] *= 1.5
        altered_day.loc[later, "volume"] *= 10
        altered = compute_indicators(altered_day, warm)
        expected = full.iloc[: cut + 1].reset_index(drop=True)
        pd.testing.assert_frame_equal(truncated, expected)
        pd.testing.assert_frame_equal(altered.iloc[: cut + 1].reset_index(drop=True), expected)


def test_warmup_at_or_after_the_target_start_is_ignored_and_day_bars_filtered() -> None:
    warm, day = two_days("AAA", 5)
    future = day.iloc[100:].copy()
    future["close"] *= 2  # would change values if it were used as "warm-up"
    future["high"] *= 2
    daily = day.head(1).assign(timespan="day")
    baseline = compute_indicators(day, warm)
    result = compute_indicators(
        pd.concat([day, daily.assign(ts=daily["ts"] - pd.Timedelta(hours=5))]), pd.concat([warm, future])
    )
    pd.testing.assert_frame_equal(result, baseline)


def test_empty_input_gives_an_empty_valid_frame() -> None:
    result = compute_indicators(pd.DataFrame(), None)
    assert result.empty and list(result.columns) == list(Indicators.to_schema().columns)
    assert set(INDICATOR_COLUMNS) < set(result.columns)
    with pytest.raises(ValueError, match="lack column"):
        compute_indicators(pd.DataFrame({"ts": [1]}), None)
