"""The pandas type handler of the PostgreSQL IO manager (as ``dagster-duckdb-pandas`` is DuckDB's).

Writes DataFrames, or :class:`FrameChunks` streams of them, into one session window in one transaction
(``replace``: the client deleted the window; ``upsert``: stage in a temporary table, then
``INSERT … ON CONFLICT (key) DO UPDATE``), bulk-loading each chunk over ADBC (binary COPY underneath),
so a stream of millions of rows needs memory for one chunk. Reads a window as a frame typed like its
pandera model.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

import dagster as dg
import pandas as pd
import pyarrow as pa

# Dagster exports no public name for the DbIOManager family (see trading_data.db.table_slices).
from dagster._core.storage.db_io_manager import DbTypeHandler, TableSlice

from trading_data.db.migrate import validate_schema_name
from trading_data.db.table_slices import (
    StorageError,
    lock_window,
    qualified_name,
    table_spec,
    window_clause,
    write_mode,
)
from trading_data.schemas import TableSpec, arrow_schema, sql_columns
from trading_data.validation import validate


class FrameChunks:
    """DataFrames to store as they come, in one transaction (a feed of millions of rows).

    An asset returns ``FrameChunks(generator)``, not the bare generator: Dagster would take a
    returned generator for a generator of events.
    """

    def __init__(self, chunks: Iterable[pd.DataFrame]):
        self._chunks = chunks
        # Filled while the chunks are consumed (request counts, failures); the IO manager adds it to
        # the materialization's metadata once the stream is exhausted.
        self.metadata: dict[str, Any] = {}
        # Raised by the IO manager once the write has committed: the step fails, the data stays.
        self.error_after_commit: BaseException | None = None
        # Read by the IO manager once the stream is exhausted, inside the same transaction:
        # tickers whose streamed rows must not be stored (they failed part-way), and tickers whose
        # stored rows of the window (those matching ``replace_filter``, when set) the stream replaces.
        self.discard_tickers: set[str] = set()
        self.replace_tickers: list[str] = []
        self.replace_filter: str = ""

    def __iter__(self) -> Iterator[pd.DataFrame]:
        return iter(self._chunks)


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


def _lock_window_and_check_empty(cur: Any, target: str, where: str, params: tuple[Any, ...]) -> bool:
    """Serialise upserts of one window until COMMIT, and say whether the window holds no row yet."""
    lock_window(cur, target, params)
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
) -> None:
    """Before the merge: drop the staged rows of tickers that failed part-way, and delete the stored rows
    of the tickers whose window the stream replaces (a closed session fetched whole), in the write's
    transaction, so the window holds the old rows or the new ones, never a mix."""
    if not (obj.discard_tickers or obj.replace_tickers):
        return
    if "ticker" not in spec.columns:
        raise StorageError(f"{spec.name}: per-ticker discard/replace needs a ticker column")
    if obj.discard_tickers:
        if staging is None:
            raise StorageError(f"{spec.name}: discarding tickers needs the upsert write mode")
        cur.execute(
            f"DELETE FROM {staging} WHERE ticker = ANY(string_to_array($1, ','))",
            (",".join(sorted(obj.discard_tickers)),),
        )
    replace = [t for t in obj.replace_tickers if t not in obj.discard_tickers]
    if replace:
        n = len(params) + 1
        extra = f" AND ({obj.replace_filter})" if obj.replace_filter else ""
        clause = f"{where} AND" if where else "WHERE"
        cur.execute(
            f"DELETE FROM {target} {clause} ticker = ANY(string_to_array(${n}, ','))" + extra,
            (*params, ",".join(replace)),
        )


def _chunks(obj: pd.DataFrame | FrameChunks) -> Iterator[pd.DataFrame]:
    if isinstance(obj, pd.DataFrame):
        yield obj
    else:
        yield from obj


def column_schema(spec: TableSpec) -> dg.TableSchema:
    """The model as a Dagster TableSchema, for the UI's Columns panel."""
    return dg.TableSchema(
        columns=[
            dg.TableColumn(name, sql_type.lower(), constraints=dg.TableColumnConstraints(nullable=nullable))
            for name, (sql_type, nullable) in sql_columns(spec).items()
        ]
    )


class PandasPostgresTypeHandler(DbTypeHandler[pd.DataFrame]):
    """Writes DataFrames (or iterators of DataFrames) and reads partition windows as DataFrames."""

    def handle_output(
        self, context: dg.OutputContext, table_slice: TableSlice, obj: Any, connection: Any
    ) -> Mapping[str, Any]:
        spec = table_spec(table_slice.table)
        mode = write_mode(context)
        schema = arrow_schema(spec)
        target = qualified_name(table_slice)
        staging = f"staging_{spec.name}"
        started = time.perf_counter()
        rows = 0
        chunks = 0
        where, params = window_clause(spec, table_slice)
        with connection.cursor() as cur:
            if (
                mode == "upsert"
                and _lock_window_and_check_empty(cur, target, where, params)
                and isinstance(obj, pd.DataFrame)
            ):
                # Nothing to merge with: after drop_duplicates the frame's keys are unique, so COPY
                # straight into the table (the cost of replace) instead of staging + ON CONFLICT.
                mode = "append"
            if mode == "upsert":
                cur.execute(f"CREATE TEMP TABLE {staging} (LIKE {target}) ON COMMIT DROP")
            for chunk in _chunks(obj):
                if chunk.empty:
                    continue
                _check_columns(spec, chunk)
                chunk = validate(spec.model, chunk, spec.name)
                _check_window(spec, chunk, table_slice)
                if mode in ("upsert", "append"):
                    # ON CONFLICT cannot update a row twice in one statement: keep the last copy.
                    chunk = chunk.drop_duplicates(list(spec.primary_key), keep="last")
                table = pa.Table.from_pandas(
                    chunk[spec.columns], schema=schema, preserve_index=False, safe=False
                )
                if mode == "upsert":
                    cur.adbc_ingest(staging, table, mode="append", temporary=True)
                else:
                    cur.adbc_ingest(spec.name, table, mode="append", db_schema_name=table_slice.schema)
                rows += len(chunk)
                chunks += 1
            if isinstance(obj, FrameChunks):
                _apply_stream_outcome(
                    cur, obj, spec, target, staging if mode == "upsert" else None, where, params
                )
            if mode == "upsert":
                key = ", ".join(spec.primary_key)
                updates = ", ".join(f"{c} = EXCLUDED.{c}" for c in spec.columns if c not in spec.primary_key)
                cur.execute(
                    f"INSERT INTO {target} ({', '.join(spec.columns)}) "
                    f"SELECT DISTINCT ON ({key}) {', '.join(spec.columns)} FROM {staging} "
                    f"ON CONFLICT ({key}) DO UPDATE SET {updates}"
                )
            cur.execute(f"SELECT count(*) FROM {target} {where}", params or None)
            partition_rows = int(cur.fetchone()[0])
        seconds = time.perf_counter() - started
        stream_metadata = obj.metadata if isinstance(obj, FrameChunks) else {}
        return {
            **stream_metadata,
            "dagster/row_count": dg.MetadataValue.int(partition_rows),
            "rows_written": dg.MetadataValue.int(rows),
            "chunks": dg.MetadataValue.int(chunks),
            "write_mode": dg.MetadataValue.text(write_mode(context)),
            "upsert_fast_path": dg.MetadataValue.bool(mode == "append"),
            "write_seconds": dg.MetadataValue.float(round(seconds, 4)),
            "dagster/column_schema": column_schema(spec),
            "table": dg.MetadataValue.text(target),
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


def frame_from_arrow(spec: TableSpec, table: pa.Table) -> pd.DataFrame:
    """Arrow columns straight to the model's dtypes: nullable ints without a float detour,
    timestamps in ns, dates as ``datetime.date`` objects."""
    columns = spec.model.to_schema().columns
    data = {}
    for name in table.column_names:
        dtype = str(columns[name].dtype)
        column = table.column(name)
        if dtype == "Int64":
            data[name] = column.to_pandas(types_mapper={pa.int64(): pd.Int64Dtype()}.get)
        elif dtype == "date":
            data[name] = column.to_pandas(date_as_object=True)
        else:
            data[name] = column.to_pandas(coerce_temporal_nanoseconds=True)
    return pd.DataFrame(data, columns=table.column_names)
