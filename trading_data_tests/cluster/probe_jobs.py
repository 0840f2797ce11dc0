"""A two-step job for the Celery executor tests: one step on the ``polygon`` queue, one on ``compute``.

Workers rebuild it from this module (``reconstructable(probe_job)``), so it lives in an importable module.
"""

from __future__ import annotations

import socket

import dagster as dg

from trading_data.orchestration.celery_executor import trading_data_celery_executor
from trading_data.orchestration.queues import queue_tags


@dg.asset(op_tags=queue_tags("polygon"))
def vendor_step() -> int:
    return 20


@dg.asset
def compute_step(vendor_step: int) -> dg.MaterializeResult:
    return dg.MaterializeResult(metadata={"value": vendor_step + 1, "host": socket.gethostname()})


def probe_job() -> dg.JobDefinition:
    defs = dg.Definitions(
        assets=[vendor_step, compute_step],
        jobs=[dg.define_asset_job("probe_job")],
        executor=trading_data_celery_executor,
    )
    return defs.resolve_job_def("probe_job")


def platform_selection_celery_job() -> dg.JobDefinition:
    """The platform's selected_tickers step and resources, on the Celery executor."""
    from trading_data.definitions import ASSETS
    from trading_data.defs.resources import build_resources

    defs = dg.Definitions(
        assets=ASSETS,
        resources=build_resources(),
        jobs=[dg.define_asset_job("selected_tickers_celery_job", selection=["selected_tickers"])],
        executor=trading_data_celery_executor,
    )
    return defs.resolve_job_def("selected_tickers_celery_job")


def platform_celery_job() -> dg.JobDefinition:
    """Every asset and SQL check of the platform for one session, resources from the environment, on the
    Celery executor: what a backfill run executes."""
    from trading_data.definitions import ASSET_CHECKS, ASSETS
    from trading_data.defs.resources import build_resources

    defs = dg.Definitions(
        assets=ASSETS,
        asset_checks=ASSET_CHECKS,
        resources=build_resources(),
        jobs=[dg.define_asset_job("session_celery_job", selection=dg.AssetSelection.all())],
        executor=trading_data_celery_executor,
    )
    return defs.resolve_job_def("session_celery_job")
