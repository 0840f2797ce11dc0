"""Dynamic ticker selection: hand-worked metrics, scores and ranks; filters; override; fallback."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
import talib

from trading_data.calendar import NEW_YORK
from trading_data.domain.selection import (
    SelectionParams,
    fallback_selection,
    rank_universe,
    select_tickers,
    symbols_selection,
    wilder_atr,
)
from trading_data.schemas import SelectedTickers

SESSION = dt.date(2026, 11, 27)  # the sessions before it: 11-23, 11-24, 11-25 (11-26 is Thanksgiving)
D1, D2, D3 = dt.date(2026, 11, 23), dt.date(2026, 11, 24), dt.date(2026, 11, 25)
NOW = pd.Timestamp("2026-11-27 14:35", tz="UTC")


def bar(ticker: str, day: dt.date, high: float, low: float, close: float, volume: float) -> dict:
    # Daily bars are stamped at New York midnight, as Polygon does.
    ts = pd.Timestamp(dt.datetime.combine(day, dt.time(0), tzinfo=NEW_YORK)).tz_convert("UTC")
    return {
        "ticker": ticker,
        "ts": ts,
        "open": close,
        "high": high,
        "low": low,
        "close": close,
        "volume": volume,
        "vwap": close,
        "transactions": 10,
    }


def market() -> pd.DataFrame:
    """Seven tickers worked by hand (lookback 3, so ATR = mean of the 2 true ranges)."""
    return pd.DataFrame(
        [
            # AAA: TR = 2, 2 -> ATR 2; vol 2/12 = .1667; avg vol 1500, rel vol 2500/1500 = 1.667; mom +.20
            bar("AAA", D1, 11, 9, 10, 1000),
            bar("AAA", D2, 12, 10, 11, 1000),
            bar("AAA", D3, 13, 11, 12, 2500),
            # BBB gaps up: TR2 = max(1, |24-20|, |23-20|) = 4 (previous close counts), TR3 = max(2, .5, 1.5) = 2
            # -> ATR 3; vol 3/22 = .1364; rel vol 1.0; mom 22/20 - 1 = +.10
            bar("BBB", D1, 21, 19, 20, 3000),
            bar("BBB", D2, 24, 23, 23.5, 3000),
            bar("BBB", D3, 24, 22, 22, 3000),
            # CCC: ATR 1, vol 1/100 = .01 < min_volatility .02 -> filtered
            bar("CCC", D1, 100.5, 99.5, 100, 5000),
            bar("CCC", D2, 100.5, 99.5, 100, 5000),
            bar("CCC", D3, 100.5, 99.5, 100, 5000),
            # DDD: avg volume 500 < min_volume 900 -> filtered despite vol .4
            bar("DDD", D1, 6, 4, 5, 500),
            bar("DDD", D2, 6, 4, 5, 500),
            bar("DDD", D3, 6, 4, 5, 500),
            # EEE misses D2: one TR = max(2, |45-50|, |43-50|) = 7 -> ATR 7; vol 7/44 = .1591;
            # avg vol 1500, rel vol 1000/1500 = .667; mom 44/50 - 1 = -.12
            bar("EEE", D1, 51, 49, 50, 2000),
            bar("EEE", D3, 45, 43, 44, 1000),
            # FFF: a single bar, no ATR -> filtered
            bar("FFF", D3, 11, 9, 10, 9000),
            # GGG: no bar on the latest session (stale) -> filtered
            bar("GGG", D1, 11, 9, 10, 10000),
            bar("GGG", D2, 13, 9, 12, 10000),
        ]
    )


PARAMS = SelectionParams(
    lookback_days=3,
    min_volume=900,
    min_volatility=0.02,
    focus_universe_size=2,
    opportunity_threshold=0.5,
    max_active_tickers=1,
    default_tickers=("SPY", "QQQ"),
)


def test_hand_worked_metrics_scores_and_ranks() -> None:
    frame, funnel = rank_universe(SESSION, market(), PARAMS, now=NOW)
    SelectedTickers.validate(frame)
    # Passing: AAA, BBB, EEE (N = 3). Percentile ranks (rank / 3):
    #   volatility  BBB .1364 -> 1/3, EEE .1591 -> 2/3, AAA .1667 -> 1
    #   rel volume  EEE .667 -> 1/3,  BBB 1.0 -> 2/3,   AAA 1.667 -> 1
    #   |momentum|  BBB .10 -> 1/3,   EEE .12 -> 2/3,   AAA .20 -> 1
    # score = .4 vol + .3 relvol + .3 |mom|:
    #   AAA = .4 + .3 + .3 = 1.0;  EEE = .4*2/3 + .3/3 + .3*2/3 = .5667;  BBB = .4/3 + .3*2/3 + .3/3 = .4333
    assert funnel["tickers"] == 7 and funnel["passed_filters"] == 3
    assert list(frame["ticker"]) == ["AAA", "EEE"]  # focus universe = top 2; BBB (rank 3) left out
    assert list(frame["rank"]) == [1, 2]
    assert frame["opportunity_score"].tolist() == pytest.approx([1.0, 0.4 * 2 / 3 + 0.1 + 0.2])
    assert frame["in_focus"].all()
    # Both focus tickers beat the .5 threshold, but max_active_tickers = 1 keeps only rank 1.
    assert frame["is_active"].tolist() == [True, False]
    aaa, eee = frame.iloc[0], frame.iloc[1]
    assert aaa["atr"] == pytest.approx(2.0) and aaa["avg_volume"] == pytest.approx(1500)
    assert aaa["volatility"] == pytest.approx(2 / 12) and aaa["relative_volume"] == pytest.approx(2500 / 1500)
    assert aaa["momentum"] == pytest.approx(0.2) and aaa["last_close"] == 12
    assert eee["atr"] == pytest.approx(7.0) and eee["momentum"] == pytest.approx(-0.12)
    assert not frame["is_fallback"].any() and set(frame["selection_source"]) == {"selection"}
    assert (frame["selected_at"] == NOW).all() and (frame["session"] == SESSION).all()


def test_bbb_atr_uses_previous_close_and_ranks_third() -> None:
    frame, _ = rank_universe(SESSION, market(), replace(PARAMS, focus_universe_size=10), NOW)
    bbb = frame.set_index("ticker").loc["BBB"]
    assert bbb["atr"] == pytest.approx(3.0) and bbb["rank"] == 3
    assert bbb["opportunity_score"] == pytest.approx(0.4 / 3 + 0.2 + 0.1)


def test_ties_break_by_ticker() -> None:
    twins = pd.DataFrame(
        [bar(t, d, 11, 9, 10 + i, 1000) for t in ("ZZZ", "MMM") for i, d in enumerate((D1, D2, D3))]
    )
    frame, _ = rank_universe(SESSION, twins, PARAMS, NOW)
    assert list(frame["ticker"]) == ["MMM", "ZZZ"] and list(frame["rank"]) == [1, 2]


def test_wilder_atr_matches_talib_and_short_windows_use_mean_tr() -> None:
    rng = np.random.default_rng(7)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.02, 40)))
    high = close * (1 + rng.uniform(0, 0.02, 40))
    low = close * (1 - rng.uniform(0, 0.02, 40))
    assert wilder_atr(high, low, close, 14) == pytest.approx(talib.ATR(high, low, close, 14)[-1], rel=1e-12)
    assert wilder_atr(high[:15], low[:15], close[:15], 14) == pytest.approx(
        talib.ATR(high[:15], low[:15], close[:15], 14)[-1]
    )
    # 5 bars -> 4 true ranges < 14: their plain mean.
    tr = np.maximum.reduce([high[1:5] - low[1:5], abs(high[1:5] - close[:4]), abs(low[1:5] - close[:4])])
    assert wilder_atr(high[:5], low[:5], close[:5], 14) == pytest.approx(tr.mean())
    assert np.isnan(wilder_atr(high[:1], low[:1], close[:1], 14))


def test_bars_on_or_after_the_session_and_beyond_lookback_are_ignored() -> None:
    extra = pd.DataFrame(
        [
            bar("AAA", SESSION, 100, 1, 50, 10**9),  # the session itself: would be look-ahead
            bar("BBB", dt.date(2026, 11, 20), 100, 1, 50, 10**9),  # a 4th session back: outside lookback 3
        ]
    )
    frame, _ = rank_universe(SESSION, pd.concat([market(), extra]), PARAMS, NOW)
    baseline, _ = rank_universe(SESSION, market(), PARAMS, NOW)
    pd.testing.assert_frame_equal(frame, baseline)


def test_volume_and_volatility_thresholds_are_inclusive() -> None:
    # AAA avg volume is exactly 1500 and volatility exactly 2/12.
    params = SelectionParams(
        lookback_days=3,
        min_volume=1500,
        min_volatility=2 / 12,
        focus_universe_size=5,
        opportunity_threshold=0.0,
    )
    frame, _ = rank_universe(SESSION, market()[lambda f: f["ticker"] == "AAA"], params, NOW)
    assert list(frame["ticker"]) == ["AAA"]
    assert frame["opportunity_score"].iloc[0] == pytest.approx(1.0)  # alone, it tops every rank


def test_stale_tickers_pass_when_latest_session_not_required() -> None:
    params = replace(PARAMS, focus_universe_size=10, require_latest_session=False)
    frame, _ = rank_universe(SESSION, market(), params, NOW)
    assert "GGG" in set(frame["ticker"])


def test_select_tickers_success_message_and_active() -> None:
    result = select_tickers(SESSION, market(), PARAMS, now=NOW)
    assert not result.used_fallback and result.source == "selection"
    assert result.active_tickers == ("AAA",)
    assert "1 active of 2 focus" in result.message and "3 of 7 passed" in result.message


def test_symbols_override() -> None:
    result = select_tickers(SESSION, market(), PARAMS, symbols=" aaa, zzz,AAA ", now=NOW)
    frame = SelectedTickers.validate(result.frame)
    assert result.source == "symbols" and not result.used_fallback
    assert list(frame["ticker"]) == ["AAA", "ZZZ"] and list(frame["rank"]) == [1, 2]
    assert (
        frame["is_active"].all() and frame["in_focus"].all() and set(frame["selection_source"]) == {"symbols"}
    )
    assert frame.loc[0, "atr"] == pytest.approx(2.0)  # metrics where bars exist
    assert pd.isna(frame.loc[1, "last_close"])  # none for ZZZ
    with pytest.raises(ValueError, match=r"not a ticker symbol: .AA\$. \(a letter"):
        symbols_selection(SESSION, ["AA$"], market())


@pytest.mark.parametrize(
    ("bars", "reason"),
    [
        (pd.DataFrame(), "lack column"),
        (market().iloc[0:0], "no daily bars"),
        (market().drop(columns="close"), "lack column"),
        (market().assign(ts="not a time"), "selection failed"),
        (market().assign(close=np.nan), "no usable daily bars"),
    ],
)
def test_fallback_on_empty_or_invalid_input(bars: pd.DataFrame, reason: str) -> None:
    result = select_tickers(SESSION, bars, PARAMS, now=NOW)
    frame = SelectedTickers.validate(result.frame)
    assert result.used_fallback and result.source == "fallback"
    assert reason in result.message and "selection failed" in result.message
    assert list(frame["ticker"]) == ["SPY", "QQQ"]
    assert frame["is_fallback"].all() and frame["is_active"].all()
    assert set(frame["selection_source"]) == {"fallback"}


def test_fallback_when_nothing_passes_the_filters() -> None:
    params = replace(PARAMS, min_volume=10**9)
    result = select_tickers(SESSION, market(), params, now=NOW)
    assert result.used_fallback and "no ticker passed the filters" in result.message


def test_fallback_when_no_focus_ticker_reaches_threshold_keeps_metrics() -> None:
    # Without AAA: EEE = .4*1 + .3*.5 + .3*1 = .85, BBB = .4*.5 + .3*1 + .3*.5 = .65; threshold .9.
    bars = market()[lambda f: f["ticker"] != "AAA"]
    params = replace(PARAMS, opportunity_threshold=0.9, default_tickers=("EEE", "SPY"))
    result = select_tickers(SESSION, bars, params, now=NOW)
    assert result.used_fallback and "threshold 0.9 (best score 0.850)" in result.message
    frame = result.frame.set_index("ticker")
    assert frame.loc["EEE", "atr"] == pytest.approx(7.0) and pd.isna(frame.loc["SPY", "atr"])


def test_unusable_rows_are_dropped_and_reported() -> None:
    bars = pd.concat([market(), pd.DataFrame([bar("HHH", D3, 5, 6, 5, 100)])])  # high < low
    result = select_tickers(SESSION, bars, PARAMS, now=NOW)
    assert not result.used_fallback and "1 unusable bar(s) ignored" in result.message


def test_fallback_selection_direct() -> None:
    result = fallback_selection(SESSION, ["spy"], "manual", now=NOW)
    assert result.message == "fallback to 1 default ticker(s): manual"
    assert result.frame["rank"].tolist() == [1] and result.frame["is_fallback"].all()


def test_params_are_checked() -> None:
    with pytest.raises(ValueError):
        SelectionParams(opportunity_threshold=2)
    with pytest.raises(ValueError):
        SelectionParams(lookback_days=1)


JUNK_SYMBOLS = ("brk.b", "AAPL ", "\x00\x9f\ufffd\x1b[", "", None)


def test_rows_that_cannot_be_tickers_are_dropped_before_ranking() -> None:
    # Vendor junk (polygon-io/issues#138) with the market's best volatility, volume and momentum: it
    # would rank first, and one invalid ticker in the frame used to kill the whole selection.
    junk = pd.DataFrame(
        [
            bar(symbol, day, 30 + 10 * i, 10 + 10 * i, 20 + 15 * i, 10**12)
            for symbol in JUNK_SYMBOLS
            for i, day in enumerate((D1, D2, D3))
        ]
    )
    bars = pd.concat([junk.iloc[:6], market(), junk.iloc[6:]], ignore_index=True)
    result = select_tickers(SESSION, bars, PARAMS, now=NOW)
    assert not result.used_fallback and result.source == "selection"
    SelectedTickers.validate(result.frame)
    baseline = select_tickers(SESSION, market(), PARAMS, now=NOW)
    pd.testing.assert_frame_equal(result.frame, baseline.frame)
    assert result.active_tickers == ("AAA",)
    assert result.dropped.rows == 15 and result.dropped.symbols == 5
    assert result.dropped.examples == ("'brk.b'", "'AAPL '", "'\\x00\\x9f\\ufffd\\x1b['")
    assert "15 row(s) of 5 invalid ticker symbol(s) dropped" in result.message
    assert baseline.dropped.rows == 0 and "invalid ticker" not in baseline.message


def test_only_junk_falls_back_and_still_reports_the_dropped_rows() -> None:
    junk = pd.DataFrame([bar("brk.b", day, 11, 9, 10, 10**9) for day in (D1, D2, D3)])
    result = select_tickers(SESSION, junk, PARAMS, now=NOW)
    assert result.used_fallback and list(result.frame["ticker"]) == ["SPY", "QQQ"]
    assert result.dropped.rows == 3 and result.dropped.symbols == 1
    assert "3 row(s) of 1 invalid ticker symbol(s) dropped" in result.message


def test_selection_uses_the_settings_defaults() -> None:
    from trading_data import settings

    assert SelectionParams().default_tickers == settings.DEFAULT_TICKERS
