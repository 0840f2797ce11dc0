"""Reconciliation verdicts from per-ticker aggregates: tolerances, reasons, early closes (no Dagster)."""

from __future__ import annotations

import dataclasses

import pandas as pd
import pytest

from trading_data import calendar
from trading_data.domain.reconciliation import (
    DEFAULT_TOLERANCES,
    MIN_MINUTE_BAR_COVERAGE,
    VOLUME_TOLERANCE,
    TickerAggregates,
    Tolerances,
    aggregates_from_frame,
    failure_summary,
    half_hour_label,
    half_hours,
    part_details,
    reconcile,
    reconcile_ticker,
)

FULL = calendar.session("2026-11-25")
EARLY = calendar.session("2026-11-27")  # closes at 13:00


def healthy(ticker: str = "AAA", session: calendar.Session = FULL, **changes: object) -> TickerAggregates:
    base = TickerAggregates(
        ticker=ticker,
        day_bar_volume=1_000_000.0,
        trade_volume=1_000_000.0,
        trade_count=5_000,
        trade_minutes=380,
        covered_trade_minutes=380,
        bar_minutes=385,
        quoted_half_hours=frozenset(range(half_hours(session))),
    )
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


def test_half_hours_follow_the_calendar() -> None:
    assert half_hours(FULL) == 13 and half_hours(EARLY) == 7
    assert half_hour_label(FULL, 0) == "09:30-10:00"
    assert half_hour_label(FULL, 12) == "15:30-16:00"
    assert half_hour_label(EARLY, 6) == "12:30-13:00"


def test_healthy_ticker_passes_with_its_figures() -> None:
    result = reconcile_ticker(FULL, healthy())
    assert result.passed and result.failures == {}
    assert result.volume_deviation == 0.0 and result.minute_bar_coverage == 1.0
    assert result.expected_half_hours == 13 and result.missing_half_hours == ()


@pytest.mark.parametrize(
    ("trade_volume", "passed"),
    [
        (1_000_000 * (1 + VOLUME_TOLERANCE), True),  # the edge is inside
        (1_000_000 * (1 - VOLUME_TOLERANCE), True),
        (1_000_000 * (1 + VOLUME_TOLERANCE) + 10, False),
        (1_000_000 * (1 - VOLUME_TOLERANCE) - 10, False),
        (500_000, False),
    ],
)
def test_volume_tolerance_is_symmetric(trade_volume: float, passed: bool) -> None:
    result = reconcile_ticker(FULL, healthy(trade_volume=trade_volume))
    assert ("volume" not in result.failures) is passed
    assert result.volume_deviation == pytest.approx(trade_volume / 1_000_000 - 1)


def test_volume_reason_gives_both_figures() -> None:
    result = reconcile_ticker(FULL, healthy(trade_volume=500_000.0))
    assert result.failures == {
        "volume": "trades sum to 500,000 shares, the daily bar says 1,000,000 (-50.0%, beyond ±2%)"
    }


def test_missing_daily_bar_fails_and_an_untraded_day_passes() -> None:
    missing = reconcile_ticker(FULL, healthy(day_bar_volume=None))
    assert missing.failures["volume"] == "no daily bar stored to compare 1,000,000 traded shares with"
    assert missing.volume_deviation is None
    halted = reconcile_ticker(FULL, healthy(day_bar_volume=0.0, trade_volume=0.0, trade_count=0))
    assert "volume" not in halted.failures
    phantom = reconcile_ticker(FULL, healthy(day_bar_volume=0.0))
    assert phantom.failures["volume"] == "daily bar volume is 0 but the trades sum to 1,000,000 shares"


def test_minute_bars_are_judged_against_traded_minutes() -> None:
    # A thin name: bars in 40 of 390 minutes, all of its traded minutes: complete.
    thin = reconcile_ticker(FULL, healthy(trade_minutes=40, covered_trade_minutes=40, bar_minutes=40))
    assert "minute_bars" not in thin.failures and thin.minute_bar_coverage == 1.0
    edge = round(380 * MIN_MINUTE_BAR_COVERAGE)  # 372 of 380 = 97.9%: below 98%
    short = reconcile_ticker(FULL, healthy(covered_trade_minutes=edge))
    assert short.failures["minute_bars"] == (
        "minute bars cover 97.9% of the 380 traded regular-session minutes (8 missing, below 98%)"
    )
    assert "minute_bars" not in reconcile_ticker(FULL, healthy(covered_trade_minutes=373)).failures
    # An hour of bars gone.
    assert "minute_bars" in reconcile_ticker(FULL, healthy(covered_trade_minutes=320)).failures
    # No trades: nothing to expect bars from (the volume part fails instead).
    untraded = reconcile_ticker(FULL, healthy(trade_minutes=0, covered_trade_minutes=0, trade_volume=0.0))
    assert untraded.minute_bar_coverage is None and set(untraded.failures) == {"volume"}


def test_every_half_hour_needs_a_quote_on_an_early_close() -> None:
    result = reconcile_ticker(EARLY, healthy(session=EARLY, quoted_half_hours=frozenset({0, 1, 2, 4, 5})))
    assert result.expected_half_hours == 7
    assert result.missing_half_hours == ("11:00-11:30", "12:30-13:00")
    assert result.failures == {"quotes": "no quotes in 2 of 7 half hours: 11:00-11:30, 12:30-13:00 ET"}
    # Quotes after an early close count for nothing.
    late = reconcile_ticker(EARLY, healthy(session=EARLY, quoted_half_hours=frozenset(range(13))))
    assert late.passed
    unquoted = reconcile_ticker(FULL, healthy(quoted_half_hours=frozenset()))
    assert unquoted.failures["quotes"].startswith("no quotes in 13 of 13 half hours: 09:30-10:00, ")
    assert unquoted.failures["quotes"].endswith("11:00-11:30 and 9 more ET")


def test_tolerances_are_parameters() -> None:
    lenient = Tolerances(volume=0.6, min_minute_bar_coverage=0.5, max_half_hours_without_quotes=1)
    agg = healthy(trade_volume=500_000.0, covered_trade_minutes=200, quoted_half_hours=frozenset(range(12)))
    assert not reconcile_ticker(FULL, agg).passed
    assert reconcile_ticker(FULL, agg, lenient).passed
    assert "all but at most 1 half hour(s)" in lenient.describe()
    assert DEFAULT_TOLERANCES.describe() == (
        "trade volume within ±2% of the daily bar's; minute bars for at least 98% of the regular-session "
        "minutes with a price-setting trade; quotes in every half hour of the regular session"
    )


def test_summary_names_each_failing_ticker_and_part() -> None:
    results = reconcile(
        FULL,
        ["AAA", "BBB", "CCC"],
        [healthy("AAA"), healthy("BBB", trade_volume=500_000.0, quoted_half_hours=frozenset(range(1, 13)))],
    )
    assert [r.ticker for r in results] == ["AAA", "BBB", "CCC"]
    assert [r.passed for r in results] == [True, False, False]
    summary = failure_summary(results)
    assert summary.startswith(
        "Reconciliation failed for 2 of 3 ticker(s): BBB (volume: trades sum to 500,000"
    )
    assert "quotes: no quotes in 1 of 13 half hours: 09:30-10:00 ET)" in summary
    # CCC has nothing stored at all.
    assert (
        "CCC (volume: no daily bar stored to compare 0 traded shares with, quotes: no quotes in 13" in summary
    )
    assert "AAA" not in summary
    details = part_details(results)
    assert details["volume"]["BBB"]["passed"] is False and details["volume"]["AAA"]["passed"] is True
    assert details["quotes"]["BBB"] == {
        "passed": False,
        "quoted_half_hours": 12,
        "expected_half_hours": 13,
        "missing": ["09:30-10:00"],
    }
    assert details["minute_bars"]["CCC"]["coverage"] is None


def test_summary_when_all_pass_or_nothing_is_active() -> None:
    assert failure_summary(reconcile(FULL, ["AAA"], [healthy()])).startswith(
        "All 1 active ticker(s) reconciled: trade volume within ±2%"
    )
    assert failure_summary([]) == "No active tickers to reconcile."


def test_aggregates_from_sql_rows() -> None:
    frame = pd.DataFrame(
        {
            "ticker": ["AAA", "BBB"],
            "day_bar_volume": [1000.0, None],
            "trade_volume": [990.0, 0.0],
            "trade_count": [10, 0],
            "trade_minutes": [5, 0],
            "covered_trade_minutes": [5, 0],
            "bar_minutes": [6, 0],
            "quoted_half_hours": [[0, 1, 12], []],
        }
    )
    aaa, bbb = aggregates_from_frame(frame)
    assert aaa == TickerAggregates("AAA", 1000.0, 990.0, 10, 5, 5, 6, frozenset({0, 1, 12}))
    assert bbb.day_bar_volume is None and bbb.quoted_half_hours == frozenset()
