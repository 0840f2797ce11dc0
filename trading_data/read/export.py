"""``trading-data export``: market tables to Parquet or CSV files, one file per table and session, laid
out hive-style so DuckDB, Polars and pyarrow open the folder as one dataset::

    <out>/table=prices/session=2026-11-25/part-0.parquet

Every table :mod:`trading_data.read` reads: the market tables and the bar aggregates ``bars_5m`` and
``bars_1h`` (whose buckets fall in their New York day, as the tables' rows do).

The ``session`` of a row is the New York day of its time (the session tables' own column, which the
files leave to the folder name). Rows stream from the server in chunks, so memory holds one chunk
whatever the range; each file is written under a temporary name and renamed when complete, so a
session's file is whole or absent, and exporting again replaces it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq
from tqdm import tqdm

from trading_data.calendar import session_window, sessions_between
from trading_data.db import reads
from trading_data.domain.tickers import normalize_symbols

FORMATS = ("parquet", "csv")
DEFAULT_CHUNK_ROWS = 250_000


@dataclass(frozen=True)
class ExportedFile:
    table: str
    session: dt.date
    path: Path
    rows: int


def session_file(out: Path, table: str, session: dt.date, fmt: str) -> Path:
    return out / f"table={table}" / f"session={session.isoformat()}" / f"part-0.{fmt}"


def _session_query(table: str, session: dt.date, tickers: tuple[str, ...] | None) -> reads.RowsQuery:
    spec = reads.READABLE[table]
    columns = tuple(c for c in spec.columns if c != "session")  # the folder holds it
    if spec.time_column == "session":
        return reads.RowsQuery(table, session, session + dt.timedelta(days=1), tickers, columns=columns)
    start, end = session_window(session)
    return reads.RowsQuery(table, start, end, tickers, columns=columns)


class _Writer:
    """One file, written under ``<name>.tmp`` and renamed by :meth:`close`."""

    def __init__(self, path: Path, fmt: str, schema: pa.Schema):
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path, self.partial = path, path.with_name(path.name + ".tmp")
        self.writer: Any = (
            pq.ParquetWriter(self.partial, schema, compression="zstd")
            if fmt == "parquet"
            else pa_csv.CSVWriter(self.partial, schema)
        )

    def write(self, table: pa.Table) -> None:
        self.writer.write_table(table)

    def close(self) -> None:
        self.writer.close()
        self.partial.replace(self.path)

    def abandon(self) -> None:
        self.writer.close()
        self.partial.unlink(missing_ok=True)


def export_session(
    url: str,
    schema: str,
    out: Path,
    table: str,
    session: dt.date,
    *,
    fmt: str = "parquet",
    tickers: Sequence[str] | None = None,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
) -> ExportedFile | None:
    """Write one session of ``table``; None (and no file) when it holds no row."""
    sql = reads.rows_sql(schema, _session_query(table, session, tuple(tickers) if tickers else None))
    path = session_file(out, table, session, fmt)
    writer: _Writer | None = None
    rows = 0
    try:
        for chunk in reads.iter_arrow(url, sql, chunk_rows):
            writer = writer or _Writer(path, fmt, chunk.schema)
            writer.write(chunk)
            rows += chunk.num_rows
    except BaseException:
        if writer is not None:
            writer.abandon()
        raise
    if writer is None:
        return None
    writer.close()
    return ExportedFile(table, session, path, rows)


def export(
    url: str,
    schema: str,
    out: Path,
    tables: Sequence[str],
    first: dt.date,
    last: dt.date,
    *,
    fmt: str = "parquet",
    tickers: Sequence[str] | None = None,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    progress: bool = True,
) -> list[ExportedFile]:
    """Every NYSE session from ``first`` to ``last`` (inclusive) of each table, with a progress bar of
    (table, session) files and rows on stderr."""
    if fmt not in FORMATS:
        raise ValueError(f"format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    unknown = [t for t in tables if t not in reads.READABLE]
    if unknown:
        raise ValueError(f"no table {unknown[0]!r}; tables: {', '.join(reads.READABLE)}")
    if tickers:
        tickers = normalize_symbols(tickers)  # as stored; a bad symbol fails before any file is written
    work = [(t, s) for t in tables for s in sessions_between(first, last)]
    written: list[ExportedFile] = []
    with tqdm(total=len(work), unit="file", disable=not progress, desc="export") as bar:
        for table, session in work:
            done = export_session(
                url, schema, out, table, session, fmt=fmt, tickers=tickers, chunk_rows=chunk_rows
            )
            if done is not None:
                written.append(done)
            bar.set_postfix_str(f"{table} {session} rows={sum(f.rows for f in written):,}", refresh=False)
            bar.update()
    return written
