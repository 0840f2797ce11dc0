"""Fetch one 15-minute window of quotes and trades for 50 tickers from the simulator over real HTTP.

Run with ``make bench-sources`` or ``.venv/bin/python bench/bench_sources.py [--runs 3]``.

The simulator is served by uvicorn on loopback (``SimulatorServer``) with 40 ms of latency on every
request and a server-side limit of 100 requests/s (excess answered 429 and counted). By default it
runs in a child process, like a real vendor (``--server process``; faults and stats go through its
``/_sim`` admin endpoints); ``--server thread`` runs it in a thread of this process, where its JSON
encoding competes with the client's parsing for the GIL. The client is the real ``PolygonClient`` with a client-side rate limit of
100 requests/s (``RateLimit(100, 1.0)``) and fetches across tickers with the assets' engine, ``TickerFeed``
(``--concurrency`` units in flight, a unit being one ticker's pages of one feed, quotes or trades).

Tickers: by default the 50 tickers ranked 1000–1049 by average volume in the simulated universe
(``--rank``), a mid-activity slice where the window is exactly one page per feed, so the run is 100
requests and measures the transport, limiter and concurrency rather than JSON parsing of 50,000-row
pages. ``--rank 0`` takes the 50 most active instead (123 requests, ~2.8 million rows: CPU-bound).
``--limit`` lowers the page size to make more requests (``--limit 500`` ≈ 250 requests, where the
rate limit, not the concurrency, sets the minimum).

The minimum wall time printed is ``max(floor((N-1)/R)*W + L, ceil(N/C)*L)`` for N requests, a
limit of R per W seconds, latency L and concurrency C: pyrate-limiter's window is sliding over the
last W seconds and starts empty, so requests 0..R-1 may all be granted at t=0 and request k no
earlier than floor(k/R)*W (the naive N/R*W overstates the minimum by up to W: 100 requests fit in
one burst); the last request still takes L to answer; and C requests in flight, each taking at least
L, cannot finish N requests in less than ceil(N/C)*L. ``N/R*W`` is printed too, for reference.

That minimum lets any request go at any time. The assets' engine holds a slot for a whole unit of
work, a ticker's pages of one feed in turn (a feed's pages follow each other's cursors), and slots take
units in order. As in the assets, where quotes and trades are separate feeds (steps), a unit here is one
(ticker, feed): 100 units of one page in 8 slots, so the engine's floor, printed beside the minimum, is
that minimum. The engine's floor is that schedule with every request taking exactly L (and no earlier
than the rate limit allows): the time this engine would take if the client cost nothing. The target is
against the first. (Before 2026-12-04 a unit was a ticker's quotes then its trades, a schedule no asset
runs: two slots fetched 14 requests one after the other, a floor of 0.56 s against the minimum's 0.52 s.)
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import math
import multiprocessing
import os
import statistics
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import httpx
import pandas as pd

from trading_data.calendar import NEW_YORK
from trading_data.orchestration.feeds import TickerFeed
from trading_data.sources.polygon import PolygonClient
from trading_data.sources.rate_limit import RateLimit, reset_rate_limiters
from trading_data.sources.retry import RetryPolicy
from trading_data.sources.simulator.faults import Fault
from trading_data.sources.simulator.market import SimulatedMarket
from trading_data.sources.simulator.server import SimulatorServer

SESSION = dt.date(2026, 11, 25)
WINDOW_START = dt.datetime(2026, 11, 25, 10, 0, tzinfo=NEW_YORK)
WINDOW_END = WINDOW_START + dt.timedelta(minutes=15)
LATENCY_SECONDS = 0.040
RATE = RateLimit(100, 1.0)
SERVER_LIMIT_PER_SECOND = 100
TICKERS = 50
TARGET_RATIO = 1.25


@dataclass
class RunResult:
    requests: int
    pages: int
    rows: int
    wall: float
    minimum: float
    engine_minimum: float  # the engine's schedule (whole units per slot) at no client cost
    naive_minimum: float
    p50_ms: float
    p95_ms: float
    client_429: int
    retries: int
    server_rate_limited: int
    server_total: int
    server_max_per_second: int
    client_max_in_window: int
    rate_wait: float
    failures: dict[str, str]
    client_cpu: float  # CPU seconds of this process (client and, with --server thread, the simulator)
    simulator_cpu: float | None  # CPU seconds of the simulator's child process (None with --server thread)

    @property
    def ratio(self) -> float:
        return self.wall / self.minimum


class Simulator:
    """The simulator on loopback, in this process (thread) or a child process; same interface."""

    def __init__(self, mode: str):
        self.mode = mode
        self._sim: SimulatorServer | None = None
        self._process: Any = None
        self._conn: Connection | None = None
        self.base_url = ""

    def __enter__(self) -> Simulator:
        if self.mode == "thread":
            self._sim = SimulatorServer(SimulatedMarket()).start()
            _configure(self._sim)
            self.base_url = self._sim.base_url
        else:
            ctx = multiprocessing.get_context("spawn")
            parent, child = ctx.Pipe()
            self._process = ctx.Process(target=_serve_in_child, args=(child,), daemon=True)
            self._process.start()
            self._conn = parent
            if not parent.poll(60):
                raise RuntimeError("simulator process did not start")
            self.base_url = parent.recv()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._sim is not None:
            self._sim.stop()
        if self._conn is not None:
            self._conn.send("stop")
            self._process.join(timeout=15)

    def cpu_seconds(self) -> float | None:
        """CPU seconds (user + system) the simulator's child process has used so far (Linux /proc)."""
        if self._process is None:
            return None
        try:
            fields = Path(f"/proc/{self._process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return None
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def reset_stats(self) -> None:
        if self._sim is not None:
            self._sim.stats.reset()
        else:
            httpx.delete(f"{self.base_url}/_sim/stats").raise_for_status()

    def stats(self) -> dict[str, Any]:
        if self._sim is not None:
            return self._sim.stats.snapshot()
        response = httpx.get(f"{self.base_url}/_sim/stats")
        response.raise_for_status()
        return dict(response.json())


def _configure(sim: SimulatorServer) -> None:
    sim.faults.replace([Fault("latency", seconds=LATENCY_SECONDS, count=None)])
    sim.faults.rate_limit_per_second = SERVER_LIMIT_PER_SECOND


def _serve_in_child(conn: Connection) -> None:
    with SimulatorServer(SimulatedMarket()) as sim:
        _configure(sim)
        conn.send(sim.base_url)
        conn.recv()  # until the parent says stop (or goes away)


def pick_tickers(market: SimulatedMarket, rank: int, count: int = TICKERS) -> list[str]:
    """``count`` tickers from position ``rank`` of the universe ordered by average volume, descending."""
    ordered = sorted(market.universe(), key=lambda p: (-p.avg_volume, p.ticker))
    return [p.ticker for p in ordered[rank : rank + count]]


def minimum_seconds(requests: int, rate: RateLimit, latency: float, concurrency: int) -> float:
    """The least wall time ``requests`` allow (see the module docstring)."""
    if requests == 0:
        return 0.0
    rate_bound = math.floor((requests - 1) / rate.requests) * rate.per_seconds + latency
    concurrency_bound = math.ceil(requests / concurrency) * latency
    return max(rate_bound, concurrency_bound)


def engine_minimum_seconds(
    requests_by_unit: list[int], rate: RateLimit, latency: float, concurrency: int
) -> float:
    """The least wall time of the engine's schedule: units in order, each in the first free slot for all
    its requests in turn, every request ``latency`` long; no less than :func:`minimum_seconds`."""
    slots = [0.0] * max(1, concurrency)
    for count in requests_by_unit:
        first = min(range(len(slots)), key=slots.__getitem__)
        slots[first] += count * latency
    total = sum(requests_by_unit)
    return max(max(slots), minimum_seconds(total, rate, latency, concurrency))


def fetch_window(
    base_url: str, tickers: list[str], concurrency: int, limit: int
) -> tuple[PolygonClient, dict[str, str], int, float, list[int]]:
    """Quotes and trades of every ticker for the window through the assets' engine (``TickerFeed``:
    ``concurrency`` (ticker, feed) units in flight, pages consumed as they arrive); (client, failures,
    rows, seconds, requests of each unit in order)."""
    retry = RetryPolicy(attempts=5, initial_wait=0.05, max_wait=2.0, jitter=0.05, min_wait_after_429=1.0)
    client = PolygonClient.create("bench-key", base_url=base_url, rate_limit=RATE, retry=retry, timeout=30.0)

    @asynccontextmanager
    async def open_client() -> AsyncIterator[PolygonClient]:
        async with client:
            yield client

    # One unit per (ticker, feed), quotes first, as the quotes and trades assets each run one feed.
    units = [f"{ticker}/{kind}" for kind in ("quotes", "trades") for ticker in tickers]
    requests = dict.fromkeys(units, 0)

    async def pages(polygon: PolygonClient, unit: str) -> AsyncIterator[pd.DataFrame]:
        ticker, kind = unit.split("/")
        fetch = polygon.iter_quotes if kind == "quotes" else polygon.iter_trades
        async for frame in fetch(ticker, gte_ns=WINDOW_START, lt_ns=WINDOW_END, limit=limit):
            requests[unit] += 1
            yield frame

    feed = TickerFeed(
        feed="bench", tickers=units, open_clients=open_client, fetch=pages, max_concurrency=concurrency
    )
    started = time.perf_counter()
    rows = sum(len(page) for page in feed)
    return client, feed.failures, rows, time.perf_counter() - started, list(requests.values())


def run_once(sim: Simulator, tickers: list[str], concurrency: int, limit: int) -> RunResult:
    reset_rate_limiters()  # a fresh, empty client window per run (the limiter is process-wide)
    time.sleep(RATE.per_seconds + 0.1)  # and let the server's 1 s window empty
    sim.reset_stats()
    simulator_cpu, client_cpu = sim.cpu_seconds(), time.process_time()
    client, failures, rows, wall, by_unit = fetch_window(sim.base_url, tickers, concurrency, limit)
    client_cpu = time.process_time() - client_cpu
    simulator_after = sim.cpu_seconds()
    stats = client.stats
    server = sim.stats()
    return RunResult(
        requests=stats.requests,
        pages=stats.pages,
        rows=rows,
        wall=wall,
        minimum=minimum_seconds(stats.requests, RATE, LATENCY_SECONDS, concurrency),
        engine_minimum=engine_minimum_seconds(by_unit, RATE, LATENCY_SECONDS, concurrency),
        naive_minimum=stats.requests / RATE.requests * RATE.per_seconds,
        p50_ms=stats.p50_ms or 0.0,
        p95_ms=stats.p95_ms or 0.0,
        client_429=stats.rate_limited,
        retries=stats.retries,
        server_rate_limited=int(server["rate_limited"]),
        server_total=int(server["total"]),
        server_max_per_second=int(server["max_per_second"]),
        client_max_in_window=client.http.limiter.max_in_window(),
        rate_wait=stats.rate_limit_wait_seconds,
        failures=failures,
        client_cpu=client_cpu,
        simulator_cpu=None
        if simulator_cpu is None or simulator_after is None
        else simulator_after - simulator_cpu,
    )


def describe(i: int, r: RunResult) -> str:
    return (
        f"run {i}: {r.requests} requests ({r.pages} pages, {r.rows:,} rows) in {r.wall:.3f} s; "
        f"minimum {r.minimum:.3f} s (naive N/100: {r.naive_minimum:.2f} s) -> ratio {r.ratio:.2f}x "
        f"(vs naive {r.wall / r.naive_minimum:.2f}x; engine's floor {r.engine_minimum:.3f} s: "
        f"{r.wall / r.engine_minimum:.2f}x); latency p50 {r.p50_ms:.1f} ms p95 {r.p95_ms:.1f} ms; "
        f"limiter wait {r.rate_wait:.2f} s summed; client max/1s window {r.client_max_in_window}; "
        f"server: {r.server_total} requests, max {r.server_max_per_second}/s, rate_limited "
        f"{r.server_rate_limited}; client 429s {r.client_429}, retries {r.retries}; CPU: client "
        f"{r.client_cpu:.2f} s, simulator "
        + (f"{r.simulator_cpu:.2f} s" if r.simulator_cpu is not None else "(in the client's process)")
        + (f"; FAILED {r.failures}" if r.failures else "")
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument(
        "--rank", type=int, default=1000, help="first ticker's rank by average volume (0 = top 50)"
    )
    parser.add_argument("--limit", type=int, default=50_000, help="rows per page")
    parser.add_argument(
        "--server",
        choices=("process", "thread"),
        default="process",
        help="where the simulator runs (default: a child process)",
    )
    parser.add_argument(
        "--unfrozen-heap",
        action="store_true",
        help="leave the imported heap to the collector (as a step process not forked from the step forkserver)",
    )
    args = parser.parse_args()

    market = SimulatedMarket()
    tickers = pick_tickers(market, args.rank)
    if not args.unfrozen_heap:
        # As in every step forked from the step forkserver (trading_data/step_forkserver.py): what was
        # imported is out of the collector's reach, so a full collection walks only the run's objects.
        # Unfrozen, one full collection of this process's heap (dagster, pandas, pandera) takes ~90 ms,
        # and it falls inside about one run in four.
        gc.collect()
        gc.freeze()
    print(
        f"bench-sources: {len(tickers)} tickers ranked {args.rank}..{args.rank + len(tickers) - 1} by average "
        f"volume ({tickers[0]} .. {tickers[-1]}); window {WINDOW_START:%Y-%m-%d %H:%M}-{WINDOW_END:%H:%M} "
        f"New York; quotes+trades, limit {args.limit}/page"
    )
    print(
        f"simulator ({args.server}) over HTTP on loopback, latency {LATENCY_SECONDS * 1000:.0f} ms/request, server limit "
        f"{SERVER_LIMIT_PER_SECOND}/s; client RateLimit{(RATE.requests, RATE.per_seconds)}, concurrency "
        f"{args.concurrency}; imported heap {'unfrozen' if args.unfrozen_heap else 'frozen (gc.freeze), as in a step'}"
    )
    print(
        "minimum = max(floor((N-1)/100)*1s + 40ms, ceil(N/concurrency)*40ms): pyrate-limiter's sliding 1 s "
        "window grants the first 100 at once; target ratio <= 1.25x"
    )
    results: list[RunResult] = []
    with Simulator(args.server) as sim:
        for i in range(1, args.runs + 1):
            result = run_once(sim, tickers, args.concurrency, args.limit)
            results.append(result)
            print(describe(i, result), flush=True)
    by_wall = sorted(results, key=lambda r: r.wall)
    best, median = by_wall[0], by_wall[len(by_wall) // 2]
    ratios = [r.ratio for r in results]
    limited = sum(r.server_rate_limited for r in results)
    print(f"best:   {best.wall:.3f} s for {best.requests} requests, ratio {best.ratio:.2f}x")
    print(
        f"median: {median.wall:.3f} s for {median.requests} requests, ratio {statistics.median(ratios):.2f}x"
    )
    ok = statistics.median(ratios) <= TARGET_RATIO and limited == 0 and not any(r.failures for r in results)
    print(
        f"target: median ratio <= {TARGET_RATIO}x and 0 rate_limited -> {'MET' if ok else 'MISSED'} "
        f"(rate_limited over all runs: {limited})"
    )
    engine = statistics.median(r.wall / r.engine_minimum for r in results)
    print(
        f"against the engine's floor (whole (ticker, feed) units per slot, {median.engine_minimum:.3f} s): median "
        f"{engine:.2f}x, the client's own cost"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
