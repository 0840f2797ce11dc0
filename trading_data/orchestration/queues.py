"""The Celery queues a run's steps go to (no Celery import here: the asset modules import this one).

A step goes to the queue its ``dagster-celery/queue`` op tag names: the feeds and the selection tag
themselves with their vendor pool (:func:`queue_tags`), so ``polygon`` and ``unusual_whales`` workers
carry the vendor calls; every other step (indicators, report, checks) goes to ``compute``. A queue's
worker concurrency is its vendor pool's limit, so a queue never runs more vendor steps at once than the
plan allows; ``compute`` has its own setting.
"""

from __future__ import annotations

from trading_data.settings.execution import CELERY_COMPUTE_CONCURRENCY
from trading_data.settings.platform import POOL_LIMITS

# dagster_celery.tags.DAGSTER_CELERY_QUEUE_TAG, spelled out so that the asset modules need no Celery import.
CELERY_QUEUE_TAG = "dagster-celery/queue"
COMPUTE_QUEUE = "compute"
VENDOR_QUEUES = tuple(POOL_LIMITS)  # polygon, unusual_whales: a queue per vendor pool
QUEUES = (*VENDOR_QUEUES, COMPUTE_QUEUE)


def queue_tags(pool: str) -> dict[str, str]:
    """The op tags that send a step of vendor pool ``pool`` to that vendor's queue."""
    if pool not in VENDOR_QUEUES:
        raise ValueError(
            f"no Celery queue for pool {pool!r}: the vendor queues are {', '.join(VENDOR_QUEUES)}"
        )
    return {CELERY_QUEUE_TAG: pool}


def worker_concurrency(queue: str) -> int:
    """Steps a worker of ``queue`` runs at once: the vendor pool's limit, or the compute setting."""
    if queue == COMPUTE_QUEUE:
        return CELERY_COMPUTE_CONCURRENCY.get()
    if queue in POOL_LIMITS:
        return max(POOL_LIMITS[queue].get(), 1)
    raise ValueError(f"unknown Celery queue {queue!r}: the queues are {', '.join(QUEUES)}")
