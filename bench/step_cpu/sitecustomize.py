"""Loaded by every interpreter of a benchmarked run (``bench/cpu.py`` puts this folder on PYTHONPATH with
``TRADING_DATA_BENCH_STEP_CPU`` naming a file): once Dagster's plan executor is imported, each step's
core execution (the span Dagster times for STEP_SUCCESS's duration) also has its CPU seconds
(``time.process_time`` of the step's process) appended to that file as ``<step key> <seconds>``, and
every interpreter's own CPU when it ends goes to ``<that file>.processes`` as ``<pid> <role> <seconds>``
(role ``step``, ``cli``, ``forkserver``, ``log-watcher`` or ``other``), so the run's CPU outside its
steps can be split by process. It changes nothing else; without the variable it does nothing."""

from __future__ import annotations

import atexit
import importlib.abc
import importlib.machinery
import os
import signal
import sys
import time
from collections.abc import Iterator
from typing import Any

TARGET = "dagster._core.execution.plan.execute_plan"
OUTPUT = os.environ.get("TRADING_DATA_BENCH_STEP_CPU")
# Dagster's compute log manager starts, per step and stream, a `tail -F` (not Python: not recorded) and this
# watcher of it, and ends the watcher with SIGTERM, which would skip atexit: here it exits normally.
_LOG_WATCHER = any(arg.endswith("watch_orphans.py") for arg in sys.orig_argv)


_ran_a_step = False


def _timed(core: Any) -> Any:
    def core_with_cpu(step_context: Any) -> Iterator[Any]:
        global _ran_a_step
        _ran_a_step = True
        started = time.process_time()
        try:
            yield from core(step_context)
        finally:
            with open(OUTPUT, "a") as out:  # type: ignore[arg-type]
                out.write(f"{step_context.step.key} {time.process_time() - started:.4f}\n")

    return core_with_cpu


class _Patcher(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    def find_spec(self, name: str, path: Any = None, target: Any = None) -> Any:
        if name != TARGET:
            return None
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        if spec is not None and spec.loader is not None:
            self._inner = spec.loader
            spec.loader = self
        return spec

    def create_module(self, spec: Any) -> Any:
        return self._inner.create_module(spec)

    def exec_module(self, module: Any) -> None:
        self._inner.exec_module(module)  # type: ignore[attr-defined]
        module.core_dagster_event_sequence_for_step = _timed(module.core_dagster_event_sequence_for_step)
        sys.meta_path.remove(self)


def _record_process() -> None:
    """Append this process's own CPU (not its children's) to ``<OUTPUT>.processes``."""
    if _ran_a_step:
        role = "step"
    elif os.path.basename(sys.argv[0]) == "dagster":
        role = "cli"
    elif "multiprocessing.forkserver import main" in " ".join(sys.orig_argv):
        role = "forkserver"
    elif _LOG_WATCHER:
        role = "log-watcher"
    else:
        role = "other"
    times = os.times()
    with open(f"{OUTPUT}.processes", "a") as out:
        out.write(f"{os.getpid()} {role} {times.user + times.system:.4f}\n")


def _exit_recorded(code: int, _exit: Any = os._exit) -> None:
    # Forked step processes leave through os._exit (multiprocessing's forkserver), which skips atexit.
    try:
        _record_process()
    finally:
        _exit(code)


if OUTPUT:
    if _LOG_WATCHER:
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    sys.meta_path.insert(0, _Patcher())
    atexit.register(_record_process)
    os._exit = _exit_recorded  # type: ignore[assignment]
