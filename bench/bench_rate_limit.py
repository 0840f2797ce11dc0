"""Rate limit under load: 4 processes collect at once through the real ``PolygonClient`` against the
simulator (server-side limit = the plan), sharing one key's window through PostgreSQL, then Redis.

Run with ``make bench-rate-limit`` or ``.venv/bin/python bench/bench_rate_limit.py [--plan 10]``.

Each worker pages 3 tickers' minute bars of one session at once (30 bars a page: 13+ pages a ticker,
3 requests in flight a worker) through its own ``PolygonClient`` with a client plan of ``--plan`` requests a second; the simulator serves over
loopback HTTP in this process and refuses (429) any request past ``--plan`` in a sliding second.
Printed per store: the plan, the measured throughput (permits after the first window's burst per
second of the run: a sliding window starts empty and lets the first ``plan`` through at once), its
share of the plan, and the requests the server refused. The client window is padded by
TRADING_DATA_RATE_LIMIT_PADDING (default 5%, so the best possible share is 1/1.05 = 95%); a 429 costs
its worker a 10 s retry pause, which shows in the throughput.
"""

from __future__ import annotations

import argparse
import os
import uuid

from trading_data.db.url import market_database_url
from trading_data.settings import platform as settings
from trading_data.sources.rate_limit import key_fingerprint
from trading_data.sources.rate_limit_store import REDIS_KEY_PREFIX
from trading_data_tests.sources.rate_limit_load import run_load

REDIS_URL = settings.REDIS_URL.get() or "redis://127.0.0.1:6379/0"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--plan", type=int, default=10, help="requests a second, client and server")
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--page-size", type=int, default=30)
    parser.add_argument("--tickers", type=int, default=3, help="tickers each worker pages at once")
    args = parser.parse_args()
    padding = settings.RATE_LIMIT_PADDING.get()
    print(f"{args.workers} processes, plan {args.plan}/s (server limit {args.plan}/s), padding {padding:.0%}")
    print(
        f"{'store':<9} {'requests':>8} {'throughput/s':>12} {'plan/s':>6} {'share':>6} {'refused':>7} {'max/s':>5}"
    )
    for store, url in (("postgres", market_database_url()), ("redis", REDIS_URL)):
        key = f"bench-{os.getpid()}-{uuid.uuid4().hex}"
        try:
            r = run_load(
                store=store,
                store_url=url,
                key=key,
                workers=args.workers,
                limit_per_second=args.plan,
                page_size=args.page_size,
                tickers_per_worker=args.tickers,
            )
        finally:
            if store == "redis":
                import redis

                redis.Redis.from_url(url).delete(f"{REDIS_KEY_PREFIX}:polygon:{key_fingerprint(key)}")
        share = r.throughput / args.plan
        print(
            f"{store:<9} {r.requests:>8} {r.throughput:>12.2f} {args.plan:>6} {share:>6.1%} "
            f"{r.server_refused:>7} {r.server_max_per_second:>5}"
        )


if __name__ == "__main__":
    main()
