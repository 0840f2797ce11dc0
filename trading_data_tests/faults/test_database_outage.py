"""A database outage mid-run leaves nothing stuck (issue 9, point 7), with the deployed processes.

A gRPC code server and a daemon run on the suite's private PostgreSQL server (``make test-destructive``),
which holds both the market tables and Dagster's own storage. Two runs calling Polygon (``quotes_job`` and
``trades_job``, the simulator slowed so they are mid-run) hold both slots of the ``polygon`` pool when the
server is stopped (``trading-data db stop``) and started again. The platform must then recover on its
own, within a bounded wait: no run stays STARTED, the pool's slots are free, and a following polygon step
runs. Only the two jobs under test may run: every schedule and sensor is stored STOPPED first.

What happens (Dagster 1.13, default run launcher), and the levers in dagster.yaml's ``run_monitoring``:

- a run worker that survives the outage fails its run once the server is back if the outage caught it
  touching the database (else the run may even succeed), but its step processes die without releasing
  their pool slots (observed: both slots claimed for good) —
  ``free_slots_after_run_end_seconds`` frees the slots of ended runs;
- a run worker that dies while the server is down: the default launcher has no worker health check, so
  only the code server's orphan check (its ``grpc-server-cleanup`` thread) notices. That thread used to die
  on the storage error ("Exception in thread grpc-server-cleanup ... too many retries for DB connection"),
  leaving the run STARTED and in the server's executions; ``max_runtime_seconds`` (or the run's
  ``dagster/max_runtime`` tag, used here) then terminated it, and that terminate wedged the code server:
  CancelExecution sets the dead worker's multiprocessing.Event while holding the server's execution lock,
  and multiprocessing.Condition.notify waits forever for a waiter that was SIGKILLed. Every later StartRun
  blocked on the lock and timed out ("Unexpected error in IPC client"). ``trading_data.db.dagster_storage``
  makes that thread wait for the database instead (``ORPHAN_CHECK_THREAD``), so the orphan check fails the
  run itself, and the code server still starts the following run.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from trading_data.db import server as pg_server
from trading_data.sources.simulator.faults import Fault
from trading_data.sources.simulator.market import SimulatedMarket
from trading_data.sources.simulator.server import SimulatorServer
from trading_data_tests.faults import support
from trading_data_tests.processes.helpers import (
    BIN,
    LOCATION,
    Process,
    drop_database,
    fresh_database,
    isolated_environment,
    pin_instigators,
    start_code_server,
    start_process,
    wait_until,
)

DESTRUCTIVE = os.environ.get("TRADING_DATA_DESTRUCTIVE_TESTS") == "1"
pytestmark = [
    pytest.mark.slow,
    pytest.mark.clock,
    pytest.mark.xdist_group("faults"),
    pytest.mark.skipif(not DESTRUCTIVE, reason="stops the PostgreSQL server: make test-destructive runs it"),
]
SESSION = support.SESSION
POOL = "polygon"
POOL_SLOTS = 2
JOBS = ("quotes_job", "trades_job")
# How long the server stays down: long enough for every process to see it gone.
OUTAGE_SECONDS = 15
# The platform's own recovery must finish within this (run monitoring polls, then frees the slots).
RECOVERY_TIMEOUT = 300
# The runs under test carry dagster/max_runtime (the per-run form of run_monitoring.max_runtime_seconds,
# which is hours: above the longest backfill), so a run whose worker died is failed within the test.
MAX_RUNTIME_SECONDS = 120
RUN_TIMEOUT = 240


@dataclass
class Deployment:
    home: Path
    env: dict[str, str]
    workspace: Path
    logs: Path
    code_server: Process
    daemon: Process
    instance: object

    def processes(self) -> tuple[Process, ...]:
        return (self.code_server, self.daemon)


@pytest.fixture(scope="module")
def sim() -> Iterator[tuple[SimulatorServer, list[str]]]:
    market = SimulatedMarket()
    profiles = sorted((p for p in market.universe() if p.avg_volume >= 300_000), key=lambda p: p.avg_volume)
    tickers = sorted(p.ticker for p in profiles[:2])
    with SimulatorServer(market) as server:
        yield server, tickers


@pytest.fixture(scope="module")
def deployment(
    server_url: str,
    database_url: str,
    worker_id: str,
    tmp_path_factory: pytest.TempPathFactory,
    sim: tuple[SimulatorServer, list[str]],
) -> Iterator[Deployment]:
    """Code server + daemon on a Dagster storage database of their own, with nothing scheduled."""
    from dagster import DagsterInstance

    name = f"dagster_test_outage_{os.environ.get('TRADING_DATA_TEST_RUN', '')}{worker_id}"
    dagster_url = fresh_database(server_url, name)
    root = tmp_path_factory.mktemp("outage")
    home, logs = root / "dagster_home", root / "logs"
    server, _ = sim
    env = isolated_environment(
        home, database_url, dagster_url, {"TRADING_DATA_SIMULATOR_URL": server.base_url}
    )
    code_server, workspace = start_code_server(env, home, logs)
    started = [code_server]
    try:
        with pytest.MonkeyPatch.context() as mp:
            for key in ("DAGSTER_HOME", "TRADING_DATA_DAGSTER_PG_URL"):
                mp.setenv(key, env[key])
            with DagsterInstance.get() as instance:
                wait_until(
                    lambda: _loads(instance, workspace), 180, "the code server", processes=(code_server,)
                )
                pin_instigators(instance, workspace, running=())
                instance.event_log_storage.set_concurrency_slots(POOL, POOL_SLOTS)
                daemon = start_process(
                    "daemon", [str(BIN / "dagster-daemon"), "run", "-w", str(workspace)], env, logs
                )
                started.append(daemon)
                yield Deployment(home, env, workspace, logs, code_server, daemon, instance)
    finally:
        for proc in reversed(started):
            proc.stop()
        if pg_server.status().running:
            drop_database(server_url, name)


def _loads(instance: object, workspace: Path) -> bool:
    from dagster._core.workspace.context import WorkspaceProcessContext
    from dagster._core.workspace.load_target import WorkspaceFileTarget

    with WorkspaceProcessContext(instance, WorkspaceFileTarget([str(workspace)])) as context:  # type: ignore[arg-type]
        return bool(context.create_request_context().code_locations)


def _launch(deployment: Deployment, job: str, **tags: str) -> str:
    """Launch ``job`` for the session as the CLI does: queued, then started by the daemon."""
    run_id = str(uuid.uuid4())
    done = subprocess.run(
        [
            str(BIN / "dagster"),
            "job",
            "launch",
            "-w",
            str(deployment.workspace),
            "-l",
            LOCATION,
            "-j",
            job,
            "--tags",
            json.dumps({"dagster/partition": SESSION, **tags}),
            "--run-id",
            run_id,
        ],
        env=deployment.env,
        cwd=deployment.logs.parent,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return run_id


def _worker_pids(instance, run_id: str) -> list[int]:  # type: ignore[no-untyped-def]
    """The run worker's pid (from its engine event) and its step processes'."""
    import re

    pids = [
        int(m.group(1))
        for e in instance.all_logs(run_id)
        if e.dagster_event and (m := re.search(r"pid: (\d+)", e.message or ""))
    ]
    worker = pids[0]
    children = [int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit() and _ppid(p) == worker]
    return [worker, *children]


def _ppid(proc: Path) -> int | None:
    try:
        return int((proc / "stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return None


def _status(instance, run_id: str):  # type: ignore[no-untyped-def]
    run = instance.get_run_by_id(run_id)
    return run.status if run else None


def test_the_instance_config_frees_what_an_outage_leaves(deployment: Deployment) -> None:
    """The project's dagster.yaml (copied into the deployment) sets the levers the recovery relies on."""
    instance = deployment.instance
    assert instance.run_monitoring_enabled  # type: ignore[attr-defined]
    settings = instance.run_monitoring_settings  # type: ignore[attr-defined]
    assert settings["free_slots_after_run_end_seconds"] > 0
    assert instance.run_monitoring_max_runtime_seconds > 0  # type: ignore[attr-defined]


def test_database_outage_mid_run_leaves_no_run_started_and_frees_the_pool(
    deployment: Deployment, database_url: str, sim: tuple[SimulatorServer, list[str]], record_property
) -> None:
    from dagster import DagsterRunStatus
    from dagster._core.storage.dagster_run import IN_PROGRESS_RUN_STATUSES, RunsFilter
    from dagster._core.storage.tags import MAX_RETRIES_TAG, MAX_RUNTIME_SECONDS_TAG

    server, tickers = sim
    instance = deployment.instance
    result = support.materialize(database_url, server.base_url, tickers, ["selected_tickers"])
    assert result.success, support.failure_text(result)
    # Slow pages: both runs are mid-run, each holding a polygon slot, when the server stops.
    server.faults.replace([Fault("latency", path_prefix="/v3/", count=None, seconds=3)])
    # Not retried (dagster.yaml retries crashed runs): a retry inherits the short max_runtime tag, so once the
    # code server starts runs again, a chain of cut-short retries would keep the pool busy past the wait.
    limit = {MAX_RUNTIME_SECONDS_TAG: str(MAX_RUNTIME_SECONDS), MAX_RETRIES_TAG: "0"}
    run_ids = [_launch(deployment, job, **limit) for job in JOBS]

    def both_hold_slots() -> bool:
        return instance.event_log_storage.get_concurrency_info(POOL).active_run_ids == set(run_ids)

    wait_until(
        both_hold_slots, RUN_TIMEOUT, "both runs to hold a polygon slot", processes=deployment.processes()
    )
    assert [_status(instance, r) for r in run_ids] == [DagsterRunStatus.STARTED] * 2

    # The outage: the server stops; while it is down, the trades run's worker dies (with its step process).
    dying = _worker_pids(instance, run_ids[1])
    pg_server.stop()
    for pid in dying:
        os.kill(pid, signal.SIGKILL)
    time.sleep(OUTAGE_SECONDS)
    pg_server.start()
    server.faults.clear()
    started = time.monotonic()

    def settled() -> list[str] | None:
        in_progress = instance.get_runs(
            RunsFilter(statuses=[*IN_PROGRESS_RUN_STATUSES, DagsterRunStatus.CANCELING])
        )
        info = instance.event_log_storage.get_concurrency_info(POOL)
        if in_progress or info.claimed_slots or info.pending_steps:
            return None
        return [str(_status(instance, r)) for r in run_ids]

    statuses = wait_until(
        settled,
        RECOVERY_TIMEOUT,
        "no run in progress and the polygon slots free",
        interval=5,
        processes=deployment.processes(),
    )
    recovered_seconds = time.monotonic() - started
    # The killed worker's run failed. The surviving worker's run may even succeed: whether it touched the
    # database while the server was down depends on where the outage caught it (seen both ways).
    assert _status(instance, run_ids[1]) == DagsterRunStatus.FAILURE
    assert _status(instance, run_ids[0]) in (
        DagsterRunStatus.SUCCESS,
        DagsterRunStatus.FAILURE,
        DagsterRunStatus.CANCELED,
    )

    record_property(
        "fault_summary",
        f"database_outage_mid_run: 2 runs holding {POOL_SLOTS}/{POOL_SLOTS} {POOL} slots, server down "
        f"{OUTAGE_SECONDS} s, 1 run worker killed meanwhile; recovered in {recovered_seconds:.0f} s "
        f"(runs {statuses}), 0 slots held",
    )

    # A following polygon step runs at once: nothing holds the pool.
    after = _launch(deployment, "quotes_job")
    wait_until(
        lambda: _status(instance, after) in (DagsterRunStatus.SUCCESS, DagsterRunStatus.FAILURE),
        RUN_TIMEOUT,
        "the following quotes run",
        interval=2,
        processes=deployment.processes(),
    )
    messages = _messages(instance, after)
    assert "blocked by limit for pool" not in messages
    # The code server still starts runs: its StartRun does not time out on a lock a wedged cancel holds.
    assert "Unexpected error in IPC client" not in messages, messages[-3000:]
    assert _status(instance, after) == DagsterRunStatus.SUCCESS, messages[-3000:]
    # ... because its orphan check outlived the outage and failed the run whose worker was killed itself.
    assert f"Run execution process for {run_ids[1]} was terminated by signal 9" in _messages(
        instance, run_ids[1]
    )


def _messages(instance, run_id: str) -> str:  # type: ignore[no-untyped-def]
    return "\n".join(e.message or "" for e in instance.all_logs(run_id))
