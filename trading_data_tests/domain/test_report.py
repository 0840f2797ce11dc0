"""Daily report: coverage on the 2026-11-27 early close, gap counting, markdown and chart."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from trading_data import calendar
from trading_data.domain.indicators import compute_indicators
from trading_data.domain.reconciliation import TickerAggregates, reconcile
from trading_data.domain.report import (
    coverage_report,
    render_chart,
    render_markdown,
    render_reconciliation,
    uncovered_runs,
    with_reconciliation,
)
from trading_data.schemas import DailyReport

EARLY = calendar.session("2026-11-27")  # day after Thanksgiving: 09:30-13:00 ET, 210 minutes
OPEN_UTC = pd.Timestamp(EARLY.open).tz_convert("UTC")


def minute(offset: float) -> pd.Timestamp:
    return OPEN_UTC + pd.Timedelta(minutes=offset)


def price_rows(ticker: str, offsets: list[int]) -> pd.DataFrame:
    closes = 100 + np.sin(np.arange(len(offsets)) / 7)
    return pd.DataFrame(
        {
            "ts": [minute(m) for m in offsets],
            "ticker": ticker,
            "timespan": "minute",
            "open": closes,
            "high": closes + 0.1,
            "low": closes - 0.1,
            "close": closes,
            "volume": 1000.0,
            "vwap": closes,
            "transactions": 5,
        }
    )


# AAA misses minutes 30-36 (7), 100-102 (3) and 205-209 (5, running into the close).
AAA_MINUTES = [m for m in range(210) if not (30 <= m <= 36 or 100 <= m <= 102 or m >= 205)]


def tables() -> dict[str, pd.DataFrame]:
    prices = pd.concat(
        [
            price_rows("AAA", AAA_MINUTES),
            price_rows("AAA", [-30]),  # a pre-market bar: counted in rows, not in coverage
            price_rows("AAA", [0]).assign(timespan="day"),  # a daily bar: not a minute bar, ignored
        ]
    )
    quotes = pd.DataFrame({"ts": [minute(0.1), minute(0.9), minute(1.5)], "ticker": "BBB"})
    return {"prices": prices, "quotes": quotes, "options_flow": pd.DataFrame()}


NOW = minute(240)  # 13:30 ET, half an hour after the early close


def test_session_is_an_early_close() -> None:
    assert EARLY.is_early_close and EARLY.minutes == 210


def test_coverage_on_early_close() -> None:
    failures = {("prices", "AAA"): 3, ("quotes", "DDD"): 2}
    report = coverage_report(EARLY, tables(), failures, NOW, expected_tickers=["CCC"])
    DailyReport.validate(report)
    rows = report.set_index(["table_name", "ticker"])
    assert sorted(rows.index) == sorted(
        [
            ("prices", "AAA"),
            ("prices", "CCC"),
            ("quotes", "BBB"),
            ("quotes", "CCC"),
            ("quotes", "DDD"),
            ("options_flow", "CCC"),
        ]
    )
    aaa = rows.loc[("prices", "AAA")]
    # 210 - 7 - 3 - 5 = 195 covered minutes; rows add the pre-market bar: 196.
    assert aaa["rows"] == 196 and aaa["covered_minutes"] == 195 and aaa["expected_minutes"] == 210
    assert aaa["coverage"] == pytest.approx(195 / 210)
    # Runs >= 5 minutes: 30-36 and 205-209 (touching the close counts); the 3-minute run does not.
    assert aaa["gaps"] == 2 and aaa["max_gap_minutes"] == 7
    assert aaa["validation_failures"] == 3
    # Last bar at minute 204 = 12:54 ET; now 13:30 ET -> 36 minutes stale.
    assert aaa["last_ts"] == minute(204) and aaa["freshness_minutes"] == pytest.approx(36)

    bbb = rows.loc[("quotes", "BBB")]  # three quotes in two distinct minutes
    assert (
        bbb["rows"] == 3
        and bbb["covered_minutes"] == 2
        and bbb["gaps"] == 1
        and bbb["max_gap_minutes"] == 208
    )

    ccc = rows.loc[("prices", "CCC")]  # expected but absent: one session-long gap
    assert ccc["rows"] == 0 and ccc["coverage"] == 0 and ccc["gaps"] == 1 and ccc["max_gap_minutes"] == 210
    assert pd.isna(ccc["last_ts"]) and pd.isna(ccc["freshness_minutes"])
    assert rows.loc[("quotes", "DDD"), "validation_failures"] == 2


def test_gap_threshold_is_a_parameter() -> None:
    report = coverage_report(EARLY, {"prices": tables()["prices"]}, {}, NOW, gap_threshold_minutes=3)
    assert report.loc[0, "gaps"] == 3
    with pytest.raises(ValueError):
        coverage_report(EARLY, {}, {}, NOW, gap_threshold_minutes=0)


def test_uncovered_runs() -> None:
    covered = np.array([0, 0, 1, 1, 0, 1, 0, 0, 0], dtype=bool)
    assert uncovered_runs(covered).tolist() == [2, 1, 3]
    assert uncovered_runs(np.ones(4, dtype=bool)).tolist() == []


def test_full_regular_session_has_no_gaps() -> None:
    regular = calendar.session("2026-11-25")
    bars = price_rows("AAA", list(range(390)))
    bars["ts"] = pd.Timestamp(regular.open).tz_convert("UTC") + pd.to_timedelta(np.arange(390), unit="min")
    report = coverage_report(regular, {"prices": bars}, {}, NOW)
    assert report.loc[0, ["covered_minutes", "gaps", "max_gap_minutes"]].tolist() == [390, 0, 0]
    assert report.loc[0, "coverage"] == 1.0


def test_table_without_ts_is_rejected() -> None:
    with pytest.raises(ValueError, match="lacks column"):
        coverage_report(EARLY, {"selected_tickers": pd.DataFrame({"ticker": ["AAA"]})}, {}, NOW)


def test_render_markdown() -> None:
    report = coverage_report(EARLY, tables(), {("prices", "AAA"): 3}, NOW, expected_tickers=["CCC"])
    text = render_markdown(report, EARLY, ["selection fell back to defaults"])
    assert text.startswith("# Daily data report 2026-11-27")
    assert "09:30-13:00 ET (early close), 210 minutes" in text
    assert "- selection fell back to defaults" in text
    assert "| prices | 2 | 196 | 46.4% | 0.0% | 3 | 3 | 36 |" in text  # (195/210 + 0) / 2 = 46.4%
    worst = text.split("## Worst coverage")[1]
    assert worst.index("| prices | CCC |") < worst.index("| prices | AAA |")
    assert "options_flow" not in worst.split("\n", 1)[1]  # event-driven: not in the worst list
    assert "No data." in render_markdown(report.iloc[0:0], EARLY)


def test_render_chart_png() -> None:
    prices = pd.concat([price_rows("AAA", list(range(210))), price_rows("BBB", list(range(0, 210, 2)))])
    indicators = compute_indicators(prices, None)
    png = render_chart(prices, indicators, ["AAA", "BBB", "ZZZ"], EARLY)
    assert png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 10_000
    assert render_chart(prices.iloc[0:0], indicators.iloc[0:0], [], EARLY).startswith(b"\x89PNG")


def test_render_reconciliation() -> None:
    quoted = frozenset(range(7))
    results = reconcile(
        EARLY,
        ["AAA", "BBB"],
        [
            TickerAggregates("AAA", 1000.0, 1000.0, 10, 200, 200, 205, quoted),
            TickerAggregates("BBB", 1000.0, 400.0, 4, 100, 100, 100, quoted - {3}),
        ],
    )
    text = render_reconciliation(results, EARLY)
    assert text.startswith("## Reconciliation\n\nReconciliation failed for 1 of 2 ticker(s): BBB (volume:")
    assert "| AAA | 1,000 | 1,000 | +0.00% | 200/200 | 7/7 | ok |" in text
    assert "| BBB | 400 | 1,000 | -60.00% | 100/100 | 6/7 | FAILED: volume, quotes |" in text
    assert render_reconciliation(None, EARLY) == (
        "## Reconciliation\n\nNot reconciled yet: the session closes at 13:00 ET.\n"
    )


def test_reconciliation_goes_on_each_parts_table_row() -> None:
    report = coverage_report(EARLY, tables(), {}, NOW, expected_tickers=["BBB"])
    assert report["reconciliation"].isna().all()  # before the close: nothing judged
    results = reconcile(
        EARLY, ["BBB"], [TickerAggregates("BBB", 1000.0, 400.0, 4, 100, 99, 100, frozenset(range(7)))]
    )
    stored = with_reconciliation(report, results).set_index(["table_name", "ticker"])
    DailyReport.validate(stored.reset_index())
    trades = stored.loc[("trades", "BBB")] if ("trades", "BBB") in stored.index else None
    assert trades is None  # no trades table in this report: the volume part has no row to go on
    prices, quotes = stored.loc[("prices", "BBB")], stored.loc[("quotes", "BBB")]
    assert (prices["traded_minutes"], prices["traded_minutes_with_bar"]) == (100, 99)
    assert prices["reconciliation"] == "ok" and pd.isna(prices["trade_volume"])
    assert (quotes["quoted_half_hours"], quotes["expected_half_hours"], quotes["reconciliation"]) == (
        7,
        7,
        "ok",
    )
    # Rows of other tickers and tables stay null.
    assert stored.loc[("prices", "AAA"), "reconciliation"] is pd.NA or pd.isna(
        stored.loc[("prices", "AAA"), "reconciliation"]
    )
    assert pd.isna(stored.loc[("options_flow", "BBB"), "reconciliation"])
    with_trades = coverage_report(
        EARLY, {**tables(), "trades": pd.DataFrame({"ts": [minute(1)], "ticker": "BBB"})}, {}, NOW
    )
    trades_row = (
        with_reconciliation(with_trades, results).set_index(["table_name", "ticker"]).loc[("trades", "BBB")]
    )
    assert (trades_row["trade_volume"], trades_row["day_bar_volume"]) == (400.0, 1000.0)
    assert trades_row["volume_deviation"] == pytest.approx(-0.6)
    assert trades_row["reconciliation"].startswith("trades sum to 400 shares, the daily bar says 1,000")


def test_rejects_of_a_junk_ticker_do_not_break_the_report() -> None:
    """A flow alert or quote rejected for its junk ticker ("brk.b", "") has no report row."""
    failures = {("quotes", "brk.b"): 3, ("quotes", ""): 1, ("quotes", "AAA"): 2}
    report = coverage_report(EARLY, tables(), failures, NOW)
    quotes = report[report["table_name"] == "quotes"]
    assert set(quotes["ticker"]) >= {"AAA"} and "brk.b" not in set(report["ticker"])
