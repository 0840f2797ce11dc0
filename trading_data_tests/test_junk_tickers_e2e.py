"""Junk vendor tickers never kill selection (issue 9, point 1): the simulator over real HTTP serves
grouped daily bars with junk ``T`` rows that would rank first; ``selected_tickers`` drops and counts
them and selects from the real tickers, into the real test database."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import dagster as dg
import httpx
import psycopg
import pytest

from trading_data import domain
from trading_data.calendar import previous_sessions
from trading_data.db.io_manager import PostgresPandasIOManager
from trading_data.db.resources import MarketDatabase
from trading_data.defs.selection.assets import selected_tickers
from trading_data.domain.selection import DroppedSymbols
from trading_data.settings import TICKER_PATTERN, PipelineSettingsResource
from trading_data.sources.resources import PolygonResource
from trading_data.sources.simulator.faults import JUNK_TICKERS, BodyFaults
from trading_data.sources.simulator.server import SimulatorServer

SESSION = "2026-11-25"
NOW = dt.datetime(2026, 11, 25, 23, 0, tzinfo=dt.UTC)  # after that session's close
LOOKBACK = 5


@pytest.fixture
def sim(monkeypatch: pytest.MonkeyPatch) -> Iterator[SimulatorServer]:
    monkeypatch.setenv("TRADING_DATA_NOW", NOW.isoformat())
    server = SimulatorServer(seed=7, now=lambda: NOW)
    server.app = BodyFaults(server.app, server.faults)  # type: ignore[assignment]
    with server:
        # Switched on as an operator would, over the simulator's admin endpoint.
        switched = httpx.post(
            f"{server.base_url}/_sim/faults", json={"faults": [{"kind": "junk_tickers", "count": None}]}
        )
        assert switched.status_code == 200, switched.text
        yield server


def _materialize(url: str, sim: SimulatorServer) -> dg.ExecuteInProcessResult:
    return dg.materialize(
        [selected_tickers],
        partition_key=SESSION,
        resources={
            "io_manager": PostgresPandasIOManager(database_url=url),
            "database": MarketDatabase(database_url=url),
            "settings": PipelineSettingsResource(lookback_days=LOOKBACK),
            "polygon": PolygonResource(
                source="simulated", simulator_url=sim.base_url, retry_initial_wait_seconds=0.01
            ),
        },
    )


def _stored(url: str) -> list[tuple[str, bool, bool]]:
    with psycopg.connect(url) as conn:
        return [
            (r[0], r[1], r[2])
            for r in conn.execute(
                "SELECT ticker, is_active, is_fallback FROM market.selected_tickers WHERE session = %s",
                (dt.date.fromisoformat(SESSION),),
            ).fetchall()
        ]


def test_the_simulator_serves_junk_rows_on_top_when_switched_on(sim: SimulatorServer) -> None:
    answer = httpx.get(
        f"{sim.base_url}/v2/aggs/grouped/locale/us/market/stocks/2026-11-24",
        headers={"Authorization": "Bearer k"},
    ).json()
    symbols = [row["T"] for row in answer["results"]]
    assert tuple(symbols[: len(JUNK_TICKERS)]) == JUNK_TICKERS
    assert answer["resultsCount"] == len(symbols)
    top_volume = max(row["v"] for row in answer["results"][len(JUNK_TICKERS) :])
    assert all(row["v"] > top_volume for row in answer["results"][: len(JUNK_TICKERS)])


def test_junk_tickers_are_dropped_and_selection_proceeds(clean_market: str, sim: SimulatorServer) -> None:
    result = _materialize(clean_market, sim)
    assert result.success
    metadata = {
        k: v.value for k, v in result.asset_materializations_for_node("selected_tickers")[0].metadata.items()
    }
    assert metadata["used_fallback"] is False and metadata["selection_source"] == "selection"
    assert metadata["dropped_symbols"] == len(JUNK_TICKERS)
    assert metadata["dropped_symbol_rows"] == len(JUNK_TICKERS) * LOOKBACK
    assert metadata["dropped_symbol_examples"] == [ascii(s) for s in JUNK_TICKERS]
    assert "\x00" not in metadata["message"] and "invalid ticker symbol(s) dropped" in metadata["message"]
    assert sim.faults.faults[0].hits == len(previous_sessions(dt.date.fromisoformat(SESSION), LOOKBACK))
    stored = _stored(clean_market)
    assert stored and all(TICKER_PATTERN.fullmatch(ticker) for ticker, _, _ in stored)
    assert any(active for _, active, _ in stored) and not any(fallback for _, _, fallback in stored)
    assert metadata["active_count"] == sum(active for _, active, _ in stored)


def test_a_selection_frame_the_model_rejects_falls_back(
    clean_market: str, sim: SimulatorServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The last line of defence: were junk ever to reach the frame (here: the filter switched off),
    # validation fails and the asset falls back to the default tickers instead of dying.
    monkeypatch.setattr(domain.selection, "drop_invalid_tickers", lambda bars: (bars, DroppedSymbols()))
    result = _materialize(clean_market, sim)
    assert result.success
    metadata = result.asset_materializations_for_node("selected_tickers")[0].metadata
    assert metadata["used_fallback"].value is True
    assert "selection failed validation" in metadata["message"].value
    assert "\x00" not in metadata["message"].value
    stored = _stored(clean_market)
    assert {t for t, _, _ in stored} == set(PipelineSettingsResource().to_settings().default_tickers)
    assert all(active and fallback for _, active, fallback in stored)
