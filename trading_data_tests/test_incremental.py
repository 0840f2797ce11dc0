"""Intraday ticks are incremental: each fetches only what is newer than the stored watermark."""

import datetime as dt

import dagster as dg
import psycopg
import pytest

from trading_data.definitions import ASSETS
from trading_data.sources.simulator.market import SimulatedMarket
from trading_data.sources.simulator.server import SimulatorServer
from trading_data_tests.factories import simulator_resources

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("end_to_end")]

SESSION = "2026-11-25"
NEW_YORK = dt.timezone(dt.timedelta(hours=-5))  # EST on this date


class Clock:
    """The simulator's and the platform's "now" (TRADING_DATA_NOW): data exists only up to it, and the
    session is live, so ticks extend it."""

    def __init__(self, moment: dt.datetime, monkeypatch: pytest.MonkeyPatch):
        self._monkeypatch = monkeypatch
        self.moment = moment

    @property
    def moment(self) -> dt.datetime:
        return self._moment

    @moment.setter
    def moment(self, value: dt.datetime) -> None:
        self._moment = value
        self._monkeypatch.setenv("TRADING_DATA_NOW", value.isoformat())

    def __call__(self) -> dt.datetime:
        return self.moment


def _tickers() -> list[str]:
    profiles = sorted(
        (p for p in SimulatedMarket().universe() if p.avg_volume >= 400_000), key=lambda p: p.avg_volume
    )
    return sorted(p.ticker for p in profiles[:2])


def _run(url: str, sim_url: str, tickers: list[str], selection: list[str]) -> dg.ExecuteInProcessResult:
    resources = simulator_resources(url, sim_url, tickers=tickers)
    return dg.materialize(ASSETS, partition_key=SESSION, resources=resources, selection=selection)


def _rows(url: str, table: str) -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute(f"SELECT count(*) FROM market.{table}").fetchone()
        assert row is not None
        return int(row[0])


def test_ticks_fetch_only_new_data_and_match_one_full_fetch(
    clean_market: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    tickers = _tickers()
    clock = Clock(dt.datetime(2026, 11, 25, 10, 0, tzinfo=NEW_YORK), monkeypatch)
    with SimulatorServer(now=clock) as sim:
        assert _run(clean_market, sim.base_url, tickers, ["selected_tickers"]).success
        first = _run(clean_market, sim.base_url, tickers, ["quotes", "trades"])
        at_ten = {t: _rows(clean_market, t) for t in ("quotes", "trades")}
        assert all(at_ten.values())

        clock.moment = dt.datetime(2026, 11, 25, 10, 15, tzinfo=NEW_YORK)
        second = _run(clean_market, sim.base_url, tickers, ["quotes", "trades"])
        at_quarter = {t: _rows(clean_market, t) for t in ("quotes", "trades")}

        # Re-running the same tick changes nothing.
        again = _run(clean_market, sim.base_url, tickers, ["quotes", "trades"])
        assert again.success and {t: _rows(clean_market, t) for t in at_quarter} == at_quarter

    for table in ("quotes", "trades"):
        written_first = first.asset_materializations_for_node(table)[0].metadata["rows_written"].value
        written_second = second.asset_materializations_for_node(table)[0].metadata["rows_written"].value
        assert written_first == at_ten[table]
        # The second tick fetched the 15 new minutes (plus the watermark rows), not the whole morning.
        assert at_quarter[table] > at_ten[table]
        assert written_second < at_quarter[table]
        assert written_second >= at_quarter[table] - at_ten[table]

    # One fetch of the whole window from scratch stores exactly the same rows.
    with psycopg.connect(clean_market, autocommit=True) as conn:
        conn.execute("TRUNCATE market.quotes, market.trades")
    with SimulatorServer(now=clock) as sim:
        assert _run(clean_market, sim.base_url, tickers, ["quotes", "trades"]).success
    assert {t: _rows(clean_market, t) for t in at_quarter} == at_quarter
