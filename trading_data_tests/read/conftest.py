"""Four sessions of the real asset graph, materialized once against a real PostgreSQL database and the
simulator over loopback HTTP: Friday 2026-10-30 (New York on EDT) and Monday 2026-11-02 (EST, after
the change of 2026-11-01), and 2026-11-25 and 2026-11-27 around Thanksgiving (2026-11-26; the 27th
closes early)."""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterator
from dataclasses import dataclass

import psycopg
import pytest

from trading_data.db.migrate import migrate
from trading_data.sources.simulator.server import SimulatorServer
from trading_data_tests.factories import materialize_session, small_tickers
from trading_data_tests.processes.helpers import drop_database, fresh_database

SESSIONS = ("2026-10-30", "2026-11-02", "2026-11-25", "2026-11-27")
NOW = dt.datetime(2026, 11, 27, 17, 0, tzinfo=dt.timezone(dt.timedelta(hours=-5)))
ASSETS = [
    "selected_tickers",
    "position_sizes",
    "prices",
    "quotes",
    "trades",
    "options_flow",
    "indicators",
    "bar_aggregates",
]


@dataclass(frozen=True)
class Stored:
    url: str
    tickers: list[str]

    def rows(self, query: str, params: tuple = ()) -> list[tuple]:
        with psycopg.connect(self.url) as conn:
            return conn.execute(query, params).fetchall()


@pytest.fixture(scope="session")
def stored(server_url: str, worker_id: str) -> Iterator[Stored]:
    name = f"trading_data_test_{os.environ.get('TRADING_DATA_TEST_RUN', '')}{worker_id}_read"
    url = fresh_database(server_url, name)
    migrate(url)
    tickers = small_tickers(2)
    with pytest.MonkeyPatch.context() as patch, SimulatorServer(now=lambda: NOW) as sim:
        patch.setenv("TRADING_DATA_NOW", NOW.isoformat())
        for key in SESSIONS:
            result = materialize_session(url, sim.base_url, key, ASSETS, tickers=tickers)
            assert result.success, key
    yield Stored(url, tickers)
    drop_database(server_url, name)
