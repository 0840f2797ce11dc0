"""The 16:30 full pipeline reconciles the session: simulator over loopback HTTP, real PostgreSQL.

One closed session (2026-11-25) is materialized once; each test removes some stored rows, re-runs
only the ``daily_report_reconciled`` check and puts the rows back.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterator
from contextlib import contextmanager

import dagster as dg
import psycopg
import pytest

from trading_data.db.io_manager import PostgresPandasIOManager
from trading_data.db.resources import MarketDatabase
from trading_data.definitions import ASSET_CHECKS, ASSETS
from trading_data.defs.analytics.checks import daily_report_reconciled
from trading_data.settings import PipelineSettingsResource
from trading_data.sources.resources import PolygonResource, UnusualWhalesResource
from trading_data.sources.simulator.market import SimulatedMarket
from trading_data.sources.simulator.server import SimulatorServer
from trading_data_tests.processes.helpers import drop_database, fresh_database

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("reconciliation")]

SESSION = "2026-11-25"
EST = dt.timezone(dt.timedelta(hours=-5))
FULL_PIPELINE = dt.datetime(2026, 11, 25, 16, 30, tzinfo=EST)  # the 16:30 full pipeline tick
CHECK = "daily_report_reconciled"


def _tickers() -> list[str]:
    """The two quietest liquid simulator tickers: a whole session of them loads in seconds."""
    profiles = sorted(
        (p for p in SimulatedMarket().universe() if p.avg_volume >= 400_000), key=lambda p: p.avg_volume
    )
    return sorted(p.ticker for p in profiles[:2])


class Session:
    def __init__(self, url: str, sim_url: str, tickers: list[str]):
        self.url, self.sim_url, self.tickers = url, sim_url, tickers

    def resources(self) -> dict:
        return {
            "io_manager": PostgresPandasIOManager(database_url=self.url),
            "database": MarketDatabase(database_url=self.url),
            "settings": PipelineSettingsResource(symbols=self.tickers),
            "polygon": PolygonResource(
                source="simulated", simulator_url=self.sim_url, retry_initial_wait_seconds=0.01
            ),
            "unusual_whales": UnusualWhalesResource(
                source="simulated", simulator_url=self.sim_url, retry_initial_wait_seconds=0.01
            ),
        }

    def materialize(self) -> dg.ExecuteInProcessResult:
        return dg.materialize([*ASSETS, *ASSET_CHECKS], partition_key=SESSION, resources=self.resources())

    def check(self) -> dg.AssetCheckEvaluation:
        """Run only the reconciliation check for the session, as a user re-running it from the UI does.

        A check-only job has no partitions definition of its own (Dagster infers it from the assets
        selected, none here), so the session comes as the run's partition tag, as the UI sets it.
        """
        job = dg.define_asset_job("reconcile", selection=dg.AssetSelection.checks(daily_report_reconciled))
        defs = dg.Definitions(
            assets=ASSETS, asset_checks=ASSET_CHECKS, jobs=[job], resources=self.resources()
        )
        result = defs.resolve_job_def("reconcile").execute_in_process(tags={"dagster/partition": SESSION})
        assert result.success
        assert not result.get_asset_materialization_events()
        evaluation = _evaluation(result)
        assert evaluation.partition == SESSION
        return evaluation

    @contextmanager
    def removed(self, table: str, where: str, params: tuple = ()) -> Iterator[int]:
        """Delete rows of ``market.<table>`` matching ``where`` for the block; put them back after."""
        with psycopg.connect(self.url) as conn:
            conn.execute(f"CREATE TEMP TABLE saved AS SELECT * FROM market.{table} WHERE {where}", params)
            deleted = conn.execute(f"DELETE FROM market.{table} WHERE {where}", params).rowcount
            conn.commit()
            try:
                yield deleted
            finally:
                conn.execute(f"INSERT INTO market.{table} SELECT * FROM saved")
                conn.commit()


def _evaluation(result: dg.ExecuteInProcessResult) -> dg.AssetCheckEvaluation:
    [evaluation] = [e for e in result.get_asset_check_evaluations() if e.check_name == CHECK]
    return evaluation


def _meta(evaluation: dg.AssetCheckEvaluation, key: str):
    return evaluation.metadata[key].value


@pytest.fixture(scope="module")
def closed_session(server_url: str, worker_id: str) -> Iterator[tuple[Session, dg.ExecuteInProcessResult]]:
    # Per worker: pytest-xdist may still split this module's tests over workers despite the group
    # (seen), and a shared name would let one worker's DROP ... WITH (FORCE) cut the other's connections.
    name = f"trading_data_test_{os.environ.get('TRADING_DATA_TEST_RUN', '')}{worker_id}_reconciliation"
    url = fresh_database(server_url, name)
    from trading_data.db.migrate import migrate

    migrate(url)
    with pytest.MonkeyPatch.context() as patch, SimulatorServer(now=lambda: FULL_PIPELINE) as sim:
        patch.setenv("TRADING_DATA_NOW", FULL_PIPELINE.isoformat())
        state = Session(url, sim.base_url, _tickers())
        result = state.materialize()
        assert result.success
        yield state, result
    drop_database(server_url, name)


def test_the_full_pipeline_reconciles_a_simulated_session(closed_session) -> None:
    state, result = closed_session
    evaluation = _evaluation(result)
    assert evaluation.passed, evaluation.description
    assert evaluation.description.startswith("All 2 active ticker(s) reconciled")
    assert _meta(evaluation, "failed_tickers") == []
    for ticker in state.tickers:
        volume = _meta(evaluation, "volume")[ticker]
        # The simulator's trades sum exactly to its daily bar.
        assert volume["trades"] > 0 and volume["trade_volume"] == volume["day_bar_volume"]
        bars = _meta(evaluation, "minute_bars")[ticker]
        assert 0 < bars["traded_minutes"] == bars["traded_minutes_with_bar"] <= 390
        quotes = _meta(evaluation, "quotes")[ticker]
        assert quotes["quoted_half_hours"] == quotes["expected_half_hours"] == 13
    report = result.asset_materializations_for_node("daily_report")[0].metadata
    assert report["reconciled"].value is True and report["reconciliation_failed_tickers"].value == []
    assert "## Reconciliation\n\nAll 2 active ticker(s) reconciled" in report["report"].value
    with psycopg.connect(state.url) as conn:
        stored = conn.execute(
            "SELECT table_name, count(*), count(*) FILTER (WHERE reconciliation = 'ok'), sum(trade_volume), "
            "sum(day_bar_volume), sum(traded_minutes), sum(quoted_half_hours) FROM market.daily_report "
            "WHERE reconciliation IS NOT NULL GROUP BY table_name ORDER BY table_name"
        ).fetchall()
    volume = _meta(evaluation, "volume")
    day_volume = sum(v["day_bar_volume"] for v in volume.values())
    traded = sum(v["traded_minutes"] for v in _meta(evaluation, "minute_bars").values())
    assert stored == [
        ("prices", 2, 2, None, None, traded, None),
        ("quotes", 2, 2, None, None, None, 26),
        ("trades", 2, 2, day_volume, day_volume, None, None),
    ]


def test_removing_half_of_one_tickers_trades_fails_naming_it(closed_session) -> None:
    state, _ = closed_session
    ticker, other = state.tickers
    with state.removed("trades", "ticker = %s AND sequence_number %% 2 = 0", (ticker,)) as deleted:
        assert deleted > 0
        evaluation = state.check()
    assert not evaluation.passed
    assert evaluation.severity == dg.AssetCheckSeverity.ERROR
    assert f"{ticker} (volume: trades sum to" in evaluation.description
    assert other not in evaluation.description
    assert _meta(evaluation, "failed_tickers") == [ticker]
    volume = _meta(evaluation, "volume")
    assert volume[ticker]["passed"] is False and -0.6 < volume[ticker]["deviation"] < -0.4
    assert volume[other]["passed"] is True
    assert state.check().passed  # the rows are back


def test_a_few_trades_missing_stay_within_the_tolerance(closed_session) -> None:
    state, _ = closed_session
    ticker = state.tickers[0]
    # About 1% of the day's trades: within the ±2% volume tolerance.
    with state.removed("trades", "ticker = %s AND sequence_number %% 100 = 7", (ticker,)) as deleted:
        assert deleted > 0
        evaluation = state.check()
    assert evaluation.passed, evaluation.description
    assert _meta(evaluation, "volume")[ticker]["deviation"] < 0


def test_an_hour_of_minute_bars_missing_fails_minute_coverage(closed_session) -> None:
    state, _ = closed_session
    ticker = state.tickers[1]
    hour = (dt.datetime(2026, 11, 25, 12, 0, tzinfo=EST), dt.datetime(2026, 11, 25, 13, 0, tzinfo=EST))
    with state.removed(
        "prices", "ticker = %s AND timespan = 'minute' AND ts >= %s AND ts < %s", (ticker, *hour)
    ) as deleted:
        assert deleted > 0
        evaluation = state.check()
    assert not evaluation.passed
    assert _meta(evaluation, "failed_tickers") == [ticker]
    assert f"{ticker} (minute_bars: minute bars cover" in evaluation.description
    bars = _meta(evaluation, "minute_bars")[ticker]
    assert bars["traded_minutes"] - bars["traded_minutes_with_bar"] == deleted
    assert _meta(evaluation, "volume")[ticker]["passed"] and _meta(evaluation, "quotes")[ticker]["passed"]


def test_a_half_hour_without_quotes_fails(closed_session) -> None:
    state, _ = closed_session
    ticker = state.tickers[0]
    half = (dt.datetime(2026, 11, 25, 14, 0, tzinfo=EST), dt.datetime(2026, 11, 25, 14, 30, tzinfo=EST))
    with state.removed("quotes", "ticker = %s AND ts >= %s AND ts < %s", (ticker, *half)):
        evaluation = state.check()
    assert not evaluation.passed
    assert f"{ticker} (quotes: no quotes in 1 of 13 half hours: 14:00-14:30 ET)" in evaluation.description
    quotes = _meta(evaluation, "quotes")[ticker]
    assert quotes["missing"] == ["14:00-14:30"] and quotes["quoted_half_hours"] == 12


def test_before_the_close_the_session_is_not_judged(closed_session, monkeypatch: pytest.MonkeyPatch) -> None:
    state, _ = closed_session
    monkeypatch.setenv("TRADING_DATA_NOW", "2026-11-25T15:00:00-05:00")
    evaluation = state.check()
    assert not evaluation.passed and evaluation.severity == dg.AssetCheckSeverity.WARN
    assert evaluation.description == "Not reconciled yet: the 2026-11-25 session closes at 16:00 ET."
    assert _meta(evaluation, "judged") is False
