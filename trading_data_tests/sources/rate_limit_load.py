"""Several OS processes collecting through the real ``PolygonClient`` at once, against one simulator
whose server-side limit equals the plan, all sharing one key's rate-limit window in a shared store.

Used by ``test_rate_limit_load.py`` and ``bench/bench_rate_limit.py``. Each worker is
``python -m trading_data_tests.sources.rate_limit_load worker ...``: it pages its tickers' minute bars
of one session (``--page-size`` bars a page, the tickers at once) and prints one JSON line with its
requests, the 429s it saw and the ``time.monotonic()`` of each permit's grant and settling
(CLOCK_MONOTONIC: one clock for every process of the host).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from trading_data.sources.rate_limit import max_in_window

TICKERS = ("AAPL", "MSFT", "NVDA", "AMZN", "GOOGL", "META", "TSLA", "JPM", "XOM", "UNH", "V", "WMT")
SESSION = "2026-11-20"  # a past NYSE session: its bars never change
READY = "ready"  # a worker's first line: set up and waiting for the start (a line on its stdin)


@dataclass
class LoadResult:
    """What a load run measured (``grants``: every worker's permit times, merged and sorted)."""

    store: str
    workers: int
    limit_per_second: int  # requests per ``window`` seconds
    window: float
    requests: int
    server_requests: int
    server_refused: int
    client_429s: int
    server_max_per_second: int
    grants: list[float] = field(repr=False)
    permits: list[tuple[float, float]] = field(repr=False)  # (granted, settled), every worker's

    def max_in_window(self, window: float) -> int:
        """The most permits granted across all workers within any ``window`` seconds."""
        return max_in_window(self.grants, window)

    @property
    def plan_per_second(self) -> float:
        return self.limit_per_second / self.window

    @property
    def throughput(self) -> float:
        """Requests per second after the first window: a sliding window starts empty and lets the
        first ``limit`` permits through at once, so the steady rate is ``(N - limit) / span``."""
        span = self.grants[-1] - self.grants[0]
        return (len(self.grants) - self.limit_per_second) / span if span > 0 else float("inf")

    @property
    def share(self) -> float:
        """Throughput as a share of the plan."""
        return self.throughput / self.plan_per_second


def run_load(
    *,
    store: str,
    store_url: str,
    key: str,
    workers: int = 4,
    limit_per_second: int = 10,
    window: float = 1.0,
    page_size: int = 30,
    tickers_per_worker: int = 1,
    env: dict[str, str] | None = None,
) -> LoadResult:
    """Serve the simulator with a server-side limit of ``limit_per_second`` requests per ``window``
    seconds, run ``workers`` worker processes at once with a client plan of the same limit, each
    paging ``tickers_per_worker`` tickers at once, and gather the figures."""
    from trading_data.sources.simulator.server import SimulatorServer

    with SimulatorServer() as sim:
        sim.faults.rate_limit_per_second = limit_per_second
        sim.faults.rate_limit_window_seconds = window
        command = [sys.executable, "-m", __name__, "worker", "--base-url", sim.base_url]
        command += ["--store", store, "--store-url", store_url, "--key", key]
        command += ["--limit-per-second", str(limit_per_second), "--window", str(window)]
        command += ["--page-size", str(page_size)]
        procs = [
            subprocess.Popen(
                [*command, "--ticker", ",".join(TICKERS[i::workers][:tickers_per_worker])],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                env={**os.environ, **(env or {})},
            )
            for i in range(workers)
        ]
        done = _start_together(procs)
        failed = [
            err.strip().splitlines()[-1:] for p, (_, err) in zip(procs, done, strict=True) if p.returncode
        ]
        if failed:
            raise RuntimeError(f"{len(failed)} of {workers} load workers failed: {failed}")
        outputs = [out for out, _ in done]
        stats = sim.stats.snapshot()
    reports = [json.loads(out.strip().splitlines()[-1]) for out in outputs]
    return LoadResult(
        store=store,
        workers=workers,
        limit_per_second=limit_per_second,
        window=window,
        requests=sum(r["requests"] for r in reports),
        server_requests=stats["total"],
        server_refused=stats["rate_limited"],
        client_429s=sum(r["rate_limited"] for r in reports),
        server_max_per_second=stats["max_per_second"],
        grants=sorted(t for r in reports for t in r["grants"]),
        permits=sorted((granted, settled) for r in reports for granted, settled in r["settled"]),
    )


async def _collect(args: argparse.Namespace) -> dict[str, object]:
    import httpx

    from trading_data.sources.polygon import PolygonClient
    from trading_data.sources.rate_limit import RateLimit
    from trading_data.sources.rate_limit_store import PROCESS, RateLimitStore

    store = PROCESS if args.store == "process" else RateLimitStore(args.store, args.store_url)
    # Warm up outside the limit (the simulator's /_sim endpoints are not rate limited): a cold
    # process's first request spends tens of milliseconds importing and connecting after its permit,
    # which is noise here; then start with the others.
    async with httpx.AsyncClient(base_url=args.base_url) as warm:
        (await warm.get("/_sim/stats")).raise_for_status()
    # The client (and its limiter's connection to the store) is made before the start: making it
    # takes a loaded machine up to half a second, which would stagger the workers' first requests.
    async with PolygonClient.create(
        args.key,
        base_url=args.base_url,
        rate_limit=RateLimit(args.limit_per_second, args.window),
        rate_limit_store=store,
    ) as client:
        await _wait_for_start()
        # Each ticker pages one request at a time; several tickers keep several requests in flight.
        await asyncio.gather(
            *(
                client.bars(ticker, 1, "minute", SESSION, SESSION, limit=args.page_size)
                for ticker in args.ticker.split(",")
            )
        )
        return {
            "requests": client.stats.requests,
            "rate_limited": client.stats.rate_limited,
            "grants": list(client.http.limiter.grants),
            "settled": list(client.http.limiter.settled),
        }


async def _acquire(args: argparse.Namespace) -> dict[str, object]:
    from trading_data.sources.rate_limit import RateLimit, shared_rate_limiter
    from trading_data.sources.rate_limit_store import RateLimitStore

    store = RateLimitStore(args.store, args.store_url)
    limiter = shared_rate_limiter("polygon", args.key, RateLimit(args.limit_per_second, 1.0), store)
    await _wait_for_start()
    for _ in range(args.count):
        limiter.settle(await limiter.acquire())  # a request answered at once
    limiter.close()
    return {
        "requests": 0,
        "rate_limited": 0,
        "grants": list(limiter.grants),
        "settled": list(limiter.settled),
    }


async def _wait_for_start() -> None:
    """Say ``READY`` and wait for the start line, so that every worker starts at once however long
    the others took to import and connect (tens of seconds each on a loaded machine)."""
    print(READY, flush=True)
    await asyncio.to_thread(sys.stdin.readline)


def _start_together(procs: list[subprocess.Popen[str]]) -> list[tuple[str, str]]:
    """Wait until every process is ``READY``, start them all, and return their (stdout, stderr)."""
    for proc in procs:
        assert proc.stdout is not None
        line = proc.stdout.readline()  # a worker that failed to start ends its output: ""
        if line.strip() != READY:
            break
    for proc in procs:
        assert proc.stdin is not None
        with contextlib.suppress(BrokenPipeError):
            proc.stdin.write("go\n")
            proc.stdin.flush()
    return [proc.communicate(timeout=600) for proc in procs]


def acquire_in_processes(
    *, store: str, store_url: str, key: str, processes: int, limit_per_second: int, count: int
) -> list[list[float]]:
    """``processes`` processes each take ``count`` permits of one key's shared window at once;
    returns each one's permit times."""
    command = [sys.executable, "-m", __name__, "acquire", "--store", store, "--store-url", store_url]
    command += ["--key", key, "--limit-per-second", str(limit_per_second), "--count", str(count)]
    procs = [
        subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        for _ in range(processes)
    ]
    outputs = [out for out, _ in _start_together(procs)]
    if any(p.returncode for p in procs):
        raise RuntimeError(f"acquiring processes failed (exit {[p.returncode for p in procs]})")
    return [json.loads(out.strip().splitlines()[-1])["grants"] for out in outputs]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="rate_limit_load")
    parser.add_argument("role", choices=["worker", "acquire"])
    parser.add_argument("--base-url", default="")
    parser.add_argument("--count", type=int, default=0)
    parser.add_argument("--store", choices=["process", "postgres", "redis"], required=True)
    parser.add_argument("--store-url", default="")
    parser.add_argument("--key", required=True)
    parser.add_argument("--ticker", default="AAPL")
    parser.add_argument("--limit-per-second", type=int, required=True)
    parser.add_argument("--window", type=float, default=1.0, help="seconds of the plan's window")
    parser.add_argument("--page-size", type=int, default=30)
    args = parser.parse_args(argv)
    started = time.monotonic()
    report = asyncio.run(_collect(args) if args.role == "worker" else _acquire(args))
    report["seconds"] = time.monotonic() - started
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
