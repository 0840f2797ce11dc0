"""The production topology (issue 5): a gRPC code server, a webserver and a daemon, on PostgreSQL storage.

What the test proves, step by step, through the deployed processes only:

1. A run launched through the webserver's GraphQL API (what "Materialize" in the UI does) is queued,
   dequeued by the daemon's run coordinator and executed by a run worker the code server starts: SUCCESS.
2. The daemon is SIGKILLed while it was the one running the scheduler. A schedule tick that fell due while
   no daemon ran (the ticker selection tick, 09:35 New York) is caught up by the restarted daemon: its
   ``RunRequest`` (run key ``<schedule>:<tick time>``) becomes one run, which succeeds.
3. The daemon is SIGKILLed again and the tick is put back in the state a crash between "run submitted"
   and "tick recorded" leaves (tick STARTED, no newer scheduler checkpoint). The restarted daemon resumes
   that tick and finds the run by its run key: no second run. Nothing was lost or doubled: each run is
   recorded once and the rows written for the session are unchanged.

Wall-clock ticks of the real schedules are never waited for: step 2 moves the schedule's stored start
back to just before the last tick that launches a run, as if the daemon had been down since then.

The daemon ticks on the real clock (``TRADING_DATA_NOW`` pins only the platform's domain clock), so what it
may run is pinned before it starts: every schedule and sensor but the ticker selection schedule is stored
STOPPED, and a real ticker selection tick never falls inside the test (it waits one out that is minutes away).
"""

from __future__ import annotations

import datetime as dt
import signal
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import psycopg
import pytest

from trading_data.scheduling import SCHEDULE_SPECS, TickDecision, decide_tick, run_key_for, to_new_york
from trading_data_tests.processes.conftest import IsolatedInstance
from trading_data_tests.processes.helpers import (
    BIN,
    LOCATION,
    REPOSITORY,
    SCHEDULE_NAMES,
    Process,
    graphql,
    pin_instigators,
    start_code_server,
    start_process,
    start_webserver,
    wait_for_location,
    wait_until,
)

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("processes")]

SESSION = "2026-11-25"
SYMBOLS = ["AAPL", "MSFT"]
SCHEDULE = "ticker_selection_schedule"
JOB = "selected_tickers_job"
# Scheduled runs carry no run config: the code server's environment (inherited by its run workers) keeps
# them light the same way the launchpad's `symbols` does.
PROCESS_ENV = {"TRADING_DATA_SYMBOLS": ",".join(SYMBOLS)}
RUN_TIMEOUT = 240
# A real ticker selection tick this close ahead is waited out before the daemon starts: longer than the test.
TEST_WINDOW = dt.timedelta(minutes=12)

LAUNCH_RUN = """
mutation LaunchRun($executionParams: ExecutionParams!) {
  launchRun(executionParams: $executionParams) {
    __typename
    ... on LaunchRunSuccess { run { runId status } }
    ... on PythonError { message stack }
    ... on RunConfigValidationInvalid { errors { message } }
    ... on InvalidSubsetError { message }
    ... on PipelineNotFoundError { message }
  }
}
"""


@dataclass
class Platform:
    instance_env: IsolatedInstance
    code_server: Process
    webserver: Process
    base_url: str
    workspace: str
    daemon: Process | None = None
    daemon_starts: int = 0

    def start_daemon(self) -> Process:
        self.daemon_starts += 1
        self.daemon = start_process(
            f"daemon-{self.daemon_starts}",
            [str(BIN / "dagster-daemon"), "run", "-w", self.workspace],
            self.instance_env.env,
            self.instance_env.logs,
        )
        return self.daemon

    def kill_daemon(self) -> None:
        """SIGKILL, as a crash or an OOM kill would: no shutdown code of the daemon runs."""
        assert self.daemon is not None and self.daemon.alive()
        self.daemon.kill_hard()
        assert self.daemon.popen.returncode == -signal.SIGKILL
        self.daemon.stop()  # reap whatever the killed process had started (its process group)

    def processes(self) -> tuple[Process, ...]:
        return tuple(p for p in (self.code_server, self.webserver, self.daemon) if p is not None)


@pytest.fixture(scope="module")
def platform(isolated_instance: IsolatedInstance) -> Iterator[Platform]:
    env, home = isolated_instance.env, isolated_instance.home
    code_server, workspace = start_code_server(env, home, isolated_instance.logs)
    started: list[Process] = [code_server]
    try:
        webserver, base = start_webserver(env, workspace, isolated_instance.logs)
        started.append(webserver)
        wait_for_location(base, webserver)
        plat = Platform(isolated_instance, code_server, webserver, base, str(workspace))
        yield plat
        if plat.daemon is not None:
            started.append(plat.daemon)
    finally:
        for proc in reversed(started):
            proc.stop()


@pytest.fixture(scope="module")
def instance(platform: Platform) -> Iterator[object]:
    """The same Dagster instance the processes use, opened in the test process."""
    from dagster import DagsterInstance

    with pytest.MonkeyPatch.context() as mp:
        for key in ("DAGSTER_HOME", "TRADING_DATA_DAGSTER_PG_URL"):
            mp.setenv(key, platform.instance_env.env[key])
        with DagsterInstance.get() as inst:
            yield inst


def _session_rows(url: str, session: str) -> list[tuple]:
    with psycopg.connect(url) as conn:
        return list(
            conn.execute(
                "SELECT session, ticker, is_active, is_fallback FROM market.selected_tickers "
                "WHERE session = %s ORDER BY ticker",
                (session,),
            )
        )


def _wait_for_run(instance, platform: Platform, run_id: str):  # type: ignore[no-untyped-def]
    from dagster import DagsterRunStatus

    def finished():  # type: ignore[no-untyped-def]
        run = instance.get_run_by_id(run_id)
        return (
            run
            if run
            and run.status in (DagsterRunStatus.SUCCESS, DagsterRunStatus.FAILURE, DagsterRunStatus.CANCELED)
            else None
        )

    run = wait_until(
        finished, RUN_TIMEOUT, f"run {run_id} to finish", interval=1.0, processes=platform.processes()
    )
    assert run.status == DagsterRunStatus.SUCCESS, _run_failure(instance, run_id)
    return run


def _run_failure(instance, run_id: str) -> str:  # type: ignore[no-untyped-def]
    errors = [
        str(e.dagster_event.event_specific_data)[:1500]
        for e in instance.all_logs(run_id)
        if e.dagster_event and e.dagster_event.is_failure
    ]
    return f"run {run_id} did not succeed: {errors}"


def _event_types(instance, run_id: str) -> list[str]:  # type: ignore[no-untyped-def]
    return [e.dagster_event.event_type_value for e in instance.all_logs(run_id) if e.dagster_event]


def _daemon_now() -> dt.datetime:
    """The daemon's clock: Dagster evaluates schedules at real cron times, whatever TRADING_DATA_NOW says."""
    from dagster._time import get_current_datetime

    return get_current_datetime()


def _last_running_tick(cron: str, now: dt.datetime) -> tuple[dt.datetime, TickDecision]:
    """The latest tick of the schedule at or before ``now`` that launches a run (holidays and weekends skip)."""
    from dagster._utils.schedules import reverse_cron_string_iterator

    for tick in reverse_cron_string_iterator(now.timestamp(), cron, "America/New_York"):
        decision = decide_tick(SCHEDULE, to_new_york(tick), "fixed")
        if decision.should_run:
            return to_new_york(tick), decision
    raise AssertionError(f"{SCHEDULE} ({cron}) has no tick that runs")


def _wait_out_a_real_tick(cron: str) -> None:
    """If a real tick that launches a run falls within the test's window, let it pass before the daemon starts.

    Such a tick (09:35 on a session day) would add a run of its own to the "exactly these runs" count.
    """
    from dagster._utils.schedules import cron_string_iterator

    now = _daemon_now()
    for tick in cron_string_iterator(now.timestamp(), cron, "America/New_York"):
        if tick - now > TEST_WINDOW:
            return
        if decide_tick(SCHEDULE, to_new_york(tick), "fixed").should_run:
            time.sleep((tick - _daemon_now()).total_seconds() + 5)
            return


def _schedule_state(instance):  # type: ignore[no-untyped-def]
    from dagster._core.scheduler.instigation import InstigatorType

    states = [
        s
        for s in instance.all_instigator_state(instigator_type=InstigatorType.SCHEDULE)
        if s.instigator_name == SCHEDULE
    ]
    return states[0] if states else None


def _rewind_schedule(instance, start: dt.datetime) -> None:  # type: ignore[no-untyped-def]
    """Store the schedule's state as if the scheduler had last run just before ``start``."""
    from dagster._core.scheduler.instigation import ScheduleInstigatorData

    state = _schedule_state(instance)
    data = state.instigator_data
    instance.update_instigator_state(
        state.with_data(
            ScheduleInstigatorData(
                data.cron_schedule, start_timestamp=start.timestamp(), last_iteration_timestamp=None
            )
        )
    )


def test_runs_survive_daemon_kill_without_loss_or_duplicates(platform: Platform, instance) -> None:  # type: ignore[no-untyped-def]
    from dagster import DagsterRunStatus, RunsFilter
    from dagster._core.scheduler.instigation import TickStatus
    from dagster._core.storage.tags import PARTITION_NAME_TAG, RUN_KEY_TAG, SCHEDULE_NAME_TAG

    market_url = platform.instance_env.market_url
    with psycopg.connect(market_url, autocommit=True) as conn:
        conn.execute("DELETE FROM market.selected_tickers WHERE session = %s", (SESSION,))

    # Only the schedule under test may run: every other schedule and sensor is stored STOPPED.
    stopped = pin_instigators(instance, platform.workspace, running={SCHEDULE})
    assert SCHEDULE_NAMES - {SCHEDULE} <= stopped
    assert "full_pipeline_schedule" in stopped
    cron = next(spec.cron for spec in SCHEDULE_SPECS if spec.name == SCHEDULE)
    _wait_out_a_real_tick(cron)

    daemon = platform.start_daemon()
    for proc in platform.processes():
        proc.assert_isolated()
    # The daemon's scheduler stores a state for every schedule that is running by default.
    wait_until(
        lambda: _schedule_state(instance),
        120,
        "the daemon to register the schedules",
        processes=platform.processes(),
    )
    assert _schedule_state(instance).instigator_data.cron_schedule == cron

    # 1. UI/GraphQL launch -> queued -> dequeued by the daemon -> run worker from the code server.
    token = uuid.uuid4().hex
    result = graphql(
        platform.base_url,
        LAUNCH_RUN,
        {
            "executionParams": {
                "selector": {
                    "repositoryLocationName": LOCATION,
                    "repositoryName": REPOSITORY,
                    "jobName": JOB,
                },
                "runConfigData": {"resources": {"settings": {"config": {"symbols": SYMBOLS}}}},
                "executionMetadata": {
                    "tags": [
                        {"key": PARTITION_NAME_TAG, "value": SESSION},
                        {"key": "trading_data/test_launch", "value": token},
                    ]
                },
            }
        },
    )["launchRun"]
    assert result["__typename"] == "LaunchRunSuccess", result
    launched_id = result["run"]["runId"]
    assert result["run"]["status"] in ("QUEUED", "NOT_STARTED", "STARTING", "STARTED")
    _wait_for_run(instance, platform, launched_id)
    events = _event_types(instance, launched_id)
    # ENQUEUED: the webserver only queued it; STARTING: the daemon's run coordinator launched it.
    for expected in (
        "PIPELINE_ENQUEUED",
        "PIPELINE_STARTING",
        "PIPELINE_START",
        "ASSET_MATERIALIZATION",
        "PIPELINE_SUCCESS",
    ):
        assert expected in events, f"{expected} missing from {events}"
    assert events.index("PIPELINE_ENQUEUED") < events.index("PIPELINE_STARTING")
    assert "QueuedRunCoordinatorDaemon - " in daemon.log(10_000_000)
    assert "Launched 1 runs" in daemon.log(10_000_000)
    rows = _session_rows(market_url, SESSION)
    assert [r[1] for r in rows] == SYMBOLS

    # 2. Crash the daemon; a tick falls due while it is down; the restarted daemon catches it up.
    platform.kill_daemon()
    tick, decision = _last_running_tick(cron, _daemon_now())
    run_key = run_key_for(SCHEDULE, tick)
    assert decision.run_key == run_key
    _rewind_schedule(instance, tick - dt.timedelta(minutes=1))
    platform.start_daemon()

    by_key = RunsFilter(tags={SCHEDULE_NAME_TAG: SCHEDULE, RUN_KEY_TAG: run_key})
    scheduled = wait_until(
        lambda: instance.get_runs(by_key),
        180,
        f"the {SCHEDULE} run for {run_key}",
        interval=1.0,
        processes=platform.processes(),
    )
    assert len(scheduled) == 1
    scheduled_run = _wait_for_run(instance, platform, scheduled[0].run_id)
    assert scheduled_run.tags[PARTITION_NAME_TAG] == decision.partition_key
    assert scheduled_run.tags["trading_data/session"] == decision.partition_key
    scheduled_events = _event_types(instance, scheduled_run.run_id)
    assert scheduled_events.index("PIPELINE_ENQUEUED") < scheduled_events.index("PIPELINE_STARTING")
    scheduled_rows = _session_rows(market_url, decision.partition_key or "")
    assert [r[1] for r in scheduled_rows] == SYMBOLS

    origin_id, selector_id = (
        _schedule_state(instance).instigator_origin_id,
        _schedule_state(instance).selector_id,
    )

    def tick_done():  # type: ignore[no-untyped-def]
        # Ticks after it (a holiday's) are SKIPPED ones: look the tick up by its time.
        ticks = instance.get_ticks(
            origin_id, selector_id, after=tick.timestamp() - 1, before=tick.timestamp() + 1
        )
        return ticks[0] if ticks and ticks[0].status == TickStatus.SUCCESS else None

    recorded = wait_until(tick_done, 60, "the tick to be recorded", processes=platform.processes())
    assert recorded.timestamp == tick.timestamp()
    assert recorded.run_ids == [scheduled_run.run_id]

    # 3. Crash again, leaving the tick as a crash after "run submitted" leaves it; the restart resumes it.
    platform.kill_daemon()
    instance.update_tick(recorded.with_status(TickStatus.STARTED))
    # A crash right after "run submitted" leaves no later tick: drop the skipped ones evaluated after it.
    instance.purge_ticks(
        origin_id, selector_id, before=_daemon_now().timestamp(), tick_statuses=[TickStatus.SKIPPED]
    )
    _rewind_schedule(instance, tick - dt.timedelta(minutes=1))
    platform.start_daemon()

    def tick_resumed():  # type: ignore[no-untyped-def]
        current = instance.get_ticks(
            origin_id, selector_id, after=tick.timestamp() - 1, before=tick.timestamp() + 1
        )[0]
        return (
            current if current.status == TickStatus.SUCCESS and current.tick_id == recorded.tick_id else None
        )

    resumed = wait_until(
        tick_resumed, 120, "the restarted daemon to resume the tick", processes=platform.processes()
    )
    assert resumed.run_ids == [scheduled_run.run_id]
    assert "Resuming previously interrupted schedule execution" in platform.daemon.log(200_000)  # type: ignore[union-attr]

    # Nothing lost, nothing doubled.
    assert [r.run_id for r in instance.get_runs(by_key)] == [scheduled_run.run_id]
    launched = instance.get_runs(RunsFilter(tags={"trading_data/test_launch": token}))
    assert [r.run_id for r in launched] == [launched_id]
    all_runs = instance.get_runs()
    assert sorted(r.run_id for r in all_runs) == sorted([launched_id, scheduled_run.run_id])
    assert {r.status for r in all_runs} == {DagsterRunStatus.SUCCESS}
    assert _session_rows(market_url, SESSION) == rows
    assert _session_rows(market_url, decision.partition_key or "") == scheduled_rows
    assert daemon.popen.returncode == -signal.SIGKILL
    for proc in platform.processes():
        proc.assert_isolated()
