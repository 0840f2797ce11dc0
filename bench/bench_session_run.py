"""A whole session run through the CLI: CPU of the run against the sum of its steps' own compute.

    .venv/bin/python bench/bench_session_run.py [--only forkserver|spawn] [--thin]

Runs ``dagster asset materialize -m trading_data.definitions --select '*' --partition 2026-11-25`` on the
workload issue 11 measured: the session's 10 active tickers as ``selected_tickers`` picks them from the
in-process simulator (the platform's defaults: no ``TRADING_DATA_SYMBOLS``). ``--thin`` pins instead the
simulator's 10 thinnest tickers (``TRADING_DATA_SYMBOLS``): the steps then compute ~1/7 as much, so the
figure weighs the run's fixed cost. Each run has a DAGSTER_HOME and
two databases of its own (``trading_data_bench_session`` for the data, ``..._dagster`` for the
instance; dropped and re-created first), twice: with Dagster's ``spawn`` start method (the baseline:
every step process imports the definitions) and with the platform's default (a forkserver with the
definitions preloaded). CPU is user + system of the whole process tree: this process is a child
subreaper, so the forkserver and its step processes are reaped here and counted (``bench/cpu.py``).
Steps' own compute is given two ways: the sum of the run's STEP_SUCCESS durations from the event log
(wall time, which grows with the machine's load), and the CPU seconds of the same spans in the steps'
processes (``bench/step_cpu``), which does not. The rest of the run's CPU is split by process: the step
processes outside their compute, the CLI's, the forkserver's, the compute-log watchers'. Target (issue 11,
target 2): CPU of the run ≤ 1.3× the steps' own compute.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

from cpu import (
    become_subreaper,
    isolated_environment,
    read_process_cpu,
    read_step_cpu,
    run_tree,
    step_cpu_environment,
    write_bytecode,
)

SESSION = "2026-11-25"
THIN_SYMBOLS = "PVO,FJQ,ANV,YOQL,BVTU,KXT,IJ,AIZQ,OMP,MXNV"  # the simulator's 10 thinnest tickers
MARKET_DB = "trading_data_bench_session"
DAGSTER_DB = "trading_data_bench_session_dagster"
PROJECT_ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
TARGET = 1.3
START_METHODS = {
    "spawn": {"execution": {"config": {"multiprocess": {"start_method": {"spawn": {}}}}}},
    "forkserver": {},  # the platform's default (trading_data/orchestration/executor.py)
}


def fresh_databases() -> tuple[str, str]:
    import psycopg

    from trading_data.db.migrate import migrate
    from trading_data.db.url import market_database_url, with_database

    server = market_database_url()
    with psycopg.connect(with_database(server, "postgres"), autocommit=True) as conn:
        for name in (MARKET_DB, DAGSTER_DB):
            conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
            conn.execute(f"CREATE DATABASE {name}")
    market = with_database(server, MARKET_DB)
    migrate(market)
    return market, with_database(server, DAGSTER_DB)


def environment(home: Path, market: str, dagster: str, symbols: str | None) -> dict[str, str]:
    """The run's environment; ``symbols`` pins the tickers (else selection picks the session's active ones)."""
    from trading_data.db.url import sqlalchemy_psycopg2_url

    settings = {
        "DAGSTER_HOME": str(home),
        "TRADING_DATA_DATABASE_URL": market,
        "TRADING_DATA_DAGSTER_DATABASE_URL": dagster,
        "TRADING_DATA_DAGSTER_PG_URL": sqlalchemy_psycopg2_url(dagster),
        "TRADING_DATA_NOW": "2026-11-27T12:00:00-05:00",  # the session is closed: fetched whole
    }
    if symbols:
        settings["TRADING_DATA_SYMBOLS"] = symbols
    return isolated_environment(settings)


def run_session(name: str, run_config: dict, env: dict[str, str]) -> tuple[float, float]:
    command = [
        str(BIN / "dagster"),
        "asset",
        "materialize",
        "-m",
        "trading_data.definitions",
        "--select",
        "*",
        "--partition",
        SESSION,
        *(["--config-json", json.dumps(run_config)] if run_config else []),
    ]
    wall, cpu, done = run_tree(command, cwd=PROJECT_ROOT, env=env)
    if done.returncode != 0:
        sys.exit(f"{name} run failed:\n{(done.stdout + done.stderr)[-4000:]}")
    return wall, cpu


def steps_compute(env: dict[str, str]) -> tuple[float, int]:
    """Sum of the latest run's STEP_SUCCESS durations (seconds) and its number of steps."""
    import dagster as dg

    saved = dict(os.environ)
    os.environ.update(env)
    try:
        with dg.DagsterInstance.get() as instance:
            run = instance.get_runs(limit=1)[0]
            records = instance.get_records_for_run(
                run.run_id, of_type=dg.DagsterEventType.STEP_SUCCESS
            ).records
            durations = [r.event_log_entry.dagster_event.event_specific_data.duration_ms for r in records]
    finally:
        os.environ.clear()
        os.environ.update(saved)
    return sum(durations) / 1000, len(durations)


def active_tickers(market: str) -> list[str]:
    """The tickers the run collected (``selected_tickers``' active rows for the session)."""
    import psycopg

    with psycopg.connect(market) as conn:
        rows = conn.execute(
            "SELECT ticker FROM market.selected_tickers WHERE session = %s AND is_active ORDER BY ticker",
            (SESSION,),
        ).fetchall()
    return [ticker for (ticker,) in rows]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=sorted(START_METHODS))
    parser.add_argument(
        "--thin", action="store_true", help=f"pin the simulator's 10 thinnest tickers ({THIN_SYMBOLS})"
    )
    args = parser.parse_args()
    symbols = THIN_SYMBOLS if args.thin else None
    become_subreaper()
    write_bytecode()
    rows = []
    for name, run_config in START_METHODS.items():
        if args.only and name != args.only:
            continue
        market, dagster = fresh_databases()
        home = Path(tempfile.mkdtemp(prefix="bench_session_home_"))
        try:
            shutil.copyfile(PROJECT_ROOT / "dagster.yaml", home / "dagster.yaml")
            env = environment(home, market, dagster, symbols)
            step_file = home / "step_cpu.txt"
            wall, cpu = run_session(name, run_config, step_cpu_environment(env, step_file))
            compute, steps = steps_compute(env)
            tickers = active_tickers(market)
            step_cpu = sum(read_step_cpu(step_file).values())
            by_process = read_process_cpu(step_file)
        finally:
            shutil.rmtree(home, ignore_errors=True)
        rows.append((name, wall, cpu, compute, step_cpu, steps))
        print(f"{name}: active tickers {', '.join(tickers)}")
        print(
            f"{name}: {wall:.1f} s wall, {cpu:.1f} s CPU, steps' compute {compute:.1f} s wall, "
            f"{step_cpu:.1f} s CPU ({steps} steps)"
        )
        # Where the run's CPU beyond its steps' compute goes, by process (bench/step_cpu records each
        # interpreter's own CPU when it ends); what no interpreter recorded (the compute logs' `tail`
        # processes, a killed process) is the rest.
        outside = by_process.get("step", 0.0) - step_cpu
        parts = {
            "steps' compute": step_cpu,
            "step processes outside it": outside,
            "CLI process": by_process.get("cli", 0.0),
            "forkserver": by_process.get("forkserver", 0.0),
            "compute-log watchers": by_process.get("log-watcher", 0.0),
            "other interpreters": by_process.get("other", 0.0),
        }
        parts["not recorded"] = cpu - sum(parts.values())
        print(f"{name}: CPU by process: " + ", ".join(f"{k} {v:.1f} s" for k, v in parts.items()))
        print(f"{name}: step processes outside their compute: {outside / steps:.2f} s each")
    workload = f"the 10 thinnest tickers ({THIN_SYMBOLS})" if args.thin else "the 10 tickers selection picks"
    print(f"\nsession run {SESSION}, {workload}, dagster asset materialize --select '*'")
    print(
        f"{'start method':14} {'wall s':>8} {'CPU s':>8} {'steps s':>8} {'steps CPU s':>12} {'steps':>6} "
        f"{'CPU / steps':>12} {'CPU / steps CPU':>16}"
    )
    for name, wall, cpu, compute, step_cpu, steps in rows:
        print(
            f"{name:14} {wall:8.1f} {cpu:8.1f} {compute:8.1f} {step_cpu:12.1f} {steps:6d} "
            f"{cpu / compute:12.2f} {cpu / step_cpu:16.2f}"
        )
    print(f"load average {os.getloadavg()[0]:.1f} (the steps' wall durations grow with it, their CPU less)")
    for name, _, cpu, compute, step_cpu, _ in rows:
        for label, base in (("durations", compute), ("CPU", step_cpu)):
            verdict = "meets" if cpu / base <= TARGET else "misses"
            print(f"target CPU ≤ {TARGET}× steps' compute ({label}): {name} {cpu / base:.2f}×, {verdict} it")


if __name__ == "__main__":
    main()
