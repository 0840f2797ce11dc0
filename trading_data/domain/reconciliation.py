"""Reconciling a closed session, per active ticker, from aggregates computed in SQL.

Three parts, each with a named tolerance:

* ``volume``: the sum of the day's trade sizes against the daily bar's volume. Polygon's daily bar
  counts every trade of the New York day that updates consolidated volume: extended hours and odd
  lots included, the listing market's official open/close and corrected-close prints
  (``NON_VOLUME_CONDITIONS``) excluded. The trades feed stores the same day, so the sums agree up
  to late corrections: within ``VOLUME_TOLERANCE`` (±2%). A half hour of midday trades missing is
  already about 4% of a day's volume. The simulator's trades sum exactly to its daily bar.
* ``minute_bars``: a minute bar for the regular-session minutes (09:30 to the close: 13:00 on an
  early close) that had a price-setting trade. "No trade, no bar" is normal (thin names have bars in
  a few percent of the minutes), so the expectation comes from the trades, and trades that set no
  price (odd lots, average-price and other ``NON_PRICE_CONDITIONS``) do not expect a bar. At least
  ``MIN_MINUTE_BAR_COVERAGE`` (98%) of those minutes must have one: an hour of bars missing is 15%.
* ``quotes``: at least one NBBO quote in every half hour of the regular session
  (``MAX_HALF_HOURS_WITHOUT_QUOTES`` = 0); a listed stock's NBBO changes far more often than that.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import pandas as pd

from trading_data.calendar import NEW_YORK, Session

VOLUME_TOLERANCE = 0.02
MIN_MINUTE_BAR_COVERAGE = 0.98
MAX_HALF_HOURS_WITHOUT_QUOTES = 0
HALF_HOUR = dt.timedelta(minutes=30)

# Polygon stock trade conditions (``/v3/reference/conditions``) whose consolidated update rules
# leave the volume untouched: Market Center Official Close/Open, Corrected Consolidated Close.
NON_VOLUME_CONDITIONS = (15, 16, 38)
# Conditions that update neither the consolidated last price nor the high/low: a minute whose only
# trades carry them may have no bar (average price, cash sale, Form T, sold out of sequence, next
# day, price variation, odd lot, contingent, QCT, and the prints above).
NON_PRICE_CONDITIONS = (2, 7, 12, 13, 15, 16, 20, 21, 37, 38, 52, 53)

PARTS = ("volume", "minute_bars", "quotes")


@dataclass(frozen=True)
class Tolerances:
    """How far each part may be off before it fails (defaults: the module's constants)."""

    volume: float = VOLUME_TOLERANCE
    min_minute_bar_coverage: float = MIN_MINUTE_BAR_COVERAGE
    max_half_hours_without_quotes: int = MAX_HALF_HOURS_WITHOUT_QUOTES

    def describe(self) -> str:
        """The tolerances in one line (check description, report)."""
        allowed = self.max_half_hours_without_quotes
        quotes = "every half hour" if not allowed else f"all but at most {allowed} half hour(s)"
        return (
            f"trade volume within ±{self.volume:.0%} of the daily bar's; minute bars for at least "
            f"{self.min_minute_bar_coverage:.0%} of the regular-session minutes with a price-setting "
            f"trade; quotes in {quotes} of the regular session"
        )


DEFAULT_TOLERANCES = Tolerances()


@dataclass(frozen=True)
class TickerAggregates:
    """What SQL counts for one ticker and session (``ticker_reconciliation_aggregates``)."""

    ticker: str
    day_bar_volume: float | None  # None: no daily bar stored
    trade_volume: float  # sizes of the day's trades that update volume
    trade_count: int
    trade_minutes: int  # regular-session minutes with a price-setting trade
    covered_trade_minutes: int  # of those, the minutes that have a minute bar
    bar_minutes: int  # regular-session minutes with a minute bar
    quoted_half_hours: frozenset[int] = field(default_factory=frozenset)  # 0 = the one from the open


def half_hours(session: Session) -> int:
    """Half hours of the regular session (13 on a full day, 7 on an early close)."""
    return math.ceil(session.minutes / 30)


def half_hour_label(session: Session, index: int) -> str:
    start = session.open.astimezone(NEW_YORK) + index * HALF_HOUR
    end = min(start + HALF_HOUR, session.close.astimezone(NEW_YORK))
    return f"{start:%H:%M}-{end:%H:%M}"


@dataclass(frozen=True)
class TickerReconciliation:
    """One ticker's verdict: the parts that failed, each with a sentence saying why."""

    ticker: str
    aggregates: TickerAggregates
    volume_deviation: float | None  # trade volume / daily bar volume - 1
    minute_bar_coverage: float | None  # covered_trade_minutes / trade_minutes; None without trades
    expected_half_hours: int
    missing_half_hours: tuple[str, ...]  # "12:00-12:30" (New York)
    failures: Mapping[str, str]  # part -> reason

    @property
    def passed(self) -> bool:
        return not self.failures


def _volume(agg: TickerAggregates, tolerance: float) -> tuple[float | None, str | None]:
    day = agg.day_bar_volume
    if day is None:
        return None, f"no daily bar stored to compare {agg.trade_volume:,.0f} traded shares with"
    if day <= 0:
        if agg.trade_volume > 0:
            return None, f"daily bar volume is 0 but the trades sum to {agg.trade_volume:,.0f} shares"
        return 0.0, None
    deviation = agg.trade_volume / day - 1
    if abs(agg.trade_volume - day) > tolerance * day:  # in shares: no rounding at the edge
        return deviation, (
            f"trades sum to {agg.trade_volume:,.0f} shares, the daily bar says {day:,.0f} "
            f"({deviation:+.1%}, beyond ±{tolerance:.0%})"
        )
    return deviation, None


def _minute_bars(agg: TickerAggregates, minimum: float) -> tuple[float | None, str | None]:
    if agg.trade_minutes == 0:
        return None, None  # nothing traded to expect bars from; the volume part judges the trades
    coverage = agg.covered_trade_minutes / agg.trade_minutes
    if coverage < minimum:
        missing = agg.trade_minutes - agg.covered_trade_minutes
        return coverage, (
            f"minute bars cover {coverage:.1%} of the {agg.trade_minutes} traded regular-session minutes "
            f"({missing} missing, below {minimum:.0%})"
        )
    return coverage, None


def reconcile_ticker(
    session: Session, agg: TickerAggregates, tolerances: Tolerances = DEFAULT_TOLERANCES
) -> TickerReconciliation:
    """Judge one ticker's aggregates against the tolerances (module docstring)."""
    failures: dict[str, str] = {}
    deviation, reason = _volume(agg, tolerances.volume)
    if reason:
        failures["volume"] = reason
    coverage, reason = _minute_bars(agg, tolerances.min_minute_bar_coverage)
    if reason:
        failures["minute_bars"] = reason
    expected = half_hours(session)
    missing = tuple(half_hour_label(session, i) for i in range(expected) if i not in agg.quoted_half_hours)
    if len(missing) > tolerances.max_half_hours_without_quotes:
        shown = ", ".join(missing[:4]) + (f" and {len(missing) - 4} more" if len(missing) > 4 else "")
        failures["quotes"] = f"no quotes in {len(missing)} of {expected} half hours: {shown} ET"
    return TickerReconciliation(agg.ticker, agg, deviation, coverage, expected, missing, failures)


def aggregates_from_frame(frame: pd.DataFrame) -> list[TickerAggregates]:
    """``trading_data.db.queries.reconciliation_aggregates``' rows as aggregates (nulls: nothing stored)."""
    out = []
    for row in frame.to_dict("records"):
        day = row.get("day_bar_volume")
        out.append(
            TickerAggregates(
                ticker=str(row["ticker"]),
                day_bar_volume=None if day is None or pd.isna(day) else float(day),
                trade_volume=float(row.get("trade_volume") or 0),
                trade_count=int(row.get("trade_count") or 0),
                trade_minutes=int(row.get("trade_minutes") or 0),
                covered_trade_minutes=int(row.get("covered_trade_minutes") or 0),
                bar_minutes=int(row.get("bar_minutes") or 0),
                quoted_half_hours=frozenset(int(i) for i in (row.get("quoted_half_hours") or ())),
            )
        )
    return out


def empty_aggregates(ticker: str) -> TickerAggregates:
    """A ticker nothing was stored for."""
    return TickerAggregates(ticker, None, 0.0, 0, 0, 0, 0, frozenset())


def reconcile(
    session: Session,
    tickers: Sequence[str],
    aggregates: Iterable[TickerAggregates],
    tolerances: Tolerances = DEFAULT_TOLERANCES,
) -> list[TickerReconciliation]:
    """Every ticker of ``tickers``, in order; a ticker without aggregates has nothing stored."""
    by_ticker = {a.ticker: a for a in aggregates}
    return [reconcile_ticker(session, by_ticker.get(t, empty_aggregates(t)), tolerances) for t in tickers]


def failure_summary(
    results: Sequence[TickerReconciliation], tolerances: Tolerances = DEFAULT_TOLERANCES
) -> str:
    """One sentence naming every failing ticker and part, or saying all reconciled."""
    failed = [r for r in results if not r.passed]
    if not results:
        return "No active tickers to reconcile."
    if not failed:
        return f"All {len(results)} active ticker(s) reconciled: {tolerances.describe()}."
    parts = "; ".join(
        f"{r.ticker} ({', '.join(f'{part}: {why}' for part, why in r.failures.items())})" for r in failed
    )
    return f"Reconciliation failed for {len(failed)} of {len(results)} ticker(s): {parts}."


def part_details(results: Sequence[TickerReconciliation]) -> dict[str, dict[str, dict[str, object]]]:
    """Per part, per ticker: the figures compared and whether the part passed (check metadata)."""
    details: dict[str, dict[str, dict[str, object]]] = {part: {} for part in PARTS}
    for r in results:
        a = r.aggregates
        details["volume"][r.ticker] = {
            "passed": "volume" not in r.failures,
            "trade_volume": a.trade_volume,
            "day_bar_volume": a.day_bar_volume,
            "deviation": None if r.volume_deviation is None else round(r.volume_deviation, 6),
            "trades": a.trade_count,
        }
        details["minute_bars"][r.ticker] = {
            "passed": "minute_bars" not in r.failures,
            "traded_minutes": a.trade_minutes,
            "traded_minutes_with_bar": a.covered_trade_minutes,
            "coverage": None if r.minute_bar_coverage is None else round(r.minute_bar_coverage, 6),
            "bar_minutes": a.bar_minutes,
        }
        details["quotes"][r.ticker] = {
            "passed": "quotes" not in r.failures,
            "quoted_half_hours": len(a.quoted_half_hours & set(range(r.expected_half_hours))),
            "expected_half_hours": r.expected_half_hours,
            "missing": list(r.missing_half_hours),
        }
    return details
