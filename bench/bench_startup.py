"""Start-up of a process that loads the code location: ``import trading_data.definitions`` against
``import dagster, pandas`` (the floor every Dagster + pandas process pays), each in a fresh interpreter.

Median of 5 runs per side, alternating, wall time and CPU (user + system of the child) side by side, after
the platform's modules are compiled to bytecode as an install compiles them (``cpu.write_bytecode``).
Target (issue 11, target 2): the definitions ≤ 1.25× the floor.

    .venv/bin/python bench/bench_startup.py [--runs 5]
"""

from __future__ import annotations

import argparse
import statistics
import sys

from cpu import run_tree, write_bytecode

CASES = {
    "import dagster, pandas": "import dagster, pandas",
    "import trading_data.definitions": "import trading_data.definitions",
}
TARGET = 1.25


def run_once(code: str) -> tuple[float, float]:
    """Wall and CPU seconds of one fresh interpreter running ``code``."""
    wall, cpu, done = run_tree([sys.executable, "-c", code])
    done.check_returncode()
    return wall, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    write_bytecode()
    for code in CASES.values():  # warm the page cache once, untimed
        run_once(code)
    results: dict[str, list[tuple[float, float]]] = {name: [] for name in CASES}
    for _ in range(args.runs):
        for name, code in CASES.items():
            results[name].append(run_once(code))
    medians = {
        name: (statistics.median(w for w, _ in runs), statistics.median(c for _, c in runs))
        for name, runs in results.items()
    }
    floor_wall, floor_cpu = medians["import dagster, pandas"]
    print(f"start-up, median of {args.runs} fresh interpreters (alternating)")
    print(f"{'':34} {'wall s':>8} {'CPU s':>8} {'× floor (wall)':>15} {'× floor (CPU)':>14}")
    for name, (wall, cpu) in medians.items():
        print(f"{name:34} {wall:8.2f} {cpu:8.2f} {wall / floor_wall:15.2f} {cpu / floor_cpu:14.2f}")
    ours_wall, ours_cpu = medians["import trading_data.definitions"]
    for label, ratio in (("wall", ours_wall / floor_wall), ("CPU", ours_cpu / floor_cpu)):
        verdict = "meets" if ratio <= TARGET else "misses"
        print(f"target: definitions ≤ {TARGET}× the floor ({label}): {ratio:.2f}×, {verdict} it")


if __name__ == "__main__":
    main()
