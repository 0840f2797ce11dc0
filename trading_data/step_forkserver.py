"""The step forkserver's last preload (``orchestration.executor.STEP_PRELOAD_MODULES``): what every step
process would otherwise do again after its fork, done once in the server. An entry point: it runs in a
process of its own, after the code location (``trading_data.definitions``) is imported.

- ``dagster._cli``: a forked step runs its parent's main script first (multiprocessing's ``spawn.prepare``),
  and the parent is the ``dagster`` CLI or ``python -m dagster api execute_run``, whose first act is to
  import the CLI package.
- The code location's repository: each step reconstructs its job from it, and ``Definitions`` caches the
  repository once built.
- The heap is frozen (``gc.freeze``): the collector then never walks the server's objects in a step
  process, so their pages stay shared with the server instead of being copied by the walk.

Measured for issue 11 in the step processes of a session run (``bench/bench_session_run.py``); the README's
Performance section has the figures.
"""

import gc

import dagster._cli  # noqa: F401 - imported for its side effect (see above)

from trading_data.definitions import defs

defs.get_repository_def()
gc.collect()
gc.freeze()
