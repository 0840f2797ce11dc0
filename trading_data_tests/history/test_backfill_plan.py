"""The backfill plan's request counts equal the simulator's request log for the same backfill; selection
with explicit symbols fetches only those tickers' daily bars."""

from __future__ import annotations

import datetime as dt
from collections import Counter

import dagster as dg
import pytest

from trading_data.backfill.plan import POLYGON, UNUSUAL_WHALES, PlanInputs, plan_backfill, render
from trading_data.definitions import ASSETS
from trading_data.sources.simulator.server import SimulatorServer
from trading_data_tests.factories import simulator_resources, small_tickers

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("end_to_end")]

NOW = dt.datetime(2026, 11, 27, 18, tzinfo=dt.timezone(dt.timedelta(hours=-5)))
SESSIONS = ["2026-11-24", "2026-11-25"]
GROUPED = "/v2/aggs/grouped/locale/us/market/stocks/"


def _vendor(path: str) -> str | None:
    if path.startswith("/_sim"):
        return None
    return UNUSUAL_WHALES if path.startswith("/api/") else POLYGON


def _backfill(
    url: str, sim: SimulatorServer, selection: list[str], symbols: list[str] | None
) -> Counter[str]:
    """Materialize ``selection`` for every session of SESSIONS; the simulator's requests per path."""
    sim.stats.reset()
    for key in SESSIONS:
        result = dg.materialize(
            ASSETS,
            partition_key=key,
            resources=simulator_resources(url, sim.base_url, tickers=symbols),
            selection=selection,
        )
        assert result.success
    return Counter(sim.stats.snapshot()["per_path"])


def _per_vendor(paths: Counter[str]) -> dict[str, int]:
    totals = {POLYGON: 0, UNUSUAL_WHALES: 0}
    for path, count in paths.items():
        if (vendor := _vendor(path)) is not None:
            totals[vendor] += count
    return totals


@pytest.fixture
def sim(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("TRADING_DATA_NOW", NOW.isoformat())
    with SimulatorServer(now=lambda: NOW) as server:
        yield server


def test_selection_with_symbols_fetches_only_their_daily_bars(
    clean_market: str, sim: SimulatorServer
) -> None:
    symbols = small_tickers(2)
    paths = _backfill(clean_market, sim, ["selected_tickers"], symbols)
    assert not [p for p in paths if p.startswith(GROUPED)], "whole-market grouped bars were downloaded"
    daily = {p: n for p, n in paths.items() if "/range/1/day/" in p}
    # One range request per symbol and session, nothing else.
    assert sum(daily.values()) == len(symbols) * len(SESSIONS) == sum(paths.values())
    assert {p.split("/")[4] for p in daily} == set(symbols)


def test_selection_with_symbols_has_the_metrics_grouped_bars_gave(
    clean_market: str, sim: SimulatorServer
) -> None:
    """The per-ticker daily bars give each symbol the same ATR, volume and close the grouped bars did."""
    import asyncio

    from trading_data.calendar import previous_sessions
    from trading_data.defs.selection.assets import _daily_bars_window
    from trading_data.domain.selection import SelectionParams, symbols_selection
    from trading_data.sources.resources import PolygonResource

    symbols = tuple(small_tickers(2))
    day = dt.date.fromisoformat(SESSIONS[0])
    history = previous_sessions(day, 20)
    polygon = PolygonResource(source="simulated", simulator_url=sim.base_url)
    by_symbol, _ = asyncio.run(_daily_bars_window(polygon, history, symbols))
    grouped, _ = asyncio.run(_daily_bars_window(polygon, history))
    columns = ["ticker", "avg_volume", "atr", "last_close"]
    mine = symbols_selection(day, symbols, by_symbol, SelectionParams(), NOW).frame[columns]
    theirs = symbols_selection(day, symbols, grouped, SelectionParams(), NOW).frame[columns]
    assert mine["last_close"].notna().all()
    assert mine.round(6).equals(theirs.round(6))


@pytest.mark.parametrize(
    ("selection", "symbols"),
    [
        (["selected_tickers"], None),  # dynamic selection: lookback_days grouped requests per session
        (["selected_tickers", "prices", "options_flow"], 3),
    ],
)
def test_plan_request_counts_equal_the_simulator_log(
    clean_market: str, sim: SimulatorServer, selection: list[str], symbols: int | None
) -> None:
    tickers = small_tickers(symbols) if symbols else None
    logged = _per_vendor(_backfill(clean_market, sim, selection, tickers))
    inputs = PlanInputs(symbols=tuple(tickers or ()))
    first, last = (dt.date.fromisoformat(k) for k in (SESSIONS[0], SESSIONS[-1]))
    plan = plan_backfill(first, last, inputs, selection, today=NOW.date())
    assert plan.vendor_requests() == logged, render(plan)
