"""Loaded by every interpreter of a benchmarked run (``bench/cpu.py`` puts this folder on PYTHONPATH with
``TRADING_DATA_BENCH_STEP_CPU`` naming a file): once Dagster's plan executor is imported, each step's
core execution (the span Dagster times for STEP_SUCCESS's duration) also has its CPU seconds
(``time.process_time`` of the step's process) appended to that file as ``<step key> <seconds>``. It
changes nothing else; without the variable it does nothing."""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import os
import sys
import time
from collections.abc import Iterator
from typing import Any

TARGET = "dagster._core.execution.plan.execute_plan"
OUTPUT = os.environ.get("TRADING_DATA_BENCH_STEP_CPU")


def _timed(core: Any) -> Any:
    def core_with_cpu(step_context: Any) -> Iterator[Any]:
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


if OUTPUT:
    sys.meta_path.insert(0, _Patcher())
