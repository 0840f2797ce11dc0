"""Store a whole session of SPY quotes (~2,000,000 rows) through the real ``quotes`` asset and IO manager.

Run with ``make bench-quotes-session`` or ``.venv/bin/python bench/bench_quotes_session.py``.

Materializes ``selected_tickers`` (``symbols=["SPY"]``) and then ``quotes`` for 2026-11-25 with
``dg.materialize`` into a dedicated database, ``trading_data_bench_quotes`` (dropped, re-created and
migrated first; development data is never touched). The simulator answers in process (the default
``PolygonResource(source="simulated")``) or over HTTP (``--http``: a ``SimulatorServer`` in a child
process, so its memory is not counted). Prints rows stored, wall time, rows/s and peak RSS.

The work runs in a fresh child interpreter (``--child``) so ``ru_maxrss`` (peak RSS, KiB on Linux)
measures only this process: imports, the materializations and nothing else. RSS is printed before
the work starts, after the selection and after the quotes, so the delta is visible.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import subprocess
import sys
import time
from multiprocessing.connection import Connection
from typing import Any

from spy_session import QUIET, SESSION, TICKER, fresh_database

BENCH_DATABASE = "trading_data_bench_quotes"
TARGET_PEAK_RSS_MIB = 512  # issue 11, target 5


def peak_rss_mib() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def current_rss_mib() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def rss_line(label: str) -> str:
    return f"{label}: RSS {current_rss_mib():,.0f} MiB, peak RSS {peak_rss_mib():,.0f} MiB"


def _serve_in_child(conn: Connection) -> None:
    from trading_data.sources.simulator.server import SimulatorServer

    with SimulatorServer() as sim:
        conn.send(sim.base_url)
        conn.recv()


def child(http: bool) -> int:
    print(rss_line("before imports"), flush=True)
    import dagster as dg
    import psycopg

    from trading_data.db.io_manager import PostgresPandasIOManager
    from trading_data.db.resources import MarketDatabase
    from trading_data.defs.market_data.assets import quotes
    from trading_data.defs.selection.assets import selected_tickers
    from trading_data.settings import PipelineSettingsResource
    from trading_data.sources.resources import PolygonResource

    url = fresh_database(BENCH_DATABASE)
    server: Any = None
    polygon = PolygonResource(source="simulated", retry_initial_wait_seconds=0.05)
    if http:
        ctx = multiprocessing.get_context("spawn")
        parent, other = ctx.Pipe()
        server = ctx.Process(target=_serve_in_child, args=(other,), daemon=True)
        server.start()
        sim_url = parent.recv()
        polygon = PolygonResource(source="simulated", simulator_url=sim_url, retry_initial_wait_seconds=0.05)
    resources = {
        "io_manager": PostgresPandasIOManager(database_url=url),
        "database": MarketDatabase(database_url=url),
        "settings": PipelineSettingsResource(symbols=[TICKER]),
        "polygon": polygon,
    }
    try:
        print(rss_line("after imports, database ready"), flush=True)
        started = time.perf_counter()
        selection = dg.materialize(
            [selected_tickers], partition_key=SESSION, resources=resources, run_config=QUIET
        )
        assert selection.success
        print(rss_line(f"after selected_tickers ({time.perf_counter() - started:.1f} s)"), flush=True)
        rss_before_quotes = peak_rss_mib()

        started = time.perf_counter()
        result = dg.materialize(
            [quotes, selected_tickers],
            selection=[quotes],
            partition_key=SESSION,
            resources=resources,
            run_config=QUIET,
        )
        seconds = time.perf_counter() - started
        assert result.success
    finally:
        if server is not None:
            parent.send("stop")
            server.join(timeout=15)
    peak = peak_rss_mib()
    print(rss_line(f"after quotes ({seconds:.1f} s)"), flush=True)

    metadata = result.asset_materializations_for_node("quotes")[0].metadata
    with psycopg.connect(url) as conn:
        stored = conn.execute("SELECT count(*) FROM market.quotes WHERE ticker = %s", (TICKER,)).fetchone()
    rows = int(stored[0]) if stored else 0

    def value(key: str) -> Any:
        item = metadata.get(key)
        return getattr(item, "value", item)

    print(
        f"rows stored: {rows:,} ({TICKER}, session {SESSION}; rows_written {value('rows_written')}, "
        f"chunks {value('chunks')}, polygon requests {value('polygon/requests')})"
    )
    print(
        f"wall time (quotes materialization): {seconds:.1f} s -> {rows / seconds:,.0f} rows/s "
        f"(fetch_seconds {value('fetch_seconds')}, write_seconds {value('write_seconds')})"
    )
    print(
        f"peak RSS: {peak:,.0f} MiB (peak before quotes {rss_before_quotes:,.0f} MiB; delta "
        f"{peak - rss_before_quotes:,.0f} MiB); target < {TARGET_PEAK_RSS_MIB} MiB -> "
        f"{'MET' if peak < TARGET_PEAK_RSS_MIB else 'MISSED'}"
    )
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--http", action="store_true", help="simulator over HTTP (child process)")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(args.http)
    print(
        f"bench-quotes-session: {TICKER} quotes for {SESSION} into database {BENCH_DATABASE}; simulator "
        f"{'over HTTP' if args.http else 'in process'}; fresh child interpreter",
        flush=True,
    )
    command = [sys.executable, os.path.abspath(__file__), "--child", *(["--http"] if args.http else [])]
    return subprocess.run(command, check=False).returncode


if __name__ == "__main__":
    raise SystemExit(main())
