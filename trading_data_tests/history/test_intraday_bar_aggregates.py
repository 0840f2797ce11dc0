"""The intraday prices ticks keep the 5-minute and hourly bars current: each ``prices_schedule`` run
refreshes ``bar_aggregates`` for its session after ``prices``, so during the session ``bars_5m`` and
``bars_1h`` equal a resample of the minute bars stored so far (the open hour's bar included).

Against a real PostgreSQL server (continuous aggregates where TimescaleDB is loaded, tables elsewhere) and
the simulator over loopback HTTP, with the platform's clock pinned (TRADING_DATA_NOW) to each tick.
"""

from __future__ import annotations

import datetime as dt

import dagster as dg
import pandas as pd
import psycopg
import pytest

from trading_data.calendar import session_window
from trading_data.db.queries import read_frame
from trading_data.definitions import ASSETS
from trading_data.orchestration.schedules import JOBS, SCHEDULES
from trading_data.sources.simulator.server import SimulatorServer
from trading_data_tests.factories import execute_run_request, simulator_resources, small_tickers
from trading_data_tests.history.test_bar_aggregates import _normalised, resampled

pytestmark = [pytest.mark.slow, pytest.mark.clock, pytest.mark.xdist_group("end_to_end")]

NY = dt.timezone(dt.timedelta(hours=-5))  # EST in December
SESSION = "2026-12-01"


def _tick(defs: dg.Definitions, instance: dg.DagsterInstance, tick: dt.datetime) -> dg.RunRequest:
    context = dg.build_schedule_context(
        instance=instance, scheduled_execution_time=tick, repository_def=defs.get_repository_def()
    )
    [request] = list(defs.get_schedule_def("prices_schedule").evaluate_tick(context).run_requests or [])
    return request


def _session_frames(url: str) -> tuple[pd.DataFrame, dict[str, pd.DataFrame]]:
    """The session's stored minute bars, and its rows of bars_5m and bars_1h."""
    start, end = session_window(SESSION)
    with psycopg.connect(url) as conn:
        minutes = read_frame(
            conn,
            "SELECT ts, ticker, open, high, low, close, volume, vwap, transactions FROM market.prices "
            "WHERE timespan = 'minute' AND ts >= %s AND ts < %s",
            (start, end),
        ).assign(ts=lambda f: pd.to_datetime(f["ts"], utc=True))
        bars = {
            table: read_frame(conn, f"SELECT * FROM market.{table} WHERE ts >= %s AND ts < %s", (start, end))
            for table in ("bars_5m", "bars_1h")
        }
    return minutes, bars


def test_each_prices_tick_refreshes_the_sessions_bars(
    clean_market: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    tickers = small_tickers(2)
    latest: list[pd.Timestamp] = []
    with SimulatorServer() as sim, dg.instance_for_test() as instance:
        defs = dg.Definitions(
            assets=ASSETS,
            jobs=JOBS,
            schedules=SCHEDULES,
            resources=simulator_resources(clean_market, sim.base_url, tickers=tickers),
        )
        for hour in (11, 12):
            tick = dt.datetime(2026, 12, 1, hour, 5, tzinfo=NY)
            monkeypatch.setenv("TRADING_DATA_NOW", (tick + dt.timedelta(seconds=20)).isoformat())
            request = _tick(defs, instance, tick)
            selected = [k.to_user_string() for k in request.asset_selection or []]
            assert selected[-3:] == ["prices", "bar_aggregates", "indicators"]
            result = execute_run_request(defs, "prices_job", instance, request)
            assert result.success
            minutes, bars = _session_frames(clean_market)
            assert len(minutes) > 100
            for table, rule in (("bars_5m", "5min"), ("bars_1h", "1h")):
                pd.testing.assert_frame_equal(
                    _normalised(bars[table]),
                    _normalised(resampled(minutes, rule)),
                    check_exact=False,
                    rtol=1e-9,
                )
            latest.append(pd.to_datetime(bars["bars_5m"]["ts"], utc=True).max())
    # The second tick's bars reach past the first's: the refresh follows the session as it goes.
    assert latest[0] < pd.Timestamp("2026-12-01 11:05", tz=NY) <= latest[1]
    assert latest[1] < pd.Timestamp("2026-12-01 12:05", tz=NY)
