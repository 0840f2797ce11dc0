"""How runs execute their steps: the local multiprocess executor, or Celery workers over RabbitMQ.

Declared here once (the README's "Execution" settings); :mod:`trading_data.orchestration.queues` reads them.
The per-vendor queues' worker concurrency comes from the vendor pools (``TRADING_DATA_POOL_POLYGON``,
``TRADING_DATA_POOL_UNUSUAL_WHALES``): a queue never runs more steps at once than its plan's pool allows.
"""

from __future__ import annotations

from trading_data.settings.parsing import Choice, Setting, integer, parse_text

EXECUTORS = ("multiprocess", "celery")
EXECUTOR = Setting(
    "TRADING_DATA_EXECUTOR",
    "multiprocess",
    Choice(EXECUTORS),
    "Where a run's steps execute: subprocesses of its run worker, or Celery workers (one per queue: "
    "`trading-data worker polygon|unusual_whales|compute`); read when the definitions load.",
)
CELERY_BROKER_URL = Setting(
    "TRADING_DATA_CELERY_BROKER_URL",
    "pyamqp://guest@127.0.0.1:5672//",
    parse_text,
    "The Celery broker (RabbitMQ) the executor sends steps to and the workers read.",
    secret=True,
)
CELERY_BACKEND_URL = Setting(
    "TRADING_DATA_CELERY_BACKEND_URL",
    "rpc://",
    parse_text,
    "Where Celery workers return a step's events to the run (`rpc://`: back over the broker).",
)
CELERY_COMPUTE_CONCURRENCY = Setting(
    "TRADING_DATA_CELERY_COMPUTE_CONCURRENCY",
    2,
    integer(1),
    "Steps a `compute` queue worker (indicators, report, checks) runs at once.",
)

EXECUTION_SETTINGS = (EXECUTOR, CELERY_BROKER_URL, CELERY_BACKEND_URL, CELERY_COMPUTE_CONCURRENCY)
