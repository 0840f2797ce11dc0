"""What a backfill of sessions costs, before it runs: vendor requests, duration at the plan's limits, rows
and bytes. Plain Python: the request counts follow what each asset asks its vendor for, one session at a
time (see trading_data/defs/*/assets.py); row figures come from what the database already holds per
ticker and session where it holds any, else from typical figures below.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from trading_data.calendar import sessions_between

POLYGON, UNUSUAL_WHALES = "polygon", "unusual_whales"
ASSETS = (
    "selected_tickers",
    "position_sizes",
    "prices",
    "quotes",
    "trades",
    "options_flow",
    "indicators",
    "bar_aggregates",
    "daily_report",
)
# Page sizes the clients ask for (sources/polygon.py MAX_TICK_LIMIT, sources/unusual_whales.py MAX_FLOW_LIMIT).
POLYGON_PAGE_ROWS = 50_000
FLOW_PAGE_ROWS = 200
# Per ticker and session when the database holds nothing yet: a liquid US stock's minute bars (04:00-20:00
# with extended hours, plus the daily bar), its NBBO quotes and trades, and its flow alerts.
TYPICAL_ROWS = {"prices": 961, "quotes": 400_000, "trades": 150_000, "options_flow": 40, "indicators": 390}
# Bytes on disk per row (heap tuple plus primary-key index) when the database holds nothing to measure.
TYPICAL_ROW_BYTES = {"prices": 150, "quotes": 140, "trades": 130, "options_flow": 400, "indicators": 200}
AGGREGATE_ROWS = 78 + 7  # 5-minute and hourly bars of a regular session, per ticker


@dataclass(frozen=True)
class TableRates:
    """What one ticker's session holds in a table: rows, and bytes on disk per row."""

    rows_per_ticker_session: float
    bytes_per_row: float
    measured: bool = False


@dataclass(frozen=True)
class PlanInputs:
    """What the plan depends on besides the range: the pipeline options and the plan limits."""

    symbols: tuple[str, ...] = ()
    lookback_days: int = 20
    max_active_tickers: int = 10
    rate_per_minute: Mapping[str, int] = field(default_factory=lambda: {POLYGON: 5, UNUSUAL_WHALES: 120})
    rates: Mapping[str, TableRates] = field(default_factory=dict)
    """Measured per-table rates (``trading_data.db.history.table_rates``); typical figures otherwise."""

    @property
    def tickers(self) -> int:
        return len(self.symbols) if self.symbols else self.max_active_tickers

    def rate(self, table: str) -> TableRates:
        return self.rates.get(table) or TableRates(
            TYPICAL_ROWS.get(table, 0), TYPICAL_ROW_BYTES.get(table, 0)
        )


@dataclass
class BackfillPlan:
    """Per session and asset: requests per vendor, and estimated rows and bytes written."""

    sessions: list[dt.date]
    assets: tuple[str, ...]
    requests: dict[str, dict[str, int]]
    """asset -> vendor -> requests for the whole range."""
    rows: dict[str, int]
    bytes: dict[str, int]
    rate_per_minute: Mapping[str, int]
    tickers: int
    measured: set[str] = field(default_factory=set)
    runs: int | None = None
    """Dagster runs the backfill launches (trading_data.backfill.run.backfill_runs), when counted."""

    def vendor_requests(self) -> dict[str, int]:
        totals = {POLYGON: 0, UNUSUAL_WHALES: 0}
        for per_vendor in self.requests.values():
            for vendor, count in per_vendor.items():
                totals[vendor] += count
        return totals

    def duration_seconds(self) -> float:
        """At the plan limits, vendors called side by side: the slowest vendor's requests / its rate."""
        return max(
            (60.0 * count / self.rate_per_minute[vendor] for vendor, count in self.vendor_requests().items()),
            default=0.0,
        )


def _pages(rows: float, page_rows: int) -> int:
    return max(1, math.ceil(rows / page_rows))


def session_requests(asset: str, inputs: PlanInputs, day: dt.date, today: dt.date) -> dict[str, int]:
    """The vendor requests ``asset`` makes to materialize one past or present session."""
    tickers = inputs.tickers
    if asset == "selected_tickers":
        # With symbols, one daily-bars range request per symbol; else one grouped request per session.
        return {POLYGON: len(inputs.symbols) if inputs.symbols else inputs.lookback_days}
    if asset == "prices":
        # The minute bars (one page holds a whole session) and the daily bar, per ticker.
        return {POLYGON: 2 * tickers}
    if asset in ("quotes", "trades"):
        return {POLYGON: tickers * _pages(inputs.rate(asset).rows_per_ticker_session, POLYGON_PAGE_ROWS)}
    if asset == "options_flow":
        flow = tickers * _pages(inputs.rate(asset).rows_per_ticker_session, FLOW_PAGE_ROWS)
        # The chain snapshot is of now: only today's session polls it.
        return {UNUSUAL_WHALES: flow, POLYGON: tickers if day == today else 0}
    return {}


def _rows(asset: str, inputs: PlanInputs) -> tuple[float, float]:
    if asset in ("selected_tickers", "position_sizes", "daily_report"):
        return float(inputs.tickers), 120.0
    if asset == "bar_aggregates":
        return float(AGGREGATE_ROWS * inputs.tickers), 110.0
    rate = inputs.rate(asset)
    return rate.rows_per_ticker_session * inputs.tickers, rate.bytes_per_row


def plan_backfill(
    first: dt.date, last: dt.date, inputs: PlanInputs, assets: Sequence[str] = ASSETS, *, today: dt.date
) -> BackfillPlan:
    """The plan of materializing ``assets`` for every session from ``first`` to ``last`` inclusive."""
    unknown = [a for a in assets if a not in ASSETS]
    if unknown:
        raise ValueError(f"unknown asset(s) {', '.join(unknown)}; known: {', '.join(ASSETS)}")
    if last < first:
        raise ValueError(f"--to {last} is before --from {first}")
    sessions = sessions_between(first, last)
    requests: dict[str, dict[str, int]] = {}
    rows: dict[str, int] = {}
    sizes: dict[str, int] = {}
    for asset in assets:
        totals: dict[str, int] = {}
        for day in sessions:
            for vendor, count in session_requests(asset, inputs, day, today).items():
                totals[vendor] = totals.get(vendor, 0) + count
        requests[asset] = totals
        per_session, width = _rows(asset, inputs)
        rows[asset] = round(per_session * len(sessions))
        sizes[asset] = round(per_session * len(sessions) * width)
    measured = {t for t, r in inputs.rates.items() if r.measured}
    return BackfillPlan(
        sessions, tuple(assets), requests, rows, sizes, inputs.rate_per_minute, inputs.tickers, measured
    )


def _size(count: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if count < 1024 or unit == "GiB":
            return f"{count:,.0f} {unit}" if unit == "B" else f"{count:,.1f} {unit}"
        count /= 1024
    raise AssertionError


def _duration(seconds: float) -> str:
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    days, hours = divmod(hours, 24)
    parts = [f"{days}d"] * bool(days) + [f"{hours}h"] * bool(hours) + [f"{minutes}m", f"{secs:02d}s"]
    return " ".join(parts[:3])


def render(plan: BackfillPlan) -> str:
    """The plan as ``trading-data backfill plan`` prints it."""
    if not plan.sessions:
        return "no NYSE session in that range: nothing to backfill"
    lines = [
        f"backfill of {len(plan.sessions)} session(s), {plan.sessions[0]} .. {plan.sessions[-1]}, "
        f"{plan.tickers} active ticker(s) per session",
        "",
        f"{'asset':<18}{'polygon req':>13}{'uw req':>10}{'rows':>15}{'bytes':>13}",
    ]
    for asset in plan.assets:
        req = plan.requests[asset]
        mark = "" if asset in plan.measured else "*"
        lines.append(
            f"{asset:<18}{req.get(POLYGON, 0):>13,}{req.get(UNUSUAL_WHALES, 0):>10,}"
            f"{plan.rows[asset]:>15,}{_size(plan.bytes[asset]) + mark:>13}"
        )
    totals = plan.vendor_requests()
    lines += [
        f"{'total':<18}{totals[POLYGON]:>13,}{totals[UNUSUAL_WHALES]:>10,}"
        f"{sum(plan.rows.values()):>15,}{_size(sum(plan.bytes.values())):>13}",
        "",
        "estimated duration at the plan limits: "
        + ", ".join(
            f"{vendor} {count:,} requests at {plan.rate_per_minute[vendor]}/min = "
            f"{_duration(60.0 * count / plan.rate_per_minute[vendor])}"
            for vendor, count in totals.items()
        )
        + f"; about {_duration(plan.duration_seconds())} with both vendors in parallel",
    ]
    if plan.runs is not None:
        lines.append(f"dagster runs: {plan.runs} (sessions batched per run by each asset's BackfillPolicy)")
    if set(plan.assets) - plan.measured:
        lines.append("* rows and bytes from typical figures: this database holds none of that table yet")
    return "\n".join(lines)
