"""The pandas type handler of the PostgreSQL IO manager (as ``dagster-duckdb-pandas`` is DuckDB's).

Writes DataFrames, or :class:`~trading_data.db.frame_chunks.FrameChunks` streams of them, into the
run's partition window in one transaction (``replace``: the client deleted the window; ``upsert``:
stage in a temporary table, then ``INSERT … ON CONFLICT (key) DO UPDATE``), bulk-loading each chunk
over ADBC (binary COPY underneath), so a stream of millions of rows needs memory for one chunk. A run
of several sessions writes them all in that transaction; a :class:`SessionChunks` stream keeps each
session's outcome to its own window, and each session's materialization gets its own metadata. Reads a
window as a frame typed like its pandera model.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import dagster as dg
import pandas as pd
import pyarrow as pa

# Dagster exports no public name for the DbIOManager family (see trading_data.db.table_slices).
from dagster._core.storage.db_io_manager import DbTypeHandler, TableSlice

from trading_data.db.arrow_frames import frame_from_arrow
from trading_data.db.copy_writer import StreamedCopies
from trading_data.db.frame_chunks import FrameChunks, SessionChunks
from trading_data.db.migrate import validate_schema_name
from trading_data.db.table_slices import (
    StorageError,
    lock_sessions,
    output_sessions,
    qualified_name,
    session_clause,
    table_spec,
    window_clause,
    write_mode,
)
from trading_data.schemas import TableSpec, arrow_schema, column_descriptions, sql_columns
from trading_data.validation import validate


def _check_columns(spec: TableSpec, frame: pd.DataFrame) -> None:
    extra = [c for c in frame.columns if c not in spec.columns]
    missing = [c for c in spec.columns if c not in frame.columns]
    if extra or missing:
        raise StorageError(
            f"{spec.name}: frame columns differ from the table: missing {missing}, unexpected {extra}"
        )


def _check_window(spec: TableSpec, frame: pd.DataFrame, table_slice: TableSlice) -> None:
    """Rows outside the partition window would survive a later replace of that window."""
    _, params = window_clause(spec, table_slice)
    if not params or frame.empty:
        return
    start, end = params
    values = frame[spec.time_column]
    outside = (
        frame[(values < start) | (values >= end)]
        if spec.time_column == "session"
        else frame[(values < pd.Timestamp(start)) | (values >= pd.Timestamp(end))]
    )
    if len(outside):
        raise StorageError(
            f"{spec.name}: {len(outside)} row(s) fall outside the partition window "
            f"[{start}, {end}); e.g. {outside.head(2).to_dict('records')}"
        )


def _lock_window_and_check_empty(
    cur: Any, target: str, spec: TableSpec, sessions: list[str], where: str, params: tuple[Any, ...]
) -> bool:
    """Serialise upserts of the window's sessions until COMMIT, and say whether the window holds no row yet."""
    lock_sessions(cur, target, spec, sessions, params)
    cur.execute(f"SELECT EXISTS (SELECT 1 FROM {target} {where})", params or None)
    return not cur.fetchone()[0]


def _apply_stream_outcome(
    cur: Any,
    obj: FrameChunks,
    spec: TableSpec,
    target: str,
    staging: str | None,
    where: str,
    params: tuple[Any, ...],
    window_was_empty: bool = False,
) -> None:
    """Before the merge: drop the streamed rows of tickers that failed part-way, and delete the stored rows
    of the tickers whose window the stream replaces (a closed session fetched whole), in the write's
    transaction, so the window holds the old rows or the new ones, never a mix.

    Into a window that was empty (locked since), rows were COPYed straight into the table too: the
    window's rows of a discarded ticker are all this stream's, and there are no stored rows to replace.
    """
    if not (obj.discard_tickers or obj.replace_tickers):
        return
    if "ticker" not in spec.columns:
        raise StorageError(f"{spec.name}: per-ticker discard/replace needs a ticker column")
    clause = f"{where} AND" if where else "WHERE"
    if obj.discard_tickers:
        if staging is None and not window_was_empty:
            raise StorageError(f"{spec.name}: discarding tickers needs the upsert write mode")
        discard = ",".join(sorted(obj.discard_tickers))
        n = len(params) + 1
        if staging is not None:
            # Within the window: in a multi-session run the other sessions' rows of the ticker stay.
            cur.execute(
                f"DELETE FROM {staging} {clause} ticker = ANY(string_to_array(${n}, ','))", (*params, discard)
            )
        if window_was_empty:
            cur.execute(
                f"DELETE FROM {target} {clause} ticker = ANY(string_to_array(${n}, ','))", (*params, discard)
            )
    replace = [t for t in obj.replace_tickers if t not in obj.discard_tickers]
    if replace and not window_was_empty:
        n = len(params) + 1
        extra = f" AND ({obj.replace_filter})" if obj.replace_filter else ""
        cur.execute(
            f"DELETE FROM {target} {clause} ticker = ANY(string_to_array(${n}, ','))" + extra,
            (*params, ",".join(replace)),
        )


def _stream_parts(
    obj: FrameChunks, spec: TableSpec, where: str, params: tuple[Any, ...]
) -> list[tuple[FrameChunks, str, tuple[Any, ...]]]:
    """Each stream whose outcome applies, with its window: every session's of a SessionChunks."""
    if isinstance(obj, SessionChunks):
        return [(part, *session_clause(spec, key)) for key, part in obj.parts.items()]
    return [(obj, where, params)]


def _session_metadata(
    cur: Any, spec: TableSpec, target: str, where: str, params: tuple[Any, ...], obj: Any, sessions: list[str]
) -> dict[str, dict[str, Any]]:
    """Per session of a multi-session run: its stream's metadata and the rows its window holds."""
    column = spec.time_column
    day = column if column == "session" else f"({column} AT TIME ZONE 'America/New_York')::date"
    cur.execute(f"SELECT {day}, count(*) FROM {target} {where} GROUP BY 1", params)
    counts = {d.isoformat(): int(n) for d, n in cur.fetchall()}
    parts = obj.parts if isinstance(obj, SessionChunks) else {}
    return {
        key: {
            **(parts[key].metadata if key in parts else {}),
            "dagster/row_count": dg.MetadataValue.int(counts.get(key, 0)),
        }
        for key in sessions
    }


def _chunks(obj: pd.DataFrame | FrameChunks) -> Iterator[pd.DataFrame]:
    if isinstance(obj, pd.DataFrame):
        yield obj
    else:
        yield from obj


def _stream(loader: _Loader, obj: pd.DataFrame | FrameChunks, table_slice: TableSlice) -> tuple[int, int]:
    """Check, validate (unless the stream did with the same model) and queue every chunk for COPY."""
    spec = loader.spec
    stream = isinstance(obj, FrameChunks)
    validated = stream and obj.validated_model is spec.model
    rows = chunks = 0
    for chunk in _chunks(obj):
        if chunk.empty:
            continue
        _check_columns(spec, chunk)
        if not validated:
            chunk = validate(spec.model, chunk, spec.name)
        _check_window(spec, chunk, table_slice)
        if loader.mode in ("upsert", "append"):
            # ON CONFLICT cannot update a row twice in one statement: keep the last copy (no copy of a
            # chunk without repeats, the usual case: ~5 ms a 50,000-row chunk).
            repeated = chunk.duplicated(list(spec.primary_key), keep="last")
            if repeated.any():
                chunk = chunk[~repeated]
        table = pa.Table.from_pandas(
            chunk[spec.columns], schema=loader.arrow_schema, preserve_index=False, safe=False
        )
        loader.load(table, chunk, stream)
        rows += len(chunk)
        chunks += 1
    return rows, chunks


def column_schema(spec: TableSpec) -> dg.TableSchema:
    """The model as a Dagster TableSchema, for the UI's Columns panel."""
    return dg.TableSchema(
        columns=[
            dg.TableColumn(
                name,
                sql_type.lower(),
                description=column_descriptions(spec)[name],
                constraints=dg.TableColumnConstraints(nullable=nullable),
            )
            for name, (sql_type, nullable) in sql_columns(spec).items()
        ]
    )


class _Loader:
    """Where each chunk goes: straight into the table, or into the staging table to merge.

    Into a window that was empty (locked until COMMIT), a stream's chunk is COPYed straight into the
    table when no earlier chunk can share its keys: one ticker, and times after every earlier row of
    that ticker (pages arrive oldest first). Any other chunk is staged and merged ``ON CONFLICT`` at
    the end, so a later copy of a key still wins, as when every chunk is staged.
    """

    def __init__(self, cur: Any, spec: TableSpec, schema: str, mode: str, staging: str, target: str):
        self.cur = cur
        self.spec = spec
        self.schema = schema
        self.mode = mode
        self.staging = staging
        self.target = target
        self.staged = mode == "upsert"
        self._latest: dict[str, Any] = {}
        self._ordered = {"ticker", spec.time_column} <= set(spec.primary_key)
        self.arrow_schema = arrow_schema(spec)
        self.copies = StreamedCopies(depth=2)

    def _straight_in(self, chunk: pd.DataFrame, stream: bool) -> bool:
        if self.mode == "replace" or (self.mode == "append" and not stream):
            return True
        if self.mode != "append" or not self._ordered:
            return False
        tickers = chunk["ticker"].to_numpy()
        first = tickers[0]
        times = chunk[self.spec.time_column]
        earliest, latest = times.min(), times.max()
        previous = self._latest.get(first)
        single = bool((tickers == first).all())
        if single:
            self._latest[first] = latest if previous is None else max(previous, latest)
        else:
            for ticker, last in times.groupby(tickers, sort=False).max().items():
                before = self._latest.get(ticker)
                self._latest[ticker] = last if before is None else max(before, last)
        return single and (previous is None or previous < earliest)

    def load(self, table: pa.Table, chunk: pd.DataFrame, stream: bool) -> None:
        cur, name, schema, staging, target = self.cur, self.spec.name, self.schema, self.staging, self.target
        if self._straight_in(chunk, stream):
            self.copies.put(
                "table", lambda r: cur.adbc_ingest(name, r, mode="append", db_schema_name=schema), table
            )
            return
        if not self.staged:
            self.staged = True
            self.copies.submit(
                lambda: cur.execute(f"CREATE TEMP TABLE {staging} (LIKE {target}) ON COMMIT DROP")
            )
        self.copies.put(
            "staging", lambda r: cur.adbc_ingest(staging, r, mode="append", temporary=True), table
        )


class PandasPostgresTypeHandler(DbTypeHandler[pd.DataFrame]):
    """Writes DataFrames (or iterators of DataFrames) and reads partition windows as DataFrames."""

    def handle_output(
        self, context: dg.OutputContext, table_slice: TableSlice, obj: Any, connection: Any
    ) -> Mapping[str, Any]:
        spec = table_spec(table_slice.table)
        mode = write_mode(context)
        target = qualified_name(table_slice)
        started = time.perf_counter()
        where, params = window_clause(spec, table_slice)
        sessions = output_sessions(context)
        by_session: dict[str, dict[str, Any]] = {}
        with connection.cursor() as cur:
            if mode == "upsert" and _lock_window_and_check_empty(cur, target, spec, sessions, where, params):
                # Nothing to merge with: COPY straight into the table (the cost of replace) instead of
                # staging + ON CONFLICT, chunk by chunk as _Loader decides.
                mode = "append"
            if mode == "upsert":
                cur.execute(f"CREATE TEMP TABLE staging_{spec.name} (LIKE {target}) ON COMMIT DROP")
            loader = _Loader(cur, spec, table_slice.schema, mode, f"staging_{spec.name}", target)
            try:
                rows, chunks = _stream(loader, obj, table_slice)
            except BaseException:
                loader.copies.abandon()
                raise
            loader.copies.close()
            staging = loader.staging if loader.staged else None
            if isinstance(obj, FrameChunks):
                for part, part_where, part_params in _stream_parts(obj, spec, where, params):
                    _apply_stream_outcome(
                        cur, part, spec, target, staging, part_where, part_params, mode == "append"
                    )
            if staging is not None:
                key = ", ".join(spec.primary_key)
                updates = ", ".join(f"{c} = EXCLUDED.{c}" for c in spec.columns if c not in spec.primary_key)
                cur.execute(
                    f"INSERT INTO {target} ({', '.join(spec.columns)}) "
                    f"SELECT DISTINCT ON ({key}) {', '.join(spec.columns)} FROM {staging} "
                    f"ON CONFLICT ({key}) DO UPDATE SET {updates}"
                )
            cur.execute(f"SELECT count(*) FROM {target} {where}", params or None)
            partition_rows = int(cur.fetchone()[0])
            if len(sessions) > 1:
                by_session = _session_metadata(cur, spec, target, where, params, obj, sessions)
        for key, metadata in by_session.items():
            # Partition-scoped: each session's materialization shows its own figures over the run's.
            context.step_context.add_asset_metadata(metadata, asset_key=context.asset_key, partition_key=key)
        seconds = time.perf_counter() - started
        stream_metadata = obj.metadata if isinstance(obj, FrameChunks) else {}
        return {
            **stream_metadata,
            "dagster/row_count": dg.MetadataValue.int(partition_rows),
            "rows_written": dg.MetadataValue.int(rows),
            "chunks": dg.MetadataValue.int(chunks),
            "write_mode": dg.MetadataValue.text(write_mode(context)),
            "upsert_fast_path": dg.MetadataValue.bool(mode == "append" and staging is None),
            "write_seconds": dg.MetadataValue.float(round(seconds, 4)),
            "dagster/column_schema": column_schema(spec),
            "table": dg.MetadataValue.text(target),
            **(
                {
                    "rows_by_session": dg.MetadataValue.json(
                        {k: m["dagster/row_count"].value for k, m in by_session.items()}
                    )
                }
                if by_session
                else {}
            ),
        }

    def load_input(self, context: dg.InputContext, table_slice: TableSlice, connection: Any) -> pd.DataFrame:
        spec = table_spec(table_slice.table)
        return read_window(
            connection,
            table_slice.schema,
            spec,
            window_clause(spec, table_slice),
            columns=table_slice.columns,
        )

    @property
    def supported_types(self) -> Sequence[type[object]]:
        return [pd.DataFrame, FrameChunks]


def read_window(
    connection: Any,
    schema: str,
    spec: TableSpec,
    where: tuple[str, tuple[Any, ...]],
    columns: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Read rows of one table as a frame typed like its model, ordered by the time column."""
    clause, params = where
    # Bounds as typed literals, not bind parameters: ADBC streams a parameterless SELECT as binary
    # COPY, while a bound one runs as a prepared statement whose whole result libpq buffers first
    # (about 2x slower on a million rows). The bounds are our own date/datetime objects, not user text.
    for i, value in reversed(list(enumerate(params, 1))):
        clause = clause.replace(f"${i}", _literal(value))
    cols = list(columns or spec.columns)
    with connection.cursor() as cur:
        cur.execute(
            f"SELECT {', '.join(cols)} FROM {validate_schema_name(schema)}.{spec.name} {clause} "
            f"ORDER BY {spec.time_column}"
        )
        table = cur.fetch_arrow_table()
    return frame_from_arrow(spec, table)


def _literal(value: Any) -> str:
    if isinstance(value, dt.datetime):
        return f"'{value.isoformat()}'::timestamptz"
    if isinstance(value, dt.date):
        return f"'{value.isoformat()}'::date"
    raise TypeError(f"window bound {value!r} is neither a date nor a datetime")
