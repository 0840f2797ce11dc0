"""The platform's executor: Dagster's default one, after a check of the run's configuration.

Dagster builds resources inside each step, so a bad setting found there fails every step, and with
the multiprocess executor (what the daemon and the CLI use) a resource that fails to initialise is
retried by the step's RetryPolicy, then the run is retried by the run-retry daemon (the failure is a
``DagsterSubprocessError``, not a step failure). An executor runs before any step: this one resolves
the run config of every resource the run's steps need, lets each resource class that defines
``check_configuration(config)`` validate it together with the environment, and only then hands the
plan to Dagster's ``multi_or_in_process_executor`` (same config: ``execution: {config: {multiprocess:
...}}`` or ``in_process``).

A :class:`~trading_data.settings.ConfigurationError` fails the run at once with its one sentence,
before any step process starts. The run is tagged ``dagster/max_retries=0`` first, so the run-retry
daemon leaves it alone (it retries run-level exceptions; ``retry_on_asset_or_op_failure`` only covers
step failures). ``execute_in_process`` / ``dg.materialize`` use Dagster's in-process executor instead;
there the resources' ``setup_for_execution`` still refuses a bad setting.

Step processes start from a forkserver that has imported the definitions once (``FORKSERVER_START``),
unless the run config names a ``start_method`` itself: with Dagster's default (``spawn``) every step
process imported ``trading_data.definitions`` again, ~40 % of a session run's CPU (issue 11). A forkserver
is started by the run's process at its first step, with that process's environment: a run worker or a
``dagster asset materialize`` starts one per run; a long-lived process that executes several
multiprocess runs (a test session) keeps the environment of its first one.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

import dagster as dg

# Dagster 1.13 has no public names for these: the executor interface's types (RetryMode,
# StepDependencyConfig, the plan and its context), the run config resolution the executor must repeat,
# which resources a step initialises, and the run-retry daemon's tag.
from dagster._core.execution.resources_init import (
    get_required_resource_keys_for_step,
    get_transitive_required_resource_keys,
)
from dagster._core.execution.retries import RetryMode
from dagster._core.execution.step_dependency_config import StepDependencyConfig
from dagster._core.storage.tags import MAX_RETRIES_TAG
from dagster._core.system_config.objects import ResolvedRunConfig

from trading_data.settings import ConfigurationError

if TYPE_CHECKING:
    from dagster._core.execution.context.system import PlanOrchestrationContext
    from dagster._core.execution.plan.plan import ExecutionPlan

# What the forkserver imports once, so that no step process imports it again: the code location, and what
# every step imports after it (measured with sys.modules in the step processes of a session run, issue 11):
# the instance's storage (dagster-postgres, SQLAlchemy, alembic, psycopg2: ~0.6 s of CPU per step
# process, 350 modules), the compute log manager, pandera's pandas backend (loaded at the first
# validation) and the HTTP clients' transport (h11, anyio's asyncio backend). The vendor clients (with httpx,
# tenacity) are not imported by the definitions, which the CLI's orchestrating process loads too, only by the
# feed steps: preloaded here. So is the offline simulator (~0.18 s of CPU a feed step in simulated mode; in live
# mode the forkserver spends that once per run for nothing). The database drivers (psycopg for the SQL, ADBC
# with pyarrow.dataset for the IO manager's COPY: ~0.2 s of CPU) are imported where a query or a COPY runs, not
# by the definitions: preloaded here for the steps, as is TA-Lib (the indicators step's). Last, trading_data.step_forkserver
# does once what each step would do after its fork (import the CLI package, build the repository) and freezes the
# server's heap out of the collector (~0.04 s of CPU less per step process, and less to tear down at its exit).
STEP_PRELOAD_MODULES = [
    "trading_data.definitions",
    "trading_data.sources.polygon",
    "trading_data.sources.unusual_whales",
    "trading_data.sources.simulator.app",
    "trading_data.sources.simulator.server",
    "trading_data.db.dagster_storage",
    "psycopg2.extras",
    "psycopg",
    "adbc_driver_postgresql.dbapi",
    "dagster._core.instance.factory",
    "dagster._core.storage.local_compute_log_manager",
    "dagster._core.storage.defs_state.blob_storage_state_storage",
    "dagster._core.definitions.freshness_evaluator",
    "upath.implementations.local",
    "pandera.backends.pandas.register",
    "pandera.accessors.pandas_accessor",
    "talib",
    "h11",
    "anyio._backends._asyncio",
    "trading_data.step_forkserver",
]
# The multiprocess executor's start method when the run config sets none: steps fork from a server that
# has imported STEP_PRELOAD_MODULES.
FORKSERVER_START: dict[str, Any] = {"forkserver": {"preload_modules": STEP_PRELOAD_MODULES}}


def with_default_start_method(executor_config: Mapping[str, Any]) -> dict[str, Any]:
    """The executor config with ``FORKSERVER_START`` as the multiprocess start method if none is set."""
    config = dict(executor_config)
    multiprocess = config.get("multiprocess")
    if isinstance(multiprocess, Mapping) and not multiprocess.get("start_method"):
        config["multiprocess"] = {**multiprocess, "start_method": FORKSERVER_START}
    return config


def required_resource_keys(job_def: dg.JobDefinition, execution_plan: ExecutionPlan) -> set[str]:
    """The resources the plan's steps initialise (and the resources those depend on)."""
    keys: set[str] = set()
    for step in execution_plan.get_steps_to_execute_in_topo_order():
        keys |= get_required_resource_keys_for_step(job_def, step, execution_plan)
    return set(get_transitive_required_resource_keys(keys, job_def.resource_defs)) | keys


def _typed_config(resolved: Any, raw: Any) -> dict[str, Any]:
    """The resolved config (defaults filled, env vars read) with the values the run config sets
    literally kept as typed: Dagster's Float accepts ``true`` and makes it 1.0, which would hide it."""
    config = dict(resolved or {})
    literal = raw.get("config") if isinstance(raw, Mapping) else None
    if isinstance(literal, Mapping):
        for key, value in literal.items():
            if key in config and not isinstance(value, Mapping):  # {"env": NAME} stays resolved
                config[key] = value
    return config


def check_run_configuration(
    job_def: dg.JobDefinition, run_config: Mapping[str, Any], execution_plan: ExecutionPlan
) -> None:
    """Raise the first ConfigurationError of a resource the plan needs (see the module docstring)."""
    resolved = ResolvedRunConfig.build(job_def, run_config)
    raw_resources = run_config.get("resources") or {}
    for key in sorted(required_resource_keys(job_def, execution_plan)):
        resource_cls = getattr(job_def.resource_defs.get(key), "configurable_resource_cls", None)
        check = getattr(resource_cls, "check_configuration", None)
        if check is not None and key in resolved.resources:
            check(_typed_config(resolved.resources[key].config, raw_resources.get(key)))


class ConfigurationCheckingExecutor(dg.Executor):
    """Checks the run's configuration, then delegates to Dagster's executor."""

    def __init__(self, inner: dg.Executor):
        self._inner = inner

    @property
    def retries(self) -> RetryMode:
        return self._inner.retries

    @property
    def step_dependency_config(self) -> StepDependencyConfig:
        return self._inner.step_dependency_config

    def execute(
        self, plan_context: PlanOrchestrationContext, execution_plan: ExecutionPlan
    ) -> Iterator[dg.DagsterEvent]:
        try:
            check_run_configuration(
                plan_context.job.get_definition(), plan_context.run_config, execution_plan
            )
        except ConfigurationError as err:
            # Retrying cannot fix a setting: keep the run-retry daemon away (it reads this tag).
            plan_context.instance.add_run_tags(plan_context.run_id, {MAX_RETRIES_TAG: "0"})
            raise err.with_traceback(None) from None
        yield from self._inner.execute(plan_context, execution_plan)


@dg.executor(
    name="trading_data_executor",
    config_schema=dg.multi_or_in_process_executor.config_schema.as_field(),
    requirements=dg.multi_or_in_process_executor.get_requirements,
)
def trading_data_executor(init_context: dg.InitExecutorContext) -> dg.Executor:
    """Dagster's multi_or_in_process_executor behind a check of the run's configuration, its steps
    forked from a forkserver with the definitions preloaded unless the run config chooses otherwise."""
    create = dg.multi_or_in_process_executor.executor_creation_fn
    assert create is not None  # a decorated executor always has one
    context = init_context._replace(executor_config=with_default_start_method(init_context.executor_config))
    return ConfigurationCheckingExecutor(create(context))
