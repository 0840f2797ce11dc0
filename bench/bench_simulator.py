"""How fast the offline simulator generates and serves a whole SPY session of quotes (issue 11).

Run with ``.venv/bin/python bench/bench_simulator.py [--kind quotes|trades] [--ticker SPY]``.

Two figures: generation alone (every minute block of the session built in this process, rows/s),
and served (the session fetched page by page, 50,000 rows a page, over loopback HTTP from a
simulator in a child process; the client only reads each page's bytes and its ``next_url``, so the
figure is the simulator's). The clock is pinned after the session, so the data is the full session.
"""

from __future__ import annotations

import argparse
import datetime as dt
import multiprocessing
import time
from multiprocessing.connection import Connection
from urllib.parse import urlsplit

import httpx
import orjson

from trading_data.calendar import NEW_YORK
from trading_data.sources.simulator.market import SimulatedMarket
from trading_data.sources.simulator.server import SimulatorServer

SESSION = dt.date(2026, 11, 20)
AFTER = dt.datetime(2026, 11, 21, 12, 0, tzinfo=NEW_YORK)


def _market() -> SimulatedMarket:
    return SimulatedMarket(7, now=lambda: AFTER)


def generate(ticker: str, kind: str) -> tuple[int, float]:
    """(rows, seconds) to build every minute block of the session in a fresh market."""
    market = _market()
    plan = market.day_plan(ticker, SESSION)
    build = market.quote_block if kind == "quotes" else market.trade_block
    start = time.perf_counter()
    rows = sum(len(build(ticker, SESSION, minute)) for minute in range(plan.minutes))
    return rows, time.perf_counter() - start


def _serve(conn: Connection) -> None:
    with SimulatorServer(_market()) as server:
        conn.send(server.port)
        conn.recv()  # until the parent is done


def serve(ticker: str, kind: str) -> tuple[int, int, float]:
    """(rows, pages, seconds) to fetch the whole session over HTTP from a child-process simulator."""
    parent, child = multiprocessing.Pipe()
    process = multiprocessing.get_context("spawn").Process(target=_serve, args=(child,), daemon=True)
    process.start()
    port = parent.recv()
    rows = pages = 0
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", headers={"Authorization": "Bearer k"}) as http:
            params = {"timestamp": SESSION.isoformat(), "limit": 50000, "order": "asc"}
            start = time.perf_counter()
            response = http.get(f"/v3/{kind}/{ticker}", params=params, timeout=120)
            while True:
                body = orjson.loads(response.content)
                rows += len(body.get("results", []))
                pages += 1
                if "next_url" not in body:
                    break
                parts = urlsplit(body["next_url"])
                response = http.get(f"{parts.path}?{parts.query}", timeout=120)
            elapsed = time.perf_counter() - start
    finally:
        parent.send("done")
        process.join(10)
    return rows, pages, elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ticker", default="SPY")
    parser.add_argument("--kind", choices=("quotes", "trades"), default="quotes")
    args = parser.parse_args()
    rows, seconds = generate(args.ticker, args.kind)
    print(
        f"generate {args.ticker} {args.kind} {SESSION}: {rows:,} rows in {seconds:.2f} s = {rows / seconds:,.0f} rows/s"
    )
    rows, pages, seconds = serve(args.ticker, args.kind)
    print(
        f"serve    {args.ticker} {args.kind} {SESSION}: {rows:,} rows, {pages} pages in {seconds:.2f} s"
        f" = {rows / seconds:,.0f} rows/s"
    )


if __name__ == "__main__":
    main()
