"""One freshness evaluation of every asset: the old path (the 5-minute schedule's run of
``freshness_checks_job``: a process for the run, one per check) against the freshness sensor's
(the eight verdicts in the already-loaded code server, instance queries only).

    .venv/bin/python bench/bench_freshness.py

The job runs with ``dagster job execute -m trading_data.definitions -j freshness_checks_job`` on a
DAGSTER_HOME and a Dagster database of its own (``trading_data_bench_freshness_dagster``, re-created),
once with ``spawn`` (the start method the schedule's runs used) and once with the platform's default
forkserver; CPU is user + system of the whole process tree (this process is a child subreaper). The
sensor's CPU is this process's own for one evaluation, measured after the code location is loaded, as
the code server evaluates it: median of 5 after one untimed warm-up. Target (issue 11, target 4): ≤ 2 s.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

from cpu import become_subreaper, isolated_environment, run_tree

NOW = "2026-12-01T14:26:00-05:00"  # mid-session: every family has a due tick
DAGSTER_DB = "trading_data_bench_freshness_dagster"
PROJECT_ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
TARGET_CPU_SECONDS = 2.0
SPAWN = {"execution": {"config": {"multiprocess": {"start_method": {"spawn": {}}}}}}


def fresh_dagster_database() -> str:
    import psycopg

    from trading_data.db.url import market_database_url, with_database

    server = market_database_url()
    with psycopg.connect(with_database(server, "postgres"), autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {DAGSTER_DB} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {DAGSTER_DB}")
    return with_database(server, DAGSTER_DB)


def environment(home: Path, dagster_url: str) -> dict[str, str]:
    from trading_data.db.url import sqlalchemy_psycopg2_url

    return isolated_environment(
        {
            "DAGSTER_HOME": str(home),
            "TRADING_DATA_DAGSTER_DATABASE_URL": dagster_url,
            "TRADING_DATA_DAGSTER_PG_URL": sqlalchemy_psycopg2_url(dagster_url),
            "TRADING_DATA_NOW": NOW,
        }
    )


def job_cpu(env: dict[str, str], run_config: dict, home: Path) -> tuple[float, float]:
    """Wall and CPU seconds (the whole process tree) of one run of freshness_checks_job."""
    command = [str(BIN / "dagster"), "job", "execute", "-m", "trading_data.definitions"]
    command += ["-j", "freshness_checks_job"]
    if run_config:
        config_file = home / "run_config.yaml"
        config_file.write_text(json.dumps(run_config))  # JSON is YAML
        command += ["-c", str(config_file)]
    wall, cpu, done = run_tree(command, cwd=PROJECT_ROOT, env=env)
    if done.returncode != 0:
        sys.exit(f"freshness_checks_job failed:\n{(done.stdout + done.stderr)[-4000:]}")
    return wall, cpu


def sensor_cpu(env: dict[str, str], runs: int = 5) -> tuple[float, int]:
    """Median CPU seconds of one freshness_sensor evaluation in this process, and its evaluations."""
    os.environ.update(env)
    import dagster as dg

    from trading_data.definitions import defs  # the code server has the location loaded

    sensor = defs.resolve_sensor_def("freshness_sensor")
    with dg.DagsterInstance.get() as instance:
        # Every asset materialized for today's session once, as runs would have left it.
        for asset in ("selected_tickers", "position_sizes", "prices", "quotes", "trades", "options_flow"):
            instance.report_runless_asset_event(dg.AssetMaterialization(asset, partition="2026-12-01"))
        context = dg.build_sensor_context(instance=instance)
        sensor(context)  # warm-up, untimed
        samples = []
        for _ in range(runs):
            started = time.process_time()
            result = sensor(context)
            samples.append(time.process_time() - started)
        assert isinstance(result, dg.SensorResult)
        return statistics.median(samples), len(result.asset_events or [])


def main() -> None:
    become_subreaper()
    dagster_url = fresh_dagster_database()
    home = Path(tempfile.mkdtemp(prefix="bench_freshness_home_"))
    try:
        shutil.copyfile(PROJECT_ROOT / "dagster.yaml", home / "dagster.yaml")
        env = environment(home, dagster_url)
        spawn_wall, spawn_cpu = job_cpu(env, SPAWN, home)
        fork_wall, fork_cpu = job_cpu(env, {}, home)
        cpu, evaluations = sensor_cpu(env)
    finally:
        shutil.rmtree(home, ignore_errors=True)
    print(f"one freshness evaluation of every asset at {NOW}")
    print(f"{'path':58} {'wall s':>8} {'CPU s':>8}")
    print(f"{'freshness_checks_job run, spawn (the old schedule run)':58} {spawn_wall:8.2f} {spawn_cpu:8.2f}")
    print(f"{'freshness_checks_job run, forkserver (platform default)':58} {fork_wall:8.2f} {fork_cpu:8.2f}")
    print(f"{f'freshness_sensor in the code server ({evaluations} checks)':58} {'':>8} {cpu:8.3f}")
    verdict = "meets" if cpu <= TARGET_CPU_SECONDS else "misses"
    print(f"target ≤ {TARGET_CPU_SECONDS} s of CPU: {cpu:.3f} s, {verdict} it ({spawn_cpu / cpu:,.0f}× less)")
    per_day = 108  # ticks of */5 9-17 on a weekday
    print(
        f"a weekday's 108 evaluations: job {spawn_cpu * per_day / 60:.0f} CPU-min, sensor {cpu * per_day:.1f} CPU-s"
    )


if __name__ == "__main__":
    main()
