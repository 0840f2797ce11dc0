"""A late start never loses the day: feed ticks fill the session's missing selection first, and a feed
whose selection is missing fails naming it instead of "succeeding" with zero tickers.

Against a real PostgreSQL server and the simulator over loopback HTTP, with the platform's clock
pinned (TRADING_DATA_NOW) to the moments of the scenario.
"""

from __future__ import annotations

import datetime as dt

import dagster as dg
import psycopg
import pytest

from trading_data.definitions import ASSETS
from trading_data.orchestration.schedules import JOBS, SCHEDULES
from trading_data.scheduling import SPECS_BY_NAME, TAG_CATCH_UP, TAG_SELECTION, plan_catch_up
from trading_data.sources.simulator.server import SimulatorServer
from trading_data_tests.factories import (
    execute_run_request,
    materialize_session,
    simulator_resources,
    small_tickers,
)

NY = dt.timezone(dt.timedelta(hours=-5))  # EST in December
SESSION = "2026-12-01"


# --- the decision, without Dagster -------------------------------------------------------------------


def test_a_feed_tick_adds_the_missing_selection_before_its_feed() -> None:
    spec = SPECS_BY_NAME["quotes_schedule"]
    plan = plan_catch_up(spec, SESSION, materialized=set(), in_flight={})
    assert plan.assets == ("selected_tickers", "position_sizes", "quotes")
    assert plan.wait_for_selection and plan.skip_reason is None


def test_a_feed_tick_with_the_selection_present_selects_only_its_feed() -> None:
    spec = SPECS_BY_NAME["trades_schedule"]
    plan = plan_catch_up(spec, SESSION, {"selected_tickers", "position_sizes"}, {})
    assert plan.assets == ("trades",) and not plan.wait_for_selection


def test_a_selection_already_under_way_is_waited_for_not_run_again() -> None:
    spec = SPECS_BY_NAME["prices_schedule"]
    plan = plan_catch_up(spec, SESSION, set(), {"selected_tickers": "run-1", "position_sizes": "run-1"})
    assert plan.assets == ("prices", "bar_aggregates", "indicators") and plan.wait_for_selection


def test_missed_selection_tick_skips_when_a_catch_up_run_is_materializing_it() -> None:
    spec = SPECS_BY_NAME["ticker_selection_schedule"]
    plan = plan_catch_up(spec, SESSION, set(), {"selected_tickers": "run-7"})
    assert plan.skip_reason is not None and "run-7" in plan.skip_reason


def test_sizing_tick_catches_up_the_selection_only() -> None:
    spec = SPECS_BY_NAME["position_sizing_schedule"]
    assert plan_catch_up(spec, SESSION, set(), {}).assets == ("selected_tickers", "position_sizes")


# --- end to end ----------------------------------------------------------------------------------------


def _definitions(url: str, sim_url: str, tickers: list[str]) -> dg.Definitions:
    return dg.Definitions(
        assets=ASSETS,
        jobs=JOBS,
        schedules=SCHEDULES,
        resources=simulator_resources(url, sim_url, tickers=tickers),
    )


def _tick(defs: dg.Definitions, instance: dg.DagsterInstance, name: str, tick: dt.datetime) -> dg.RunRequest:
    context = dg.build_schedule_context(
        instance=instance, scheduled_execution_time=tick, repository_def=defs.get_repository_def()
    )
    [request] = list(defs.get_schedule_def(name).evaluate_tick(context).run_requests or [])
    return request


def _quotes_by_ticker(url: str) -> dict[str, int]:
    with psycopg.connect(url) as conn:
        return dict(conn.execute("SELECT ticker, count(*) FROM market.quotes GROUP BY ticker").fetchall())


@pytest.mark.slow
@pytest.mark.xdist_group("end_to_end")
def test_a_late_start_collects_from_the_first_tick(
    clean_market: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`make dev` at 14:09 ET on a session day: the 14:15 quotes tick selects the day's tickers, sizes them
    and collects their quotes in one run; the 14:30 tick is a plain quotes run."""
    tickers = small_tickers(2)
    monkeypatch.setenv("TRADING_DATA_NOW", "2026-12-01T14:15:20-05:00")
    with SimulatorServer() as sim, dg.instance_for_test() as instance:
        defs = _definitions(clean_market, sim.base_url, tickers)
        request = _tick(defs, instance, "quotes_schedule", dt.datetime(2026, 12, 1, 14, 15, tzinfo=NY))
        assert [k.to_user_string() for k in request.asset_selection or []] == [
            "selected_tickers",
            "position_sizes",
            "quotes",
        ]
        assert request.tags[TAG_CATCH_UP] == "selected_tickers,position_sizes"
        assert request.tags[TAG_SELECTION] == SESSION
        result = execute_run_request(defs, "quotes_job", instance, request)
        assert result.success
        collected = _quotes_by_ticker(clean_market)
        print(f"first tick after a 14:09 start collected {collected}")
        assert set(collected) == set(tickers) and all(n > 0 for n in collected.values())

        monkeypatch.setenv("TRADING_DATA_NOW", "2026-12-01T14:30:20-05:00")
        later = _tick(defs, instance, "quotes_schedule", dt.datetime(2026, 12, 1, 14, 30, tzinfo=NY))
        assert [k.to_user_string() for k in later.asset_selection or []] == ["quotes"]
        assert TAG_CATCH_UP not in later.tags and TAG_SELECTION not in later.tags


@pytest.mark.slow
@pytest.mark.xdist_group("end_to_end")
def test_a_feed_without_its_selection_fails_naming_it_without_retrying(
    clean_market: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TRADING_DATA_NOW", "2026-12-01T14:15:20-05:00")
    with SimulatorServer() as sim, dg.instance_for_test() as instance:
        result = materialize_session(clean_market, sim.base_url, SESSION, ["quotes"], instance=instance)
    assert not result.success
    failure = result.failure_data_for_node("quotes")
    assert failure is not None
    message = str(failure.error)
    assert "selected_tickers has no materialization for session 2026-12-01" in message
    assert "--select selected_tickers --partition 2026-12-01" in message
    retries = [e for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_UP_FOR_RETRY]
    assert retries == []


@pytest.mark.slow
@pytest.mark.xdist_group("end_to_end")
def test_a_selection_with_no_active_ticker_is_said_so(
    clean_market: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TRADING_DATA_NOW", "2026-12-01T14:15:20-05:00")
    with SimulatorServer() as sim, dg.instance_for_test() as instance:
        tickers = small_tickers(2)
        assert materialize_session(
            clean_market, sim.base_url, SESSION, ["selected_tickers"], tickers=tickers, instance=instance
        ).success
        with psycopg.connect(clean_market, autocommit=True) as conn:
            conn.execute("UPDATE market.selected_tickers SET is_active = false")
        result = materialize_session(clean_market, sim.base_url, SESSION, ["quotes"], instance=instance)
    assert result.success
    metadata = result.asset_materializations_for_node("quotes")[0].metadata
    assert "marks no ticker active" in metadata["no_active_tickers"].value
    assert metadata["dagster/row_count"].value == 0
