"""Bad configuration fails a run at once, once, in plain words (issue 8; issue 9 points 5 and 10).

Runs go through the multiprocess executor on a real (temporary, non-ephemeral) instance, as the
daemon and ``dagster asset materialize`` run them: ``execute_job(reconstructable(...))``. The instance
has run retries on with ``retry_on_asset_or_op_failure: false``, as ``dagster.yaml`` has.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import dagster as dg
import pytest
from dagster._core.events import DagsterEventType
from dagster._core.storage.tags import MAX_RETRIES_TAG, WILL_RETRY_TAG
from dagster._daemon.auto_run_reexecution.auto_run_reexecution import should_retry

from trading_data.orchestration.executor import trading_data_executor
from trading_data.orchestration.steps import step_failure, vendor_retry_policy
from trading_data.partitions import session_partitions
from trading_data.sources.errors import VendorAuthError
from trading_data.sources.resources import PolygonResource
from trading_data.sources.simulator.faults import Fault
from trading_data.sources.simulator.server import SimulatorServer

SESSION = "2026-11-25"
RUN_RETRIES = {"enabled": True, "max_retries": 2, "retry_on_asset_or_op_failure": False}


def platform_selection_job() -> dg.JobDefinition:
    """The platform's own selected_tickers job, executor and resources included."""
    from trading_data.definitions import defs

    return defs.resolve_job_def("selected_tickers_job")


@pytest.fixture
def instance() -> Iterator[dg.DagsterInstance]:
    with dg.instance_for_test(overrides={"run_retries": RUN_RETRIES}) as instance:
        yield instance


def _execute(
    instance: dg.DagsterInstance, job_fn: Any, run_config: Mapping[str, Any] | None = None
) -> dg.DagsterRun:
    result = dg.execute_job(
        dg.reconstructable(job_fn),
        instance=instance,
        run_config=dict(run_config or {}),
        tags={"dagster/partition": SESSION},
    )
    run = instance.get_run_by_id(result.run_id)
    assert run is not None
    return run


def _events(instance: dg.DagsterInstance, run: dg.DagsterRun) -> list[Any]:
    return [e.dagster_event for e in instance.all_logs(run.run_id) if e.dagster_event is not None]


def _count(events: list[Any], event_type: DagsterEventType) -> int:
    return sum(e.event_type == event_type for e in events)


def assert_failed_before_any_step(instance: dg.DagsterInstance, run: dg.DagsterRun, sentence: str) -> None:
    """Failed, no step started, one RUN_FAILURE carrying the sentence, which appears nowhere else, and
    the run-retry daemon's own rule says it will not be retried."""
    events = _events(instance, run)
    assert run.status == dg.DagsterRunStatus.FAILURE
    started = {
        DagsterEventType.STEP_WORKER_STARTING,
        DagsterEventType.STEP_START,
        DagsterEventType.STEP_UP_FOR_RETRY,
    }
    assert not [e.event_type for e in events if e.event_type in started]
    failures = [e for e in events if e.event_type == DagsterEventType.RUN_FAILURE]
    assert len(failures) == 1
    error = failures[0].event_specific_data.error
    assert error.cls_name in {"SettingsError", "ConfigurationError"}
    assert error.message.strip().endswith(sentence)
    assert error.cause is None
    texts = [e.message or "" for e in events] + [
        getattr(getattr(e.event_specific_data, "error", None), "message", "") or "" for e in events
    ]
    assert sum(sentence in text for text in texts) == 1
    run = instance.get_run_by_id(run.run_id)
    assert run is not None
    assert run.tags.get(MAX_RETRIES_TAG) == "0" and run.tags.get(WILL_RETRY_TAG) == "false"
    assert not should_retry(run, instance)


@pytest.mark.parametrize(
    ("config", "sentence"),
    [
        (
            {"max_active_tickers": 0},
            "invalid setting max_active_tickers (from the run config: 0): must be at least 1, got 0",
        ),
        (
            {"min_volatility": True},
            "invalid setting min_volatility (from the run config: True): must be a number, got True",
        ),
        (
            {"max_active_tickers": 60},
            "invalid setting max_active_tickers (from the run config: 60): 60 is larger than "
            "focus_universe_size (50, the default): the active tickers are chosen from the focus universe",
        ),
        (
            {"symbols": ["AAPL", "MSFT", "KO"], "max_active_tickers": 2},
            "invalid setting max_active_tickers (from the run config: 2): 2 is fewer than the 3 tickers of "
            "symbols (from the run config), and every symbol is active: raise it or unset it",
        ),
    ],
    ids=["range", "boolean-as-number", "above-focus-universe", "below-symbols"],
)
def test_a_bad_run_config_fails_the_run_before_any_step(
    instance: dg.DagsterInstance, config: dict[str, Any], sentence: str
) -> None:
    run = _execute(instance, platform_selection_job, {"resources": {"settings": {"config": config}}})
    assert_failed_before_any_step(instance, run, sentence)


def test_a_bad_environment_variable_fails_the_run_before_any_step(
    instance: dg.DagsterInstance, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TRADING_DATA_LOOKBACK_DAYS", "abc")
    run = _execute(instance, platform_selection_job)
    assert_failed_before_any_step(
        instance,
        run,
        "invalid setting lookback_days (from TRADING_DATA_LOOKBACK_DAYS='abc'): must be an integer, got 'abc'",
    )


def test_a_bad_vendor_setting_fails_the_run_before_any_step(
    instance: dg.DagsterInstance, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("POLYGON_API_KEY", raising=False)
    monkeypatch.setenv("TRADING_DATA_SOURCE", "live")
    run = _execute(instance, platform_selection_job)
    assert_failed_before_any_step(
        instance,
        run,
        "polygon: TRADING_DATA_SOURCE=live but POLYGON_API_KEY is not set; set POLYGON_API_KEY or use "
        "TRADING_DATA_SOURCE=simulated",
    )


# --- non-retryable vendor errors (401/403/404/422) fail the step once ----------------------------------


def _grouped_daily(polygon: PolygonResource) -> int:
    import asyncio

    async def fetch() -> int:
        async with polygon.client() as client:
            return len(await client.grouped_daily(SESSION))

    return asyncio.run(fetch())


@dg.asset(partitions_def=session_partitions, retry_policy=vendor_retry_policy())
def unwrapped_vendor_call(polygon: PolygonResource) -> int:
    return _grouped_daily(polygon)


@dg.asset(partitions_def=session_partitions, retry_policy=vendor_retry_policy())
def vendor_call(polygon: PolygonResource) -> int:
    try:
        return _grouped_daily(polygon)
    except Exception as exc:
        raise step_failure(exc) from None


class FetchingIOManager(dg.IOManager):
    """Fetches while it stores, as the feeds' stream does inside the IO manager's handle_output."""

    def __init__(self, polygon: PolygonResource):
        self.polygon = polygon

    def handle_output(self, context: dg.OutputContext, obj: Any) -> None:
        try:
            _grouped_daily(self.polygon)
        except Exception as exc:
            raise step_failure(exc) from None

    def load_input(self, context: dg.InputContext) -> Any:
        raise NotImplementedError


@dg.io_manager(required_resource_keys={"polygon"})
def fetching_io_manager(context: dg.InitResourceContext) -> FetchingIOManager:
    return FetchingIOManager(context.resources.polygon)


@dg.asset(partitions_def=session_partitions, retry_policy=vendor_retry_policy(), io_manager_key="fetching")
def vendor_call_in_io_manager() -> int:
    return 1


def _vendor_job(asset: dg.AssetsDefinition) -> dg.JobDefinition:
    defs = dg.Definitions(
        assets=[asset],
        jobs=[dg.define_asset_job("vendor_job", selection=[asset.key])],
        resources={"polygon": PolygonResource(), "fetching": fetching_io_manager},
        executor=trading_data_executor,
    )
    return defs.resolve_job_def("vendor_job")


def unwrapped_vendor_job() -> dg.JobDefinition:
    return _vendor_job(unwrapped_vendor_call)


def vendor_job() -> dg.JobDefinition:
    return _vendor_job(vendor_call)


def vendor_io_manager_job() -> dg.JobDefinition:
    return _vendor_job(vendor_call_in_io_manager)


@pytest.fixture
def unauthorized_simulator() -> Iterator[SimulatorServer]:
    """The simulator over loopback HTTP answering every request with 401."""
    with SimulatorServer(seed=7) as sim:
        sim.faults.add(Fault("http_401", count=None))
        yield sim


def _vendor_run(
    instance: dg.DagsterInstance, job_fn: Any, sim: SimulatorServer
) -> tuple[dg.DagsterRun, list[Any]]:
    config = {"resources": {"polygon": {"config": {"simulator_url": sim.base_url}}}}
    run = _execute(instance, job_fn, config)
    return run, _events(instance, run)


def test_dagster_retries_a_raw_401_three_times(
    instance: dg.DagsterInstance, unauthorized_simulator: SimulatorServer
) -> None:
    # What the feeds did before step_failure (issue 9.5): the RetryPolicy re-runs a 401 step.
    run, events = _vendor_run(instance, unwrapped_vendor_job, unauthorized_simulator)
    assert run.status == dg.DagsterRunStatus.FAILURE
    assert _count(events, DagsterEventType.STEP_UP_FOR_RETRY) == 3
    assert unauthorized_simulator.stats.snapshot()["total"] == 4


@pytest.mark.parametrize("job_fn", [vendor_job, vendor_io_manager_job], ids=["asset-body", "io-manager"])
def test_a_401_raised_through_step_failure_fails_once(
    instance: dg.DagsterInstance, unauthorized_simulator: SimulatorServer, job_fn: Any
) -> None:
    run, events = _vendor_run(instance, job_fn, unauthorized_simulator)
    assert run.status == dg.DagsterRunStatus.FAILURE
    assert _count(events, DagsterEventType.STEP_UP_FOR_RETRY) == 0
    assert _count(events, DagsterEventType.STEP_FAILURE) == 1
    assert unauthorized_simulator.stats.snapshot()["total"] == 1  # the client does not retry a 401 either
    failure = next(e for e in events if e.event_type == DagsterEventType.STEP_FAILURE)
    error = failure.step_failure_data.error
    assert error.cls_name == "Failure" and "401" in error.message and error.cause is None
    run = instance.get_run_by_id(run.run_id)
    assert run is not None and not should_retry(run, instance)


def test_step_failure_leaves_retryable_errors_alone() -> None:
    outage = RuntimeError("connection reset")
    assert step_failure(outage) is outage
    auth = VendorAuthError("polygon: 401 on GET /v2/...", vendor="polygon", status=401)
    failure = step_failure(auth)
    assert isinstance(failure, dg.Failure) and not failure.allow_retries
    assert failure.description == "polygon: 401 on GET /v2/..."
    # A feed that failed whole: non-retryable only when every ticker's error is.
    feed = RuntimeError("quotes: every ticker failed (2)")
    assert isinstance(step_failure(feed, causes=[auth, auth]), dg.Failure)
    assert step_failure(feed, causes=[auth, outage]) is feed
