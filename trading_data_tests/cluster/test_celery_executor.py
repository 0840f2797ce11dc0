"""The Celery executor (issue 12): steps go to the queue of their vendor pool or to ``compute``, run on the
workers of that queue over RabbitMQ, and a bad setting fails the run before any step is sent.

The worker tests start real ``trading-data worker`` processes on a private vhost of the local RabbitMQ and
skip, saying why, where no broker answers.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pytest
from dagster._core.storage.tags import MAX_RETRIES_TAG
from dagster_celery.tags import DAGSTER_CELERY_QUEUE_TAG

from trading_data.orchestration.celery_executor import build_app, trading_data_celery_executor
from trading_data.orchestration.celery_worker import worker_command
from trading_data.orchestration.executor import trading_data_executor
from trading_data.orchestration.platform_executor import platform_executor
from trading_data.orchestration.queues import CELERY_QUEUE_TAG, COMPUTE_QUEUE, VENDOR_QUEUES
from trading_data.settings import ConfigurationError
from trading_data_tests.cluster import support
from trading_data_tests.cluster.probe_jobs import (
    compute_step,
    platform_selection_celery_job,
    probe_job,
    vendor_step,
)

SESSION = "2026-11-25"


def test_every_vendor_step_goes_to_its_pools_queue_and_the_rest_to_compute() -> None:
    from trading_data.definitions import defs

    assert CELERY_QUEUE_TAG == DAGSTER_CELERY_QUEUE_TAG
    assert build_app("memory://").conf.task_default_queue == COMPUTE_QUEUE
    job = defs.resolve_implicit_global_asset_job_def()
    queues = {}
    for node in job.graph.node_dict.values():
        pool = node.definition.pool
        queue = node.definition.tags.get(CELERY_QUEUE_TAG)
        assert queue == (pool if pool in VENDOR_QUEUES else None), node.name
        queues[node.name] = queue or COMPUTE_QUEUE
    assert {queues[n] for n in ("prices", "quotes", "trades", "selected_tickers")} == {"polygon"}
    assert queues["options_flow"] == "unusual_whales"
    assert {queues[n] for n in ("indicators", "daily_report", "position_sizes")} == {COMPUTE_QUEUE}


def test_the_executor_setting_selects_celery(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TRADING_DATA_EXECUTOR", raising=False)
    assert platform_executor() is trading_data_executor
    monkeypatch.setenv("TRADING_DATA_EXECUTOR", "Celery")
    assert platform_executor() is trading_data_celery_executor
    monkeypatch.setenv("TRADING_DATA_EXECUTOR", "k8s")
    with pytest.raises(ConfigurationError, match="TRADING_DATA_EXECUTOR='k8s'"):
        platform_executor()


def test_worker_concurrency_follows_the_vendor_pools(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRADING_DATA_POOL_POLYGON", "1")
    monkeypatch.setenv("TRADING_DATA_POOL_UNUSUAL_WHALES", "2")
    monkeypatch.setenv("TRADING_DATA_CELERY_COMPUTE_CONCURRENCY", "4")
    assert "--concurrency=1" in worker_command(["polygon"])
    assert "--concurrency=2" in worker_command(["unusual_whales"])
    assert "--concurrency=4" in worker_command(["compute"])
    assert "--concurrency=7" in worker_command(["polygon", "unusual_whales", "compute"])
    assert "--concurrency=9" in worker_command(["polygon"], concurrency=9)


def test_a_worker_of_several_queues_names_them_in_one_option() -> None:
    # celery worker keeps only the last of several -Q options: a host's worker listened on compute alone.
    argv = worker_command(["polygon", "unusual_whales", "compute"])
    assert argv[argv.index("-q") + 1] == "polygon,unusual_whales,compute" and argv.count("-q") == 1


def test_a_bad_setting_fails_the_celery_run_before_any_step_is_sent() -> None:
    with dg.instance_for_test() as instance:
        result = dg.execute_job(
            dg.reconstructable(platform_selection_celery_job),
            instance=instance,
            run_config={"resources": {"settings": {"config": {"max_active_tickers": 0}}}},
            tags={"dagster/partition": SESSION},
        )
        assert not result.success
        run = instance.get_run_by_id(result.run_id)
        assert run is not None and run.tags.get(MAX_RETRIES_TAG) == "0"
        messages = [r.user_message for r in instance.all_logs(result.run_id)]
        assert not [m for m in messages if "Submitting celery task" in m]
        failure = instance.all_logs(result.run_id, of_type=dg.DagsterEventType.RUN_FAILURE)
        assert failure and "invalid setting max_active_tickers (from the run config: 0)" in str(
            failure[0].dagster_event.event_specific_data
        )


@pytest.fixture
def celery_env(server_url: str, tmp_path: Path) -> Iterator[dict[str, str]]:
    """The environment of a run's process and its workers: a private vhost and a Dagster home on PostgreSQL."""
    reason = support.broker_unavailable_reason()
    if reason:
        pytest.skip(reason)
    import os

    name = f"{os.environ.get('TRADING_DATA_TEST_RUN', '')}celery_executor_dagster"
    dagster_url = support.fresh_database(server_url, name)
    with support.rabbit_vhost() as vhost:
        env = {
            **os.environ,
            "DAGSTER_HOME": str(support.write_dagster_home(tmp_path / "dagster_home")),
            "TRADING_DATA_DAGSTER_DATABASE_URL": dagster_url,
            "TRADING_DATA_CELERY_BROKER_URL": f"pyamqp://guest@{support.BROKER_HOST}:{support.BROKER_PORT}/{vhost}",
            "PYTHONPATH": str(support.REPO_ROOT),
        }
        yield env
    support.drop_database(server_url, name)


@pytest.mark.slow
def test_steps_run_on_the_workers_of_their_queues(
    celery_env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for key in ("DAGSTER_HOME", "TRADING_DATA_DAGSTER_DATABASE_URL", "TRADING_DATA_CELERY_BROKER_URL"):
        monkeypatch.setenv(key, celery_env[key])
    dg.DagsterInstance.get().dispose()  # the Dagster schema created once, not by two starting workers at once
    workers = [
        support.Worker("probe-polygon", ["polygon"], celery_env, tmp_path / "polygon.log"),
        support.Worker("probe-compute", ["compute"], celery_env, tmp_path / "compute.log"),
    ]
    try:
        for worker in workers:
            worker.start()
        support.wait_for_workers(celery_env["TRADING_DATA_CELERY_BROKER_URL"], workers)
        with dg.DagsterInstance.get() as instance:
            result = dg.execute_job(dg.reconstructable(probe_job), instance=instance)
            assert result.success
            ran = support.step_workers(instance, result.run_id)
    finally:
        for worker in workers:
            worker.stop()
    assert ran == [
        (vendor_step.key.to_python_identifier(), workers[0].node),
        (compute_step.key.to_python_identifier(), workers[1].node),
    ]
