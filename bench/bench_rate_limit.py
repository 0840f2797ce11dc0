"""Rate limit under load: 4 processes collect at once through the real ``PolygonClient`` against the
simulator (server-side limit = the plan), with each process's own window (``process``, the baseline:
what every worker had before the shared stores), then one key's window shared through PostgreSQL,
then Redis.

Run with ``make bench-rate-limit`` or ``.venv/bin/python bench/bench_rate_limit.py [--plan 10]
[--window 1] [--stores postgres,redis]``.

Each worker pages 3 tickers' minute bars of one session at once (``--page-size`` bars a page: 390/15
= 26 pages a ticker, 286 requests in all, about 30 s at 10/s, so the first window's burst and the
last pages' ragged end weigh little; 3 requests in flight a worker) through its own ``PolygonClient`` with a client
plan of ``--plan`` requests per ``--window`` seconds; the simulator serves over loopback HTTP in this
process and refuses (429) any request past the plan in a sliding window, counted when the request
arrives. Printed per store: the measured throughput (permits after the first window's burst per
second of the run: a sliding window starts empty and lets the first ``plan`` through at once), its
share of the plan, the requests the server refused, and the requests' mean latency (grant to
response). A permit's window starts when its request is done and is padded by
TRADING_DATA_RATE_LIMIT_PADDING (default 1%), so the best possible share is about
window / (window * 1.01 + latency); a 429 costs its worker a 10 s retry pause.
"""

from __future__ import annotations

import argparse
import os
import statistics
import uuid

from trading_data.db.url import market_database_url
from trading_data.settings import platform as settings
from trading_data.sources.rate_limit import key_fingerprint
from trading_data.sources.rate_limit_store import REDIS_KEY_PREFIX
from trading_data_tests.sources.rate_limit_load import run_load

REDIS_URL = settings.REDIS_URL.get() or "redis://127.0.0.1:6379/0"
STORES = ("process", "postgres", "redis")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--plan", type=int, default=10, help="requests per window, client and server")
    parser.add_argument("--window", type=float, default=1.0, help="the plan's window in seconds")
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--page-size", type=int, default=15)
    parser.add_argument("--tickers", type=int, default=3, help="tickers each worker pages at once")
    parser.add_argument("--stores", default=",".join(STORES), help="comma-separated, of " + ", ".join(STORES))
    args = parser.parse_args()
    padding = settings.RATE_LIMIT_PADDING.get()
    load = ", ".join(f"{v:.2f}" for v in os.getloadavg())
    print(
        f"{args.workers} processes, plan {args.plan}/{args.window:g}s (server limit the same), "
        f"padding {padding:.0%}, load average {load}"
    )
    print(
        f"{'store':<9} {'requests':>8} {'throughput/s':>12} {'plan/s':>6} {'share':>6} {'refused':>7} "
        f"{'latency':>8}"
    )
    for store in args.stores.split(","):
        url = {"postgres": market_database_url(), "redis": REDIS_URL}.get(store, "")
        key = f"bench-{os.getpid()}-{uuid.uuid4().hex}"
        try:
            r = run_load(
                store=store,
                store_url=url,
                key=key,
                workers=args.workers,
                limit_per_second=args.plan,
                window=args.window,
                page_size=args.page_size,
                tickers_per_worker=args.tickers,
            )
        finally:
            if store == "redis":
                import redis

                redis.Redis.from_url(url).delete(f"{REDIS_KEY_PREFIX}:polygon:{key_fingerprint(key)}")
        latency_ms = 1000 * statistics.mean(s - g for g, s in r.permits)
        print(
            f"{store:<9} {r.requests:>8} {r.throughput:>12.2f} {r.plan_per_second:>6.2f} {r.share:>6.1%} "
            f"{r.server_refused:>7} {latency_ms:>6.0f}ms"
        )


if __name__ == "__main__":
    main()
