"""A backfill run of several sessions (BackfillPolicy.multi_run) stores what one run per session stores:
every asset and check does, for each session of the run's range, what a one-session run does. Against a
real PostgreSQL server and the simulator over loopback HTTP, with the clock pinned after the range."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time

import dagster as dg
import psycopg
import pytest
from dagster._core.execution.backfill import BulkActionStatus

from trading_data.backfill.plan import ASSETS as ASSET_NAMES
from trading_data.backfill.plan import BackfillPlan, PlanInputs, plan_backfill
from trading_data.backfill.run import backfill_runs, launch
from trading_data.calendar import NEW_YORK
from trading_data.definitions import ASSET_CHECKS, ASSETS
from trading_data.partitions import session_partitions
from trading_data.scheduling import PIPELINE_ASSETS
from trading_data.sources.simulator.server import SimulatorServer
from trading_data_tests.factories import simulator_resources, small_tickers, truncate_market
from trading_data_tests.faults.support import snapshot
from trading_data_tests.rewriting_proxy import RewritingProxy

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("end_to_end")]

NOW = dt.datetime(2026, 12, 1, 18, tzinfo=NEW_YORK)
RANGE_START, RANGE_END = "dagster/asset_partition_range_start", "dagster/asset_partition_range_end"


def _run(url: str, sim_url: str, tickers: list[str], **partitions: object) -> dg.ExecuteInProcessResult:
    """One run of the whole pipeline and its checks, for one partition or a range (``tags``)."""
    return dg.materialize(
        [*ASSETS, *ASSET_CHECKS],
        resources=simulator_resources(url, sim_url, tickers=tickers),
        selection=[*PIPELINE_ASSETS],
        raise_on_error=False,
        **partitions,  # type: ignore[arg-type]
    )


@pytest.fixture
def pinned(monkeypatch: pytest.MonkeyPatch) -> dt.datetime:
    monkeypatch.setenv("TRADING_DATA_NOW", NOW.isoformat())
    return NOW


@pytest.mark.parametrize(
    ("first", "last", "sessions"),
    [
        # Thanksgiving (11-26) is no session, 11-27 closes at 13:00.
        ("2026-11-24", "2026-11-27", ["2026-11-24", "2026-11-25", "2026-11-27"]),
        # Daylight saving time ends on Sunday 2026-11-01: New York midnight is 04:00 UTC before, 05:00 after.
        ("2026-10-30", "2026-11-03", ["2026-10-30", "2026-11-02", "2026-11-03"]),
    ],
)
def test_one_run_of_a_range_stores_what_one_run_per_session_stores(
    clean_market: str, pinned: dt.datetime, first: str, last: str, sessions: list[str]
) -> None:
    assert session_partitions.get_partition_keys_in_range(dg.PartitionKeyRange(first, last)) == sessions
    tickers = small_tickers(2)
    with SimulatorServer(now=lambda: NOW) as sim:
        for key in sessions:
            assert _run(clean_market, sim.base_url, tickers, partition_key=key).success
        one_per_session = snapshot(clean_market)
        truncate_market(clean_market)
        batched = _run(clean_market, sim.base_url, tickers, tags={RANGE_START: first, RANGE_END: last})
        assert batched.success
        assert snapshot(clean_market) == one_per_session
        # Again: the range's window is replaced, nothing doubles.
        assert _run(clean_market, sim.base_url, tickers, tags={RANGE_START: first, RANGE_END: last}).success
    assert snapshot(clean_market) == one_per_session
    for table in PIPELINE_ASSETS:
        assert one_per_session[table][0] > 0, f"{table} is empty"

    # Each session's materialization carries its own figures, e.g. the rows its window holds.
    with psycopg.connect(clean_market) as conn:
        rows = dict(
            conn.execute(
                "SELECT ((ts AT TIME ZONE 'America/New_York')::date)::text, count(*) FROM market.quotes "
                "GROUP BY 1"
            ).fetchall()
        )
    materializations = batched.asset_materializations_for_node("quotes")
    assert sorted(m.partition for m in materializations) == sessions
    for m in materializations:
        assert m.metadata["dagster/row_count"].value == rows[m.partition]
        assert m.metadata["rows_by_session"].value == rows
    selections = {
        m.partition: m.metadata["active_tickers"].value
        for m in batched.asset_materializations_for_node("selected_tickers")
    }
    assert {key: set(active) for key, active in selections.items()} == {key: set(tickers) for key in sessions}
    evaluations = [
        e.asset_check_evaluation_data
        for e in batched.all_events
        if e.event_type_value == "ASSET_CHECK_EVALUATION"
        and e.asset_check_evaluation_data.check_name == "prices_covers_active_tickers"
    ]
    assert sorted(e.partition for e in evaluations) == sessions and all(e.passed for e in evaluations)


def _drop_bars_of(ticker: str, day: str):  # type: ignore[no-untyped-def]
    """A proxy rewrite: ``ticker``'s minute and daily bars of session ``day`` come back empty."""

    def rewrite(path: str, query: dict[str, str], payload: dict) -> dict:  # type: ignore[type-arg]
        parts = path.split("/")
        if not path.startswith(f"/v2/aggs/ticker/{ticker}/range/") or len(parts) < 2:
            return payload
        start = parts[-2]
        start_day = (
            dt.datetime.fromtimestamp(int(start) / 1000, NEW_YORK).date().isoformat()
            if start.isdigit()
            else start
        )
        if start_day == day:
            payload.pop("results", None)
            payload["resultsCount"] = 0
        return payload

    return rewrite


def test_a_check_failing_in_the_middle_session_is_reported_for_that_session(
    clean_market: str, pinned: dt.datetime
) -> None:
    tickers = small_tickers(2)
    middle = "2026-11-25"
    with (
        SimulatorServer(now=lambda: NOW) as sim,
        RewritingProxy(sim.base_url, _drop_bars_of(tickers[0], middle)) as proxy,
    ):
        result = dg.materialize(
            [*ASSETS, *ASSET_CHECKS],
            resources=simulator_resources(clean_market, proxy.base_url, tickers=tickers),
            selection=["selected_tickers", "prices"],
            raise_on_error=False,
            tags={RANGE_START: "2026-11-24", RANGE_END: "2026-11-27"},
        )
    evaluations = {
        e.asset_check_evaluation_data.partition: e.asset_check_evaluation_data
        for e in result.all_events
        if e.event_type_value == "ASSET_CHECK_EVALUATION"
        and e.asset_check_evaluation_data.check_name == "prices_covers_active_tickers"
    }
    assert {k: e.passed for k, e in evaluations.items()} == {
        "2026-11-24": True,
        middle: False,
        "2026-11-27": True,
    }
    failed = evaluations[middle]
    assert failed.description is not None and failed.description.startswith(middle)
    assert failed.metadata["missing_tickers"].value == [tickers[0]]
    # The check is blocking: the run fails, after the prices of all three sessions were stored.
    assert not result.success
    with psycopg.connect(clean_market) as conn:
        stored = conn.execute(
            "SELECT count(DISTINCT (ts AT TIME ZONE 'America/New_York')::date) FROM market.prices"
        ).fetchone()
    assert stored == (3,)


def _runs_dagster_launches(plan: BackfillPlan) -> int:
    """Dagster's own asset backfill iterations (the daemon's, called in-process on a test instance whose
    queued runs never start): after each iteration its runs are recorded as done, with a materialization
    of every asset and session they target, until the backfill launches no more."""
    from dagster._core.events import DagsterEvent, DagsterEventType, StepMaterializationData
    from dagster._core.events.log import EventLogEntry
    from dagster._core.execution.asset_backfill import execute_asset_backfill_iteration
    from dagster._core.test_utils import create_test_daemon_workspace_context
    from dagster._core.workspace.load_target import ModuleTarget

    queued = {"run_coordinator": {"module": "dagster._core.run_coordinator", "class": "QueuedRunCoordinator"}}
    target = ModuleTarget("trading_data.definitions", "defs", ".", "trading_data")
    with (
        dg.instance_for_test(overrides=queued) as instance,
        create_test_daemon_workspace_context(target, instance) as workspace,
    ):
        backfill_id = launch(plan, instance=instance)

        def record(run: dg.DagsterRun, event_type: DagsterEventType, data: object = None) -> None:
            event = DagsterEvent(event_type.value, job_name=run.job_name, event_specific_data=data)
            entry = EventLogEntry(None, 20, "", run.run_id, time.time(), dagster_event=event)
            instance.handle_new_event(entry)

        launched: set[str] = set()
        while True:
            backfill = instance.get_backfill(backfill_id)
            assert backfill is not None
            if backfill.status != BulkActionStatus.REQUESTED:
                return len(launched)
            asyncio.run(execute_asset_backfill_iteration(backfill, logging.getLogger(), workspace, instance))
            for run in instance.get_runs():
                if run.run_id in launched:
                    continue
                launched.add(run.run_id)
                tags = run.tags
                keys = session_partitions.get_partition_keys_in_range(
                    dg.PartitionKeyRange(tags[RANGE_START], tags[RANGE_END])
                )
                for asset in run.asset_selection or ():
                    for key in keys:
                        materialized = StepMaterializationData(dg.AssetMaterialization(asset, partition=key))
                        record(run, DagsterEventType.ASSET_MATERIALIZATION, materialized)
                record(run, DagsterEventType.RUN_START)
                record(run, DagsterEventType.RUN_SUCCESS)


@pytest.mark.parametrize(
    ("first", "last", "assets", "runs"),
    [
        # The whole pipeline in one run, bar_aggregates (single-run policy) in a second.
        ("2026-11-24", "2026-11-27", ASSET_NAMES, 2),
        # 41 sessions: 3 runs of the feeds and selection, then 3 of indicators + daily_report (indicators
        # reads the session before each of its own, so it joins prices' runs only when one run holds the
        # whole range), and bar_aggregates.
        ("2026-10-01", "2026-11-27", ASSET_NAMES, 7),
        ("2026-10-01", "2026-11-27", ("selected_tickers", "prices"), 3),
    ],
)
def test_the_plan_counts_the_runs_dagster_launches(
    first: str, last: str, assets: tuple[str, ...], runs: int
) -> None:
    plan = plan_backfill(
        dt.date.fromisoformat(first), dt.date.fromisoformat(last), PlanInputs(), assets, today=NOW.date()
    )
    assert backfill_runs(plan) == runs
    assert _runs_dagster_launches(plan) == runs


def test_strict_validation_failing_in_one_session_keeps_that_sessions_rows_only(
    clean_market: str, pinned: dt.datetime
) -> None:
    """A ticker whose quotes fail validation in the middle session keeps its stored rows of that session;
    its other sessions are replaced as usual, and the step fails naming the session and the ticker."""
    tickers = small_tickers(2)
    broken, middle = tickers[1], "2026-11-25"

    def rewrite(path: str, query: dict[str, str], payload: dict) -> dict:  # type: ignore[type-arg]
        rows = payload.get("results") or []
        if path == f"/v3/quotes/{broken}" and rows:
            day = dt.datetime.fromtimestamp(rows[0]["sip_timestamp"] / 1e9, NEW_YORK).date().isoformat()
            if day == middle:
                rows[0]["bid_price"] = -1.0
        return payload

    def run(url: str, strict: bool) -> dg.ExecuteInProcessResult:
        return dg.materialize(
            ASSETS,
            resources=simulator_resources(clean_market, url, tickers=tickers, strict=strict),
            selection=["selected_tickers", "quotes"],
            raise_on_error=False,
            tags={RANGE_START: "2026-11-24", RANGE_END: "2026-11-27"},
        )

    with SimulatorServer(now=lambda: NOW) as sim, RewritingProxy(sim.base_url, rewrite) as proxy:
        assert run(sim.base_url, strict=False).success
        stored = snapshot(clean_market)
        result = run(proxy.base_url, strict=True)
    assert not result.success
    failure = result.failure_data_for_node("quotes")
    assert failure is not None
    message = str(failure.error)
    assert f"quotes {middle}" in message and broken in message and "bid_price" in message
    # Every session of both tickers as before: the middle one kept, the others replaced by the same rows.
    assert snapshot(clean_market) == stored
    with psycopg.connect(clean_market) as conn:
        sessions = conn.execute(
            "SELECT count(DISTINCT (ts AT TIME ZONE 'America/New_York')::date) FROM market.quotes WHERE ticker = %s",
            (broken,),
        ).fetchone()
    assert sessions == (3,)
