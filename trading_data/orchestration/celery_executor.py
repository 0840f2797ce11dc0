"""The Celery executor: dagster-celery's, behind the platform's run-configuration check, with its queues
declared and its tasks acknowledged late.

The run's process (run worker or ``dagster job execute``) plans the steps, submits each to its queue
(:mod:`trading_data.orchestration.queues`) and reads back its events; Celery workers started with
``trading-data worker <queue>`` (the app in :mod:`trading_data.orchestration.celery_app`) execute them.
Dagster's pools are still enforced by the run's process, and step RetryPolicies still apply.

A worker that dies mid-step (SIGKILL, a lost host) must not lose the step: dagster-celery's task is
acknowledged when it starts by default, so the run would wait for it for ever. ``task_acks_late`` acknowledges
a step's message only when the step has returned, and ``task_reject_on_worker_lost`` requeues it when the
worker's pool process dies, so RabbitMQ hands the step to another worker once the dead worker's connection
closes. The feed steps replace their partition in one transaction, so the repeat leaves no half partition.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import dagster as dg
from celery import Celery
from dagster._core.execution.retries import RetryMode
from dagster._grpc.types import ExecuteStepArgs
from dagster._serdes import pack_value
from dagster_celery.core_execution_loop import core_celery_execution_loop
from dagster_celery.executor import CELERY_CONFIG, CeleryExecutor
from dagster_celery.tasks import create_task
from kombu import Exchange, Queue

from trading_data.orchestration.executor import ConfigurationCheckingExecutor
from trading_data.orchestration.queues import COMPUTE_QUEUE, QUEUES
from trading_data.settings.execution import CELERY_BACKEND_URL, CELERY_BROKER_URL

# What a worker and the run's process must agree on (the workers read them from celery_app's app).
CELERY_DEFAULTS: dict[str, Any] = {
    "task_acks_late": True,
    "task_reject_on_worker_lost": True,
    "worker_prefetch_multiplier": 1,  # a worker takes a step only when it has a free slot
    "task_default_queue": COMPUTE_QUEUE,
    "task_default_priority": 5,
    "task_queue_max_priority": 10,
    "broker_connection_retry_on_startup": True,
    "broker_transport_options": {
        "max_retries": 3,
        "interval_start": 0,
        "interval_step": 0.2,
        "interval_max": 0.5,
    },
}


def declared_queues() -> list[Queue]:
    """One queue per name, bound to its own topic exchange by ``<queue>.#`` (dagster-celery publishes a
    step with the routing key ``<queue>.execute_plan``)."""
    return [
        Queue(
            name,
            Exchange(name, type="topic"),
            routing_key=f"{name}.#",
            queue_arguments={"x-max-priority": 10},
        )
        for name in QUEUES
    ]


def build_app(
    broker: str | None = None, backend: str | None = None, config_source: Mapping[str, Any] | None = None
) -> Celery:
    """The platform's Celery app: the settings' broker and backend unless given, the queues declared."""
    app = Celery(
        "trading_data", broker=broker or CELERY_BROKER_URL.get(), backend=backend or CELERY_BACKEND_URL.get()
    )
    app.conf.update({**CELERY_DEFAULTS, **(config_source or {})})
    app.conf.task_queues = declared_queues()
    return app


class PlatformCeleryExecutor(CeleryExecutor):
    """dagster-celery's executor submitting through :func:`build_app`'s app (its own app declares only a
    ``dagster`` queue, so a step sent to another queue would meet an exchange of another type)."""

    def __init__(self, *, broker: str, backend: str, config_source: Mapping[str, Any], retries: RetryMode):
        super().__init__(retries=retries, broker=broker, backend=backend, config_source=dict(config_source))
        self._task = create_task(build_app(broker, backend, config_source))

    def _submit(self, _app: Any, context: Any, step: Any, queue: str, priority: int, known_state: Any) -> Any:
        """dagster_celery.executor._submit_task, with this executor's app and its one task."""
        args = ExecuteStepArgs(
            job_origin=context.reconstructable_job.get_python_origin(),
            run_id=context.dagster_run.run_id,
            step_keys_to_execute=[step.key],
            instance_ref=context.instance.get_ref(),
            retry_mode=context.executor.retries.for_inner_plan(),
            known_state=known_state,
            print_serialized_events=True,
        )
        signature = self._task.si(
            execute_step_args_packed=pack_value(args), executable_dict=context.reconstructable_job.to_dict()
        )
        return signature.apply_async(priority=priority, queue=queue, routing_key=f"{queue}.execute_plan")

    def execute(self, plan_context: Any, execution_plan: Any) -> Iterator[dg.DagsterEvent]:
        return core_celery_execution_loop(plan_context, execution_plan, step_execution_fn=self._submit)


class CheckedCeleryExecutor(ConfigurationCheckingExecutor):
    """The run-configuration check before the Celery loop (dagster-celery reads ``app_args`` from the
    run's executor, so this one passes it through)."""

    def app_args(self) -> dict[str, Any]:
        return self._inner.app_args()  # type: ignore[attr-defined]


@dg.executor(
    name="trading_data_celery_executor",
    config_schema=CELERY_CONFIG,
    requirements=dg.multiple_process_executor_requirements(),
)
def trading_data_celery_executor(init_context: dg.InitExecutorContext) -> dg.Executor:
    """Steps on Celery workers per queue, after the run's configuration check (``execution: {config:
    {broker, backend, config_source, retries}}`` as dagster-celery's; unset broker/backend: the settings)."""
    config: Mapping[str, Any] = init_context.executor_config
    inner = PlatformCeleryExecutor(
        broker=config.get("broker") or CELERY_BROKER_URL.get(),
        backend=config.get("backend") or CELERY_BACKEND_URL.get(),
        config_source={**CELERY_DEFAULTS, **(config.get("config_source") or {})},
        retries=RetryMode.from_config(config["retries"]),  # type: ignore[arg-type]
    )
    return CheckedCeleryExecutor(inner)
