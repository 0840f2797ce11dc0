"""``trading-data worker <queue>...``: a Celery worker for a queue, its concurrency from the vendor plan.

It runs ``dagster-celery worker start`` on the platform's app (:mod:`trading_data.orchestration.celery_app`),
which runs ``celery worker``; the worker needs the run's ``DAGSTER_HOME`` (for the instance) and the same
database, broker and vendor settings as the run's process.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from pathlib import Path

from trading_data.orchestration.queues import QUEUES, worker_concurrency

APP = "trading_data.orchestration.celery_app"


def worker_command(
    queues: Sequence[str], *, name: str | None = None, concurrency: int | None = None
) -> list[str]:
    """The ``dagster-celery worker start`` command line of a worker for ``queues`` (one, usually); its
    concurrency is theirs summed (:func:`~trading_data.orchestration.queues.worker_concurrency`) unless given."""
    if not queues:
        raise ValueError(f"a worker needs a queue: the queues are {', '.join(QUEUES)}")
    slots = concurrency if concurrency is not None else sum(worker_concurrency(q) for q in queues)
    # One -q with a comma-separated list: celery worker keeps only the last of several -Q options.
    queue_args = ["-q", ",".join(queues)]
    # After "--": celery worker's own options (dagster-celery passes them through).
    return ["dagster-celery", "worker", "start", "-A", APP, *queue_args, "-n", name or "-".join(queues),
            "--", f"--concurrency={slots}", "--without-gossip", "--without-mingle"]  # fmt: skip


def exec_worker(argv: Sequence[str]) -> None:
    """Replace this process with ``argv``, the interpreter's scripts folder first on PATH (``dagster-celery``
    and the ``celery`` it starts live beside ``trading-data``)."""
    os.environ["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), *os.get_exec_path()])
    os.execvp(argv[0], list(argv))
