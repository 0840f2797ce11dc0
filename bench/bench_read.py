"""The read API's memory and speed on one session of quotes already stored: a whole read against a
chunked one (peak RSS of a fresh interpreter each), and ``trading-data export`` against psql's
``\\copy`` of the same rows to CSV, in the same run.

    .venv/bin/python bench/bench_read.py --url postgresql://.../db --session 2026-11-27 [--repeat 3]

The database must hold quotes for the session (materialize it first, e.g. with the simulator).
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PYTHON = sys.executable
PSQL = next(Path(sys.prefix).rglob("pginstall/bin/psql"), None)

READ = """
import resource, sys, time
from trading_data import read
url, session, chunk = sys.argv[1], sys.argv[2], int(sys.argv[3])
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
started = time.perf_counter()
if chunk:
    rows = sum(len(c) for c in read.quotes(sessions=session, chunk_rows=chunk, database_url=url))
else:
    rows = len(read.quotes(sessions=session, database_url=url))
seconds = time.perf_counter() - started
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(rows, seconds, base // 1024, peak // 1024)
"""


def read_run(url: str, session: str, chunk: int) -> tuple[int, float, int, int]:
    out = subprocess.run(
        [PYTHON, "-c", READ, url, session, str(chunk)], capture_output=True, text=True, check=True
    )
    rows, seconds, base, peak = out.stdout.split()
    return int(rows), float(seconds), int(base), int(peak)


def export_run(url: str, session: str) -> float:
    folder = Path(tempfile.mkdtemp(prefix="bench_read_"))
    env = {"TRADING_DATA_DATABASE_URL": url, "PATH": "/usr/bin:/bin"}
    started = time.perf_counter()
    subprocess.run(
        [str(Path(PYTHON).with_name("trading-data")), "export", "--out", str(folder), "--tables", "quotes",
         "--session", session, "--no-progress"],
        check=True, env=env, capture_output=True,
    )  # fmt: skip
    seconds = time.perf_counter() - started
    shutil.rmtree(folder)
    return seconds


def psql_run(url: str, session: str) -> float:
    from trading_data.calendar import session_window

    start, end = session_window(session)
    target = Path(tempfile.mkdtemp(prefix="bench_read_")) / "quotes.csv"
    query = (
        f"\\copy (SELECT * FROM market.quotes WHERE ts >= '{start.isoformat()}' AND ts < '{end.isoformat()}' "
        f"ORDER BY ts, ticker, sequence_number) TO '{target}' CSV"
    )
    started = time.perf_counter()
    subprocess.run([str(PSQL), url, "-qc", query], check=True)
    seconds = time.perf_counter() - started
    shutil.rmtree(target.parent)
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--session", default="2026-11-27")
    parser.add_argument("--chunk-rows", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    best: dict[str, list[float]] = {"whole": [], "chunked": [], "export": [], "psql": []}
    peaks: dict[str, int] = {}
    rows = 0
    for _ in range(args.repeat):  # round robin: load on the machine weighs on all alike
        for label, chunk in (("whole", 0), ("chunked", args.chunk_rows)):
            rows, seconds, base, peak = read_run(args.url, args.session, chunk)
            best[label].append(seconds)
            peaks[label] = min(peaks.get(label, 1 << 40), peak - base)
        best["export"].append(export_run(args.url, args.session))
        if PSQL is not None:
            best["psql"].append(psql_run(args.url, args.session))
    print(f"quotes of {args.session}: {rows:,} rows; best of {args.repeat}")
    for label in ("whole", "chunked"):
        seconds = min(best[label])
        print(
            f"  read.quotes {label:8s} {seconds:6.2f} s  {rows / seconds:10,.0f} rows/s  +{peaks[label]} MiB RSS"
        )
    psql = min(best["psql"]) if best["psql"] else float("nan")
    export = min(best["export"])
    print(f"  psql \\copy to CSV     {psql:6.2f} s (baseline)")
    print(f"  trading-data export  {export:6.2f} s  {export / psql:.2f} x psql (process start-up included)")


if __name__ == "__main__":
    main()
