"""How fast the offline simulator generates, renders and serves a whole SPY session of quotes (issue 11).

Run with ``.venv/bin/python bench/bench_simulator.py [--kind quotes|trades] [--ticker SPY]``.

Three figures, each beside its baseline measured in the same run:

- generate: every minute block of the session built in a fresh market (rows/s);
- render: the session's rows as 50,000-row ``results`` arrays, by the simulator's renderer
  (``json_rows``, straight from the numpy columns) against the previous path (a dict per row, then
  ``orjson.dumps``) and against ``orjson.dumps`` of the dicts already built (encoding alone, the
  floor of any dict-based path); the bytes are checked identical;
- endpoint: the CPU seconds of the endpoint answering the session page by page in process (no HTTP);
- serve: the session fetched page by page, 50,000 rows a page, over loopback HTTP from a simulator in
  a child process. The client only counts each page's rows in its bytes and finds its ``next_url``
  (no JSON parsing), so the figure is the simulator's. Target: ≥ 500,000 rows/s.

The clock is pinned after the session, so the data is the full session.
"""

from __future__ import annotations

import argparse
import datetime as dt
import multiprocessing
import re
import time
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx
import numpy as np
import orjson

from trading_data.calendar import NEW_YORK
from trading_data.sources.simulator import polygon_ticks
from trading_data.sources.simulator.faults import FaultInjector
from trading_data.sources.simulator.market import SimulatedMarket
from trading_data.sources.simulator.protocol import POLYGON, Call
from trading_data.sources.simulator.server import SimulatorServer

SESSION = dt.date(2026, 11, 20)
AFTER = dt.datetime(2026, 11, 21, 12, 0, tzinfo=NEW_YORK)
PAGE = 50_000
TARGET_ROWS_PER_SECOND = 500_000
NEXT_URL = re.compile(rb'"next_url":"https?://[^/"]+(/[^"]+)"')


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


def _quote_dicts(cols: dict[str, np.ndarray], tape: int) -> list[dict[str, Any]]:
    """The previous renderer's rows, verbatim: one dict per quote."""
    return [
        {
            "ask_exchange": ask_exchange,
            "ask_price": ask,
            "ask_size": ask_size,
            "bid_exchange": bid_exchange,
            "bid_price": bid,
            "bid_size": bid_size,
            "participant_timestamp": participant,
            "sequence_number": sequence,
            "sip_timestamp": sip,
            "tape": tape,
        }
        for ask_exchange, ask, ask_size, bid_exchange, bid, bid_size, participant, sequence, sip in zip(
            cols["ask_exchange"].tolist(),
            cols["ask"].tolist(),
            cols["ask_size"].tolist(),
            cols["bid_exchange"].tolist(),
            cols["bid"].tolist(),
            cols["bid_size"].tolist(),
            cols["participant_ns"].tolist(),
            cols["sequence"].tolist(),
            cols["sip_ns"].tolist(),
            strict=True,
        )
    ]


def _trade_dicts(cols: dict[str, np.ndarray], tape: int) -> list[dict[str, Any]]:
    """The previous renderer's rows, verbatim: one dict per trade."""
    size = cols["size"]
    sizes = size.astype(np.int64).tolist() if np.all(size == np.round(size)) else size.tolist()
    rows: list[dict[str, Any]] = []
    append = rows.append
    for sip, part, seq, price, qty, exch, cond, tid in zip(
        cols["sip_ns"].tolist(),
        cols["participant_ns"].tolist(),
        cols["sequence"].tolist(),
        cols["price"].tolist(),
        sizes,
        cols["exchange"].tolist(),
        cols["condition_code"].tolist(),
        cols["trade_id"].tolist(),
        strict=True,
    ):
        row = {
            "exchange": exch,
            "id": str(tid),
            "participant_timestamp": part,
            "price": price,
            "sequence_number": seq,
            "sip_timestamp": sip,
            "size": qty,
            "tape": tape,
        }
        if cond:  # Polygon sends conditions first
            row = {"conditions": polygon_ticks.CONDITIONS[cond], **row}
        if exch == polygon_ticks.TRF_EXCHANGE:
            row["trf_id"] = 201 + tid % 3
            row["trf_timestamp"] = part - 20_000
        append(row)
    return rows


def _best(run: Callable[[], Any], repeat: int = 3) -> float:
    """The least of ``repeat`` timings of ``run()`` (the machine is shared)."""
    timings = []
    for _ in range(repeat):
        start = time.perf_counter()
        run()
        timings.append(time.perf_counter() - start)
    return min(timings)


def render(ticker: str, kind: str) -> dict[str, float]:
    """Seconds to render the session's pages three ways (best of 3 each); raises if the bytes differ."""
    market = _market()
    build = market.quote_block if kind == "quotes" else market.trade_block
    blocks = [build(ticker, SESSION, minute) for minute in range(market.day_plan(ticker, SESSION).minutes)]
    names = [field for field in blocks[0].__dataclass_fields__]
    columns = {name: np.concatenate([getattr(block, name) for block in blocks]) for name in names}
    rows = len(columns["sip_ns"])
    pages = [{name: col[i : i + PAGE] for name, col in columns.items()} for i in range(0, rows, PAGE)]
    tape = market.profile(ticker).tape  # type: ignore[union-attr]
    ours = polygon_ticks._quote_rows if kind == "quotes" else polygon_ticks._trade_rows
    dicts = _quote_dicts if kind == "quotes" else _trade_dicts
    for page in pages:
        if ours(page, tape) != orjson.dumps(dicts(page, tape)):
            raise AssertionError("json_rows and orjson.dumps of the dicts differ")
    built = [dicts(page, tape) for page in pages]
    return {
        "rows": rows,
        "json_rows": _best(lambda: [ours(page, tape) for page in pages]),
        "dicts + orjson.dumps (previous)": _best(lambda: [orjson.dumps(dicts(page, tape)) for page in pages]),
        "orjson.dumps of built dicts (floor)": _best(lambda: [orjson.dumps(page) for page in built]),
    }


def endpoint_cpu(ticker: str, kind: str) -> tuple[int, float]:
    """(pages, CPU seconds) of the endpoint answering the whole session page by page in process, on a fresh
    market: generation, rendering and the envelope without HTTP; CPU time moves less with the machine's
    load than the wall-clock serve figure."""
    market = _market()
    params = {"timestamp": SESSION.isoformat(), "limit": str(PAGE), "order": "asc"}
    pages = 0
    started = time.process_time()
    while True:
        call = Call(f"/v3/{kind}/{ticker}", POLYGON, params, {"ticker": ticker}, "", FaultInjector())
        body = polygon_ticks.ticks(market, call, kind).body
        pages += 1
        link = NEXT_URL.search(body, max(len(body) - 2000, 0))
        if link is None:
            return pages, time.process_time() - started
        params = dict(parse_qsl(urlsplit(link.group(1).decode()).query))


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
            params: dict[str, str | int] = {"timestamp": SESSION.isoformat(), "limit": PAGE, "order": "asc"}
            start = time.perf_counter()
            response = http.get(f"/v3/{kind}/{ticker}", params=params, timeout=120)
            while True:
                body = response.content
                response.raise_for_status()
                rows += body.count(b'"sip_timestamp":')
                pages += 1
                link = NEXT_URL.search(body, max(len(body) - 2000, 0))
                if link is None:
                    break
                response = http.get(link.group(1).decode(), timeout=120)
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
    label = f"{args.ticker} {args.kind} {SESSION}"
    rows, seconds = generate(args.ticker, args.kind)
    print(f"generate {label}: {rows:,} rows in {seconds:.2f} s = {rows / seconds:,.0f} rows/s")
    timings = render(args.ticker, args.kind)
    rows = int(timings.pop("rows"))
    ours = timings["json_rows"]
    print(f"render   {label}: {rows:,} rows in pages of {PAGE:,} (best of 3; bytes identical)")
    for name, seconds in timings.items():
        print(
            f"  {name:<38} {seconds:6.2f} s = {rows / seconds:>12,.0f} rows/s"
            f"  ({seconds / ours:.2f}x json_rows' time)"
        )
    pages, cpu = endpoint_cpu(args.ticker, args.kind)
    print(f"endpoint {label}: {pages} pages answered in process in {cpu:.2f} CPU-s (no HTTP)")
    rows, pages, seconds = serve(args.ticker, args.kind)
    rate = rows / seconds
    print(
        f"serve    {label}: {rows:,} rows, {pages} pages in {seconds:.2f} s = {rate:,.0f} rows/s; target "
        f">= {TARGET_ROWS_PER_SECOND:,} rows/s -> {'MET' if rate >= TARGET_ROWS_PER_SECOND else 'MISSED'}"
    )


if __name__ == "__main__":
    main()
