"""Three sessions of the whole pipeline: one batched run of the range against one run per session.

    .venv/bin/python bench/bench_backfill_runs.py

Runs ``dagster job execute -m trading_data.definitions -j full_pipeline_job`` (the eight session assets
and their checks) for 2026-11-24, 2026-11-25 and 2026-11-27 (Thanksgiving between) with 10 small
simulator tickers, the in-process simulator, and the databases and DAGSTER_HOME of
``bench/bench_session_run.py`` (dropped and re-created before each contender): first as three runs
tagged ``dagster/partition`` (what a backfill launched before the assets had a multi-run BackfillPolicy),
then as one run tagged with the range (what a backfill launches now, up to 20 sessions a run). Wall and
CPU (user + system) of the whole process tree, the forkserver and step processes included
(``bench/cpu.py``), and the rows stored, which must be equal.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

from bench_session_run import environment, fresh_databases
from cpu import become_subreaper, run_tree

SESSIONS = ("2026-11-24", "2026-11-25", "2026-11-27")
PROJECT_ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def execute(tags: dict[str, str], env: dict[str, str]) -> tuple[float, float]:
    command = [
        str(BIN / "dagster"),
        *("job", "execute", "-m", "trading_data.definitions", "-j", "full_pipeline_job"),
        *("--tags", json.dumps(tags)),
    ]
    wall, cpu, done = run_tree(command, cwd=PROJECT_ROOT, env=env)
    if done.returncode != 0:
        sys.exit(f"run {tags} failed:\n{(done.stdout + done.stderr)[-4000:]}")
    return wall, cpu


def stored_rows(url: str) -> int:
    import psycopg

    from trading_data.scheduling import PIPELINE_ASSETS

    with psycopg.connect(url) as conn:
        return sum(conn.execute(f"SELECT count(*) FROM market.{t}").fetchone()[0] for t in PIPELINE_ASSETS)


def contender(runs: list[dict[str, str]]) -> tuple[float, float, int]:
    market, dagster = fresh_databases()
    home = Path(tempfile.mkdtemp(prefix="bench_backfill_home_"))
    try:
        shutil.copyfile(PROJECT_ROOT / "dagster.yaml", home / "dagster.yaml")
        env = environment(home, market, dagster)
        totals = [execute(tags, env) for tags in runs]
    finally:
        shutil.rmtree(home, ignore_errors=True)
    return sum(w for w, _ in totals), sum(c for _, c in totals), stored_rows(market)


def main() -> None:
    become_subreaper()
    per_session = contender([{"dagster/partition": key} for key in SESSIONS])
    batched = contender(
        [
            {
                "dagster/asset_partition_range_start": SESSIONS[0],
                "dagster/asset_partition_range_end": SESSIONS[-1],
            }
        ]
    )
    print(f"full_pipeline_job for {', '.join(SESSIONS)}, 10 simulator tickers")
    print(f"{'contender':28} {'runs':>5} {'wall s':>8} {'CPU s':>8} {'rows':>9}")
    for name, runs, (wall, cpu, rows) in (
        ("one run per session", len(SESSIONS), per_session),
        ("one batched run", 1, batched),
    ):
        print(f"{name:28} {runs:5d} {wall:8.1f} {cpu:8.1f} {rows:9,d}")
    print(
        f"batched / per session: wall {batched[0] / per_session[0]:.2f}x, CPU {batched[1] / per_session[1]:.2f}x; "
        f"rows equal: {batched[2] == per_session[2]}"
    )
    print(f"load average {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
