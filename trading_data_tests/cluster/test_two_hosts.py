"""A 5-session backfill on Celery workers on two "hosts" (network namespaces), one of them lost mid-step
(issue 12): both hosts execute steps; SIGKILL of every process of one host during a feed step ends with
that step executed again on the other; afterwards the market tables equal a single-process run of the same
sessions, no row lost and none duplicated.

What brings the step back: the platform's tasks are acknowledged late (``task_acks_late``), so when the dead
host's broker connection closes RabbitMQ requeues its unacknowledged step and the other host's worker takes
it; the run's process, still waiting for that task's result, receives the second execution's events.

Each host is a namespace whose worker reaches RabbitMQ, PostgreSQL and the simulator only through its veth,
at the bridge address where the test's forwarders listen (the services listen on 127.0.0.1 only; RabbitMQ's
guest user is loopback-only). Heavy: ``make test-cluster`` runs it (``TRADING_DATA_CLUSTER_TESTS=1``), on a
private PostgreSQL server; it skips, saying why, without root, network namespaces or a broker.
"""

from __future__ import annotations

import os
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import dagster as dg
import psycopg
import pytest
from dagster._core.storage.dagster_run import RunsFilter

from trading_data.orchestration.queues import QUEUES
from trading_data.sources.simulator.faults import Fault
from trading_data.sources.simulator.server import SimulatorServer
from trading_data_tests.cluster import netns, support
from trading_data_tests.cluster.forwarder import TcpForwarder
from trading_data_tests.cluster.probe_jobs import platform_celery_job
from trading_data_tests.factories import simulator_resources, truncate_market
from trading_data_tests.faults.support import duplicate_keys, row_diff, save_reference, snapshot

pytestmark = [
    pytest.mark.cluster,
    pytest.mark.skipif(
        os.environ.get("TRADING_DATA_CLUSTER_TESTS") != "1",
        reason="starts two network namespaces of Celery workers: make test-cluster runs it",
    ),
]

NOW = "2026-11-27T18:00:00-05:00"
SESSIONS = ("2026-11-19", "2026-11-20", "2026-11-23", "2026-11-24", "2026-11-25")
KILLED_SESSION, KILLED_STEP = SESSIONS[2], "quotes"
TICKERS = ["NKS", "AOX"]  # thin names of the simulated universe: a few thousand rows a session
REFERENCE_SCHEMA = "single_process"


def _url_via(url: str, host: str, port: int) -> str:
    return url.replace("@127.0.0.1:", f"@{host}:").replace(f":{_port_of(url)}/", f":{port}/")


def _port_of(url: str) -> int:
    return int(url.split("@", 1)[1].split("/", 1)[0].rsplit(":", 1)[1])


def _successes(instance: dg.DagsterInstance, run_id: str) -> Counter[str]:
    return Counter(
        r.step_key for r in instance.all_logs(run_id, of_type=dg.DagsterEventType.STEP_SUCCESS) if r.step_key
    )


def _reference_run(url: str, sim_url: str) -> None:
    """The same sessions in one process (dg.materialize, in-process executor), kept in REFERENCE_SCHEMA."""
    from trading_data.definitions import ASSET_CHECKS, ASSETS

    for session in SESSIONS:
        result = dg.materialize(
            [*ASSETS, *ASSET_CHECKS],
            partition_key=session,
            resources=simulator_resources(url, sim_url, tickers=TICKERS),
        )
        assert result.success, session
    save_reference(url, REFERENCE_SCHEMA)
    truncate_market(url)


def _execute(instance: dg.DagsterInstance, session: str, timeout: float = 600) -> Any:
    """One session's run; fails (instead of waiting for ever) if a step is never taken by a worker."""
    outcome: dict[str, Any] = {}

    def run() -> None:
        outcome["result"] = dg.execute_job(
            dg.reconstructable(platform_celery_job), instance=instance, tags={"dagster/partition": session}
        )

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(timeout)
    assert "result" in outcome, f"the run of {session} did not end in {timeout:.0f} s"
    return outcome["result"]


def _quote_requests(sim: SimulatorServer) -> int:
    return sum(n for path, n in sim.stats.snapshot()["per_path"].items() if path.startswith("/v3/quotes"))


def _run_killing_a_host(
    instance: dg.DagsterInstance, sim: SimulatorServer, hosts: dict[str, str]
) -> tuple[str, str, list[int]]:
    """Run KILLED_SESSION; when KILLED_STEP is under way on a host, SIGKILL every process of that host.
    Returns (run id, the killed worker, the pids killed)."""
    outcome: dict[str, Any] = {}

    def run() -> None:
        outcome["result"] = dg.execute_job(
            dg.reconstructable(platform_celery_job),
            instance=instance,
            tags={"dagster/partition": KILLED_SESSION},
        )

    # Slow quote requests keep the step running: the host is killed while one is in flight.
    sim.faults.add(Fault("latency", path_prefix="/v3/quotes", count=None, seconds=8.0))
    quote_requests = _quote_requests(sim)
    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 300
    run_id = victim = None
    while time.monotonic() < deadline and victim is None:
        time.sleep(0.1)
        runs = instance.get_runs(filters=RunsFilter(tags={"dagster/partition": KILLED_SESSION}))
        if not runs:
            continue
        run_id = runs[0].run_id
        started = [worker for step, worker in support.step_workers(instance, run_id) if step == KILLED_STEP]
        if started and _quote_requests(sim) > quote_requests:
            assert not _successes(instance, run_id)[KILLED_STEP], "the step ended before the kill"
            victim = started[0]
    assert run_id is not None and victim is not None, "the feed step never started"
    killed = netns.kill_all(hosts[victim])
    sim.faults.clear()
    thread.join(timeout=600)
    assert not thread.is_alive(), "the run did not end after the host was lost"
    assert outcome["result"].success, "the run failed after losing a host"
    return run_id, victim, killed


def test_a_backfill_on_two_hosts_survives_losing_one_mid_step(
    server_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, record_property: Any
) -> None:
    for reason in (netns.unavailable_reason(), support.broker_unavailable_reason()):
        if reason:
            pytest.skip(reason)
    prefix = f"{os.environ.get('TRADING_DATA_TEST_RUN', '')}cluster"
    market_url = support.fresh_database(server_url, f"{prefix}_market", migrated=True)
    dagster_db = support.fresh_database(server_url, f"{prefix}_dagster")
    monkeypatch.setenv("TRADING_DATA_NOW", NOW)
    workers: list[support.Worker] = []
    forwarders: list[TcpForwarder] = []
    with netns.worker_hosts(2) as host_list, SimulatorServer() as sim, support.rabbit_vhost() as vhost:
        try:
            _reference_run(market_url, sim.base_url)
            broker, postgres, simulator = (
                TcpForwarder(netns.HOST_ADDRESS, "127.0.0.1", port).start()
                for port in (support.BROKER_PORT, _port_of(server_url), sim.port)
            )
            forwarders = [broker, postgres, simulator]
            bridge = netns.HOST_ADDRESS
            env = {
                "TRADING_DATA_EXECUTOR": "celery",
                "TRADING_DATA_CELERY_BROKER_URL": f"pyamqp://guest@{bridge}:{broker.port}/{vhost}",
                "TRADING_DATA_DATABASE_URL": _url_via(market_url, bridge, postgres.port),
                "TRADING_DATA_DAGSTER_DATABASE_URL": _url_via(dagster_db, bridge, postgres.port),
                "TRADING_DATA_SIMULATOR_URL": f"http://{bridge}:{simulator.port}",
                "TRADING_DATA_SOURCE": "simulated",
                "TRADING_DATA_SYMBOLS": ",".join(TICKERS),
                "TRADING_DATA_NOW": NOW,
                "TRADING_DATA_STEP_RETRY_DELAY_SECONDS": "0",
                "DAGSTER_HOME": str(support.write_dagster_home(tmp_path / "dagster_home")),
            }
            for key, value in env.items():
                monkeypatch.setenv(key, value)
            # Create the Dagster schema once: two workers starting on a fresh database both ran its DDL
            # and one died of "type secondary_indexes already exists".
            dg.DagsterInstance.get().dispose()
            worker_env = {**os.environ, "PYTHONPATH": str(support.REPO_ROOT)}
            workers = [
                support.Worker(f"host-{name[-1]}", QUEUES, worker_env, tmp_path / f"{name}.log", netns=name)
                for name, _ in host_list
            ]
            for worker in workers:
                worker.start()
            support.wait_for_workers(env["TRADING_DATA_CELERY_BROKER_URL"], workers)
            host_of = {w.node: w.netns or "" for w in workers}

            steps: Counter[str] = Counter()
            with dg.DagsterInstance.get() as instance:
                for session in SESSIONS:
                    if session == KILLED_SESSION:
                        run_id, victim, killed = _run_killing_a_host(instance, sim, host_of)
                        ran = support.step_workers(instance, run_id)
                        again = [w for s, w in ran if s == KILLED_STEP]
                        assert again[0] == victim and len(again) == 2 and again[1] != victim, ran
                        assert _successes(instance, run_id)[KILLED_STEP] == 1
                        # Not a Dagster step retry (a dead worker reports no failure): the broker's redelivery.
                        failures = instance.all_logs(run_id, of_type=dg.DagsterEventType.STEP_FAILURE)
                        assert not [r for r in failures if r.step_key == KILLED_STEP]
                    else:
                        result = dg.execute_job(
                            dg.reconstructable(platform_celery_job),
                            instance=instance,
                            tags={"dagster/partition": session},
                        )
                        assert result.success, session
                        ran = support.step_workers(instance, result.run_id)
                    steps.update(worker for _, worker in ran)
        finally:
            for worker in workers:
                worker.stop()
            for forwarder in forwarders:
                forwarder.stop()
        # Every worker reached the services over its veth only: the forwarders saw both namespace addresses.
        addresses = {address for _, address in host_list}
        assert addresses <= postgres.peers and addresses <= broker.peers, (postgres.peers, broker.peers)
        assert all(not netns.can_connect(name, "127.0.0.1", support.BROKER_PORT) for name, _ in host_list)

    assert set(steps) == set(host_of), f"both hosts execute steps: {dict(steps)}"
    lost, extra = row_diff(market_url, REFERENCE_SCHEMA)
    duplicates = duplicate_keys(market_url)
    reference = _reference_snapshot(market_url)
    record_property(
        "cluster_summary",
        f"steps per host {dict(steps)}; killed {victim} ({len(killed)} processes) during {KILLED_STEP} of "
        f"{KILLED_SESSION}, retried on the other host; rows lost {lost}, rows duplicated {extra}, duplicate keys "
        f"{duplicates}; rows {sum(count for count, _ in reference.values())} in {len(reference)} tables",
    )
    assert (lost, extra, duplicates) == (0, 0, 0)
    assert snapshot(market_url) == reference
    for name in (f"{prefix}_market", f"{prefix}_dagster"):
        support.drop_database(server_url, name)


def _reference_snapshot(url: str) -> dict[str, tuple[int, str]]:
    """snapshot() of REFERENCE_SCHEMA's copies (the same columns, volatile ones already left out)."""
    out = {}
    with psycopg.connect(url) as conn:
        names = [
            r[0]
            for r in conn.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = %s",
                (REFERENCE_SCHEMA,),
            )
        ]
        for name in names:
            row = conn.execute(
                f"SELECT count(*), md5(coalesce(string_agg(r::text, '|' ORDER BY r::text), '')) "
                f"FROM (SELECT * FROM {REFERENCE_SCHEMA}.{name}) r"
            ).fetchone()
            assert row is not None
            out[name] = (int(row[0]), row[1])
    return out
