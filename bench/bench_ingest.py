"""The ``quotes`` ingest path end to end against the COPY alone of the same rows, and ``orjson.loads``.

Run with ``make bench-ingest`` or ``.venv/bin/python bench/bench_ingest.py [--pages 10] [--repeat 3]``.

Pages of Polygon v3 quotes (50,000 rows each, the vendor's JSON: ``results``, ``status``, ``request_id``,
``next_url``) are rendered once (not timed) for two tickers inside the 2026-11-25 session and served from
memory by an ``httpx.MockTransport``. Contenders, best of ``--repeat``, taking turns:

- **end to end**: ``dg.materialize`` of a partitioned ``quotes`` asset (``partition_expr: ts``,
  ``write_mode: upsert``, as the real asset) returning the assets' ``TickerFeed`` over
  ``PolygonClient.iter_quotes`` with the assets' ``ChunkValidator``: fetch, ``orjson`` decode, paging,
  column building, pandera validation, window check, the IO manager's COPY, the merge and the commit.
  Timed from ``STEP_OUTPUT`` to ``HANDLED_OUTPUT`` (the feed is consumed inside the IO manager), the
  whole ``dg.materialize`` wall time is printed beside it.
- **COPY alone**: the same rows as one pre-built Arrow table, ``cursor.adbc_ingest`` into the empty
  ``market.quotes`` table (its two indexes), ``COMMIT``. The issue's baseline (``make bench-io``: 1.02x
  ``psql \copy``).
- **COPY streamed**: the same table as a reader of 10,000-row batches (``copy_writer.BATCH_ROWS``) through
  one ``adbc_ingest``, as the IO manager now streams a feed: the driver sends each batch as soon as it is
  encoded, so the server parses one while the next is encoded; a single table is encoded whole first.
  The fastest COPY of these rows found, printed as a second baseline.
- **orjson.loads** of the same page bytes.

The table is truncated (untimed) before every write. Target: end to end <= 1.25 x the COPY alone.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import adbc_driver_postgresql.dbapi as adbc
import dagster as dg
import httpx
import numpy as np
import orjson
import pandas as pd
import psycopg
import pyarrow as pa
from spy_session import QUIET, SCHEMA, SESSION, TICKER, fresh_database

from trading_data.calendar import session_window
from trading_data.db.copy_writer import BATCH_ROWS
from trading_data.db.io_manager import PostgresPandasIOManager
from trading_data.orchestration.feeds import TickerFeed
from trading_data.orchestration.steps import ChunkValidator
from trading_data.schemas import TABLES, arrow_schema
from trading_data.sources import polygon_parsing
from trading_data.sources.polygon import PolygonClient
from trading_data.sources.rate_limit import RateLimit

BENCH_DATABASE = "trading_data_bench_ingest"
TICKERS = (TICKER, "QQQ")
PAGE_ROWS = 50_000
TARGET = 1.25
BASE_URL = "https://api.polygon.io"
SPEC = TABLES["quotes"]


def render_pages(pages: int, seed: int = 11) -> dict[str, bytes]:
    """``path?query`` -> the JSON body, pages split evenly between the tickers, chained by next_url."""
    rng = np.random.default_rng(seed)
    start, end = session_window(SESSION)
    open_ns = int(start.timestamp() * 1e9) + 15 * 3600 * 10**9 // 10  # 09:30 New York-ish
    span_ns = int((end.timestamp() - start.timestamp()) * 1e9) // 3
    bodies: dict[str, bytes] = {}
    per_ticker = [pages // len(TICKERS) + (i < pages % len(TICKERS)) for i in range(len(TICKERS))]
    for ticker, count in zip(TICKERS, per_ticker, strict=True):
        n = count * PAGE_ROWS
        sip = np.sort(open_ns + rng.integers(0, span_ns, n)).astype(np.int64)
        participant = sip - rng.integers(100, 50_000, n)
        mid = np.round(500 + np.cumsum(rng.normal(0, 0.01, n)), 2)
        spread = rng.integers(1, 4, n) / 100
        bid_size = rng.integers(1, 50, n)
        ask_size = rng.integers(1, 50, n)
        bid_ex = rng.integers(1, 21, n)
        ask_ex = rng.integers(1, 21, n)
        for page in range(count):
            rows = []
            for i in range(page * PAGE_ROWS, (page + 1) * PAGE_ROWS):
                rows.append(
                    {
                        "ask_exchange": int(ask_ex[i]),
                        "ask_price": float(mid[i] + spread[i]),
                        "ask_size": int(ask_size[i]),
                        "bid_exchange": int(bid_ex[i]),
                        "bid_price": float(mid[i]),
                        "bid_size": int(bid_size[i]),
                        "participant_timestamp": int(participant[i]),
                        "sequence_number": i + 1,
                        "sip_timestamp": int(sip[i]),
                        "tape": 3,
                    }
                )
            body: dict[str, Any] = {"results": rows, "status": "OK", "request_id": f"bench-{ticker}-{page}"}
            if page + 1 < count:
                body["next_url"] = f"{BASE_URL}/v3/quotes/{ticker}?cursor={ticker}{page + 1}"
            key = f"/v3/quotes/{ticker}" + (f"?cursor={ticker}{page}" if page else "")
            bodies[key] = orjson.dumps(body)
    return bodies


def mock_transport(bodies: dict[str, bytes]) -> httpx.MockTransport:
    def answer(request: httpx.Request) -> httpx.Response:
        cursor = request.url.params.get("cursor")
        key = request.url.path + (f"?cursor={cursor}" if cursor else "")
        return httpx.Response(200, content=bodies[key], headers={"content-type": "application/json"})

    return httpx.MockTransport(answer)


def quotes_feed(bodies: dict[str, bytes], log: Any = None) -> TickerFeed:
    """The assets' feed over ``PolygonClient.iter_quotes`` and the mock transport."""
    start, end = session_window(SESSION)

    @asynccontextmanager
    async def clients() -> AsyncIterator[PolygonClient]:
        client = PolygonClient.create(
            "bench-key",
            base_url=BASE_URL,
            transport=mock_transport(bodies),
            rate_limit=RateLimit(10_000, 1.0),
        )
        async with client:
            yield client

    def fetch(client: PolygonClient, ticker: str) -> AsyncIterator[pd.DataFrame]:
        return client.iter_quotes(ticker, gte_ns=start, lt_ns=end)

    return TickerFeed(
        feed="quotes",
        tickers=list(TICKERS),
        open_clients=clients,
        fetch=fetch,
        max_concurrency=8,
        chunk_filter=ChunkValidator("quotes", strict=False),
        log=log,
    )


def quotes_asset(bodies: dict[str, bytes]) -> dg.AssetsDefinition:
    partitions = dg.DailyPartitionsDefinition(start_date="2026-11-01", timezone="America/New_York")

    @dg.asset(
        name="quotes",
        partitions_def=partitions,
        metadata={"partition_expr": "ts", "write_mode": "upsert"},
    )
    def quotes(context) -> TickerFeed:  # type: ignore[no-untyped-def]  # dagster reads the hint
        return quotes_feed(bodies, context.log)

    return quotes


def arrow_rows(bodies: dict[str, bytes]) -> pa.Table:
    """The same rows as the feed stores them, as one Arrow table of the table's schema (not timed)."""
    frames = []
    for key, body in bodies.items():
        ticker = key.split("/")[3].split("?")[0]
        frames.append(polygon_parsing.quotes_frame(orjson.loads(body)["results"], ticker, validate=False))
    frame = pd.concat(frames, ignore_index=True)
    return pa.Table.from_pandas(frame[SPEC.columns], schema=arrow_schema(SPEC), preserve_index=False)


class Bench:
    def __init__(self, url: str, bodies: dict[str, bytes]):
        self.url = url
        self.bodies = bodies
        self.table = arrow_rows(bodies)
        self.asset = quotes_asset(bodies)
        self.instance = dg.DagsterInstance.ephemeral()
        self.notes: dict[str, str] = {}

    def truncate(self) -> None:
        with psycopg.connect(self.url, autocommit=True) as conn:
            conn.execute(f"TRUNCATE {SCHEMA}.quotes")

    def count(self) -> int:
        with psycopg.connect(self.url) as conn:
            row = conn.execute(f"SELECT count(*) FROM {SCHEMA}.quotes").fetchone()
        return int(row[0]) if row else 0

    def end_to_end(self) -> float:
        started = time.perf_counter()
        result = dg.materialize(
            [self.asset],
            partition_key=SESSION,
            instance=self.instance,
            run_config=QUIET,
            resources={"io_manager": PostgresPandasIOManager(database_url=self.url, schema=SCHEMA)},
        )
        wall = time.perf_counter() - started
        assert result.success
        stamps = {
            e.dagster_event.event_type_value: e.timestamp
            for e in self.instance.all_logs(result.run_id)
            if e.dagster_event
        }
        metadata = result.asset_materializations_for_node("quotes")[0].metadata
        seconds = stamps["HANDLED_OUTPUT"] - stamps["STEP_OUTPUT"]
        self.notes["end_to_end"] = (
            f"whole dg.materialize {wall:.2f} s; handler write_seconds {metadata['write_seconds'].value}, "
            f"chunks {metadata['chunks'].value}, upsert_fast_path {metadata['upsert_fast_path'].value}, "
            f"fetch_seconds {metadata['fetch_seconds'].value}"
        )
        return seconds

    def copy_alone(self) -> float:
        started = time.perf_counter()
        with adbc.connect(self.url) as conn:
            with conn.cursor() as cur:
                cur.adbc_ingest("quotes", self.table, mode="append", db_schema_name=SCHEMA)
            conn.commit()
        return time.perf_counter() - started

    def copy_streamed(self) -> float:
        started = time.perf_counter()
        with adbc.connect(self.url) as conn:
            with conn.cursor() as cur:
                reader = self.table.to_reader(max_chunksize=BATCH_ROWS)
                cur.adbc_ingest("quotes", reader, mode="append", db_schema_name=SCHEMA)
            conn.commit()
        return time.perf_counter() - started

    def feed_alone(self) -> float:
        started = time.perf_counter()
        rows = sum(len(page) for page in quotes_feed(self.bodies))
        assert rows == self.table.num_rows, rows
        return time.perf_counter() - started

    def loads(self) -> float:
        started = time.perf_counter()
        for body in self.bodies.values():
            orjson.loads(body)
        return time.perf_counter() - started


def best_of(repeat: int, contenders: dict[str, Callable[[], float]], bench: Bench) -> dict[str, float]:
    best = {name: float("inf") for name in contenders}
    for _ in range(repeat):
        for name, run in contenders.items():
            writes = name in ("end_to_end", "copy", "copy_streamed")
            if writes:
                bench.truncate()
            seconds = run()
            if writes:
                stored = bench.count()
                assert stored == bench.table.num_rows, f"{name}: {stored} rows stored"
            best[name] = min(best[name], seconds)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=int, default=10, help="pages of 50,000 quotes (default 10)")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    print(f"bench-ingest: rendering {args.pages} pages of {PAGE_ROWS:,} quotes ...", flush=True)
    bodies = render_pages(args.pages)
    url = fresh_database(BENCH_DATABASE)
    bench = Bench(url, bodies)
    rows = bench.table.num_rows
    mib = sum(len(b) for b in bodies.values()) / 2**20
    print(f"{rows:,} rows, {mib:,.0f} MiB of JSON, tickers {', '.join(TICKERS)}; best of {args.repeat}")
    best = best_of(
        args.repeat,
        {
            "end_to_end": bench.end_to_end,
            "copy": bench.copy_alone,
            "copy_streamed": bench.copy_streamed,
            "feed": bench.feed_alone,
            "loads": bench.loads,
        },
        bench,
    )
    copy = best["copy"]
    labels = {
        "end_to_end": "end to end: TickerFeed + iter_quotes + validation + IO manager (upsert)",
        "copy": "ADBC COPY alone (pre-built Arrow table, adbc_ingest)",
        "copy_streamed": f"ADBC COPY streamed (the same table, {BATCH_ROWS:,}-row batches, one adbc_ingest)",
        "feed": "the feed alone: iter_quotes + parsing + ChunkValidator, no database",
        "loads": "orjson.loads of the same bytes",
    }
    print(f"\n{'contender':<76} {'seconds':>8} {'rows/s':>11} {'x COPY':>7}")
    for name, seconds in best.items():
        print(f"{labels[name]:<76} {seconds:8.3f} {rows / seconds:11,.0f} {seconds / copy:7.2f}")
    ratio = best["end_to_end"] / copy
    print(
        f"\nend to end {ratio:.2f} x the COPY alone; target <= {TARGET} -> {'MET' if ratio <= TARGET else 'MISSED'}"
    )
    print(
        f"end to end {best['end_to_end'] / best['copy_streamed']:.2f} x the streamed COPY (the fastest COPY of the rows)"
    )
    print(f"({bench.notes.get('end_to_end', '')}; load average {os.getloadavg()[0]:.2f})")
    print(f"session {SESSION}, {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC")


if __name__ == "__main__":
    main()
