"""Several OS processes collecting through the real ``PolygonClient`` at once, against one simulator
whose server-side limit equals the plan, all sharing one key's rate-limit window in a shared store.

Used by ``test_rate_limit_load.py`` and ``bench/bench_rate_limit.py``. Each worker is
``python -m trading_data_tests.sources.rate_limit_load worker ...``: it pages its tickers' minute bars
of one session (``--page-size`` bars a page, the tickers at once) and prints one JSON line with its requests, the 429s it saw and the
``time.monotonic()`` of each permit (CLOCK_MONOTONIC: one clock for every process of the host).
"""

from __future__ import annotations

import argparse
import asyncio
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
START_DELAY_SECONDS = 8.0  # time for the workers to start and import on a loaded machine


@dataclass
class LoadResult:
    """What a load run measured (``grants``: every worker's permit times, merged and sorted)."""

    store: str
    workers: int
    limit_per_second: int
    requests: int
    server_requests: int
    server_refused: int
    client_429s: int
    server_max_per_second: int
    grants: list[float] = field(repr=False)

    def max_in_window(self, window: float) -> int:
        """The most permits granted across all workers within any ``window`` seconds."""
        return max_in_window(self.grants, window)

    @property
    def throughput(self) -> float:
        """Requests per second after the first window: a sliding window starts empty and lets the
        first ``limit`` permits through at once, so the steady rate is ``(N - limit) / span``."""
        span = self.grants[-1] - self.grants[0]
        return (len(self.grants) - self.limit_per_second) / span if span > 0 else float("inf")


def run_load(
    *,
    store: str,
    store_url: str,
    key: str,
    workers: int = 4,
    limit_per_second: int = 10,
    page_size: int = 30,
    tickers_per_worker: int = 1,
    env: dict[str, str] | None = None,
) -> LoadResult:
    """Serve the simulator with a server-side limit of ``limit_per_second``, run ``workers`` worker
    processes at once with a client plan of the same limit, each paging ``tickers_per_worker`` tickers
    at once, and gather the figures."""
    from trading_data.sources.simulator.server import SimulatorServer

    with SimulatorServer() as sim:
        sim.faults.rate_limit_per_second = limit_per_second
        command = [sys.executable, "-m", __name__, "worker", "--base-url", sim.base_url]
        command += ["--store", store, "--store-url", store_url, "--key", key]
        command += ["--limit-per-second", str(limit_per_second), "--page-size", str(page_size)]
        # Every worker starts collecting at the same moment, once all have imported (CLOCK_MONOTONIC
        # is one clock for the whole host).
        command += ["--start-at", str(time.monotonic() + START_DELAY_SECONDS)]
        procs = [
            subprocess.Popen(
                [*command, "--ticker", ",".join(TICKERS[i::workers][:tickers_per_worker])],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                env={**os.environ, **(env or {})},
            )
            for i in range(workers)
        ]
        done = [p.communicate(timeout=600) for p in procs]
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
        requests=sum(r["requests"] for r in reports),
        server_requests=stats["total"],
        server_refused=stats["rate_limited"],
        client_429s=sum(r["rate_limited"] for r in reports),
        server_max_per_second=stats["max_per_second"],
        grants=sorted(t for r in reports for t in r["grants"]),
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
    await asyncio.sleep(max(0.0, args.start_at - time.monotonic()))
    async with PolygonClient.create(
        args.key,
        base_url=args.base_url,
        rate_limit=RateLimit(args.limit_per_second, 1.0),
        rate_limit_store=store,
    ) as client:
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
        }


async def _acquire(args: argparse.Namespace) -> dict[str, object]:
    from trading_data.sources.rate_limit import RateLimit, shared_rate_limiter
    from trading_data.sources.rate_limit_store import RateLimitStore

    store = RateLimitStore(args.store, args.store_url)
    limiter = shared_rate_limiter("polygon", args.key, RateLimit(args.limit_per_second, 1.0), store)
    await asyncio.sleep(max(0.0, args.start_at - time.monotonic()))
    for _ in range(args.count):
        await limiter.acquire()
    limiter.close()
    return {"requests": 0, "rate_limited": 0, "grants": list(limiter.grants)}


def acquire_in_processes(
    *, store: str, store_url: str, key: str, processes: int, limit_per_second: int, count: int
) -> list[list[float]]:
    """``processes`` processes each take ``count`` permits of one key's shared window at once;
    returns each one's permit times."""
    command = [sys.executable, "-m", __name__, "acquire", "--store", store, "--store-url", store_url]
    command += ["--key", key, "--limit-per-second", str(limit_per_second), "--count", str(count)]
    command += ["--start-at", str(time.monotonic() + START_DELAY_SECONDS)]
    procs = [subprocess.Popen(command, stdout=subprocess.PIPE, text=True) for _ in range(processes)]
    outputs = [p.communicate(timeout=300)[0] for p in procs]
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
    parser.add_argument("--page-size", type=int, default=30)
    parser.add_argument("--start-at", type=float, default=0.0, help="time.monotonic() to start at")
    args = parser.parse_args(argv)
    started = time.monotonic()
    report = asyncio.run(_collect(args) if args.role == "worker" else _acquire(args))
    report["seconds"] = time.monotonic() - started
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
