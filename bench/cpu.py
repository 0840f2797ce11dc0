"""CPU of benchmarked processes: a command's whole process tree, and each Dagster step's own compute.

``become_subreaper()`` first: descendants that outlive their parent (a run's forkserver and its step
processes) are then re-parented to this process, reaped by :func:`run_tree` and counted in its CPU.
:func:`step_cpu_environment` adds ``bench/step_cpu`` to the tree's PYTHONPATH: its ``sitecustomize``
records each step's CPU seconds (what Dagster times as the step's duration), which
:func:`read_step_cpu` sums; the CPU is that of the step's process, so it does not grow with the load
of the machine as the STEP_SUCCESS durations (wall time) do.
"""

from __future__ import annotations

import compileall
import ctypes
import os
import resource
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

PR_SET_CHILD_SUBREAPER = 36
STEP_CPU_DIR = Path(__file__).resolve().parent / "step_cpu"
STEP_CPU_VARIABLE = "TRADING_DATA_BENCH_STEP_CPU"
# Settings of the caller's shell a benchmark must not inherit (they would point the run elsewhere).
ISOLATED_PREFIXES = ("TRADING_DATA_", "DAGSTER_", "POLYGON", "UNUSUAL_WHALES")
KEPT = ("TRADING_DATA_PG_PORT", "TRADING_DATA_PGDATA")


PACKAGE_DIR = Path(__file__).resolve().parents[1] / "trading_data"


def write_bytecode() -> None:
    """Compile the platform's modules to ``__pycache__`` (untimed), as ``pip install .`` does in the image.
    Dagster's and pandas' modules have their ``.pyc`` from the install; an editable install under
    ``PYTHONDONTWRITEBYTECODE=1`` (set on this machine and in the Dockerfile) would otherwise compile ours
    from source in every interpreter, ~0.1 s of CPU that no deployed process pays."""
    if not compileall.compile_dir(PACKAGE_DIR, quiet=1):
        sys.exit(f"compiling {PACKAGE_DIR} failed")


def become_subreaper() -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        sys.exit("prctl(PR_SET_CHILD_SUBREAPER) failed: the process tree's CPU could not be counted whole")


def isolated_environment(overrides: Mapping[str, str]) -> dict[str, str]:
    """This process's environment without the platform's and vendors' settings (but the embedded
    server's port and data folder), then ``overrides``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(ISOLATED_PREFIXES) or k in KEPT}
    env.update(overrides)
    return env


def reap_all() -> None:
    """Wait for every descendant left to this subreaper (a forkserver outlives the CLI)."""
    while True:
        try:
            os.wait()
        except ChildProcessError:
            return


def run_tree(
    command: Sequence[str], *, cwd: Path | None = None, env: Mapping[str, str] | None = None
) -> tuple[float, float, subprocess.CompletedProcess[str]]:
    """Run ``command`` to its end and every process it left; wall and CPU (user + system) seconds of
    the whole tree, and the completed process (output captured)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run(list(command), cwd=cwd, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - started
    reap_all()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime), done


def step_cpu_environment(env: Mapping[str, str], output: Path) -> dict[str, str]:
    """``env`` with the step CPU recorder loaded by every interpreter, writing to ``output``."""
    path = os.pathsep.join(p for p in (str(STEP_CPU_DIR), env.get("PYTHONPATH", "")) if p)
    return {**env, "PYTHONPATH": path, STEP_CPU_VARIABLE: str(output)}


def read_process_cpu(output: Path) -> dict[str, float]:
    """CPU seconds by process role (``step``, ``cli``, ``forkserver``, ``log-watcher``, ``other``) recorded
    beside ``output``."""
    roles: dict[str, float] = {}
    path = Path(f"{output}.processes")
    if path.exists():
        for line in path.read_text().splitlines():
            _, role, seconds = line.split(" ")
            roles[role] = roles.get(role, 0.0) + float(seconds)
    return roles


def read_step_cpu(output: Path) -> dict[str, float]:
    """CPU seconds per step key recorded in ``output`` (a retried step's attempts add up)."""
    steps: dict[str, float] = {}
    if output.exists():
        for line in output.read_text().splitlines():
            key, seconds = line.rsplit(" ", 1)
            steps[key] = steps.get(key, 0.0) + float(seconds)
    return steps
