"""The executor ``TRADING_DATA_EXECUTOR`` selects for the code location (read when the definitions load)."""

from __future__ import annotations

from typing import Any

from trading_data.settings.execution import EXECUTOR


def platform_executor() -> Any:
    """The multiprocess executor (the default) or the Celery one; Celery is imported only when chosen."""
    if EXECUTOR.get() == "celery":
        from trading_data.orchestration.celery_executor import trading_data_celery_executor

        return trading_data_celery_executor
    from trading_data.orchestration.executor import trading_data_executor

    return trading_data_executor
