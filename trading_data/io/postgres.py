"""A partition-aware PostgreSQL IO manager for pandas, on Dagster's DbIOManager.

Built like the official DuckDB and ClickHouse integrations (a ``DbClient`` plus a pandas
``DbTypeHandler``), with three differences that matter for market data:

* partition windows are bound as timezone-aware parameters, never formatted as naive strings;
* every write is one transaction: ``replace`` deletes the window then bulk-loads, ``upsert``
  bulk-loads into a temporary table then ``INSERT … ON CONFLICT (key) DO UPDATE``;
* bulk loading is ADBC (binary COPY underneath), chunk by chunk, so an iterator of frames streams
  into the database with memory for one chunk.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from typing import Any

import adbc_driver_manager
import adbc_driver_postgresql.dbapi as adbc
import dagster as dg
import pandas as pd
import pyarrow as pa
from dagster._core.definitions.partitions.utils import TimeWindow
from dagster._core.storage.db_io_manager import DbClient, DbIOManager, DbTypeHandler, TableSlice
from pydantic import Field

from trading_data.calendar import NEW_YORK, session_window
from trading_data.db.migrate import DEFAULT_SCHEMA, validate_schema_name
from trading_data.db.url import mask_password
from trading_data.schemas import TABLES, TableSpec, arrow_schema
from trading_data.validation import validate

WRITE_MODES = ("replace", "upsert")


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


class StorageError(RuntimeError):
    """The database cannot take or give the data; the message says what to do."""


def table_spec(table: str) -> TableSpec:
    try:
        return TABLES[table]
    except KeyError:
        raise StorageError(f"no table model for asset {table!r}; known tables: {', '.join(TABLES)}") from None


def window_parameters(spec: TableSpec, window: TimeWindow) -> tuple[Any, Any]:
    """Bounds for ``time_column >= start AND time_column < end``, typed for the column."""
    start = window.start.astimezone(NEW_YORK)
    end = window.end.astimezone(NEW_YORK)
    if spec.time_column == "session":
        return start.date(), end.date()
    # Bind UTC: pyarrow (under ADBC) turns a ZoneInfo-aware datetime into its wall-clock time as UTC
    # once pandas is imported, which would shift every window by the New York offset.
    return start.astimezone(dt.UTC), end.astimezone(dt.UTC)


def _where(spec: TableSpec, table_slice: TableSlice) -> tuple[str, tuple[Any, ...]]:
    for dimension in table_slice.partition_dimensions or []:
        if isinstance(dimension.partitions, TimeWindow):
            start, end = window_parameters(spec, dimension.partitions)
            column = dimension.partition_expr
            if column != spec.time_column:
                raise StorageError(
                    f"{spec.name}: partition_expr {column!r} must be the time column {spec.time_column!r}"
                )
            return f"WHERE {column} >= $1 AND {column} < $2", (start, end)
    return "", ()


def _qualified(table_slice: TableSlice) -> str:
    return f"{validate_schema_name(table_slice.schema)}.{table_spec(table_slice.table).name}"


def _write_mode(context: dg.OutputContext) -> str:
    spec = table_spec(context.asset_key.path[-1])
    mode = (context.definition_metadata or {}).get("write_mode", spec.write_mode)
    if mode not in WRITE_MODES:
        raise StorageError(f"{spec.name}: write_mode {mode!r} is not one of {WRITE_MODES}")
    return str(mode)


class PostgresClient(DbClient):
    """Connections, schema checks, window deletes and select statements for PostgreSQL."""

    @staticmethod
    @contextmanager
    def connect(context: dg.OutputContext | dg.InputContext, table_slice: TableSlice) -> Iterator[Any]:
        url = str(context.resource_config.get("database_url") or "") if context.resource_config else ""
        if not url:
            from trading_data.db.url import market_database_url

            url = market_database_url()
        try:
            conn = adbc.connect(url)
        except adbc_driver_manager.Error as exc:
            raise StorageError(
                f"cannot reach PostgreSQL at {mask_password(url)}: {exc}. Start it with "
                "`trading-data db start` or set TRADING_DATA_DATABASE_URL."
            ) from exc
        try:
            yield conn
            conn.commit()
        except adbc_driver_manager.Error as exc:
            # If the connection died, the server has rolled the transaction back already.
            with suppress(adbc_driver_manager.Error):
                conn.rollback()
            raise StorageError(
                f"PostgreSQL at {mask_password(url)} failed during {table_slice.schema}."
                f"{table_slice.table}: {exc}. The transaction was rolled back: the table "
                "holds its previous data; re-run to retry."
            ) from exc
        except BaseException:
            with suppress(adbc_driver_manager.Error):
                conn.rollback()
            raise
        finally:
            with suppress(adbc_driver_manager.Error):
                conn.close()

    @staticmethod
    def ensure_schema_exists(context: dg.OutputContext, table_slice: TableSlice, connection: Any) -> None:
        # Tables are created by migrations, never by the IO manager (DESIGN.md decision 6).
        spec = table_spec(table_slice.table)
        with connection.cursor() as cur:
            cur.execute(
                "SELECT column_name FROM information_schema.columns WHERE table_schema = $1 "
                "AND table_name = $2",
                (table_slice.schema, spec.name),
            )
            columns = {row[0] for row in cur.fetchall()}
        if not columns:
            raise StorageError(
                f"table {table_slice.schema}.{spec.name} does not exist: run `trading-data db migrate`"
            )
        missing = [c for c in spec.columns if c not in columns]
        if missing:
            raise StorageError(
                f"table {table_slice.schema}.{spec.name} lacks columns {missing}: run "
                "`trading-data db migrate`"
            )

    @staticmethod
    def delete_table_slice(context: dg.OutputContext, table_slice: TableSlice, connection: Any) -> None:
        if _write_mode(context) != "replace":
            return
        spec = table_spec(table_slice.table)
        where, params = _where(spec, table_slice)
        target = _qualified(table_slice)
        with connection.cursor() as cur:
            # Concurrent replaces of one window take turns: without the lock both delete nothing,
            # then the second's load fails on the first's keys.
            _lock_window(cur, target, params)
            cur.execute(f"DELETE FROM {target} {where}", params or None)

    @staticmethod
    def get_select_statement(table_slice: TableSlice) -> str:
        spec = table_spec(table_slice.table)
        columns = ", ".join(table_slice.columns or spec.columns)
        where, params = _where(spec, table_slice)
        if params:
            where = where.replace("$1", f"'{params[0].isoformat()}'").replace(
                "$2", f"'{params[1].isoformat()}'"
            )
        return f"SELECT {columns} FROM {_qualified(table_slice)} {where}".strip()


def _check_columns(spec: TableSpec, frame: pd.DataFrame) -> None:
    extra = [c for c in frame.columns if c not in spec.columns]
    missing = [c for c in spec.columns if c not in frame.columns]
    if extra or missing:
        raise StorageError(
            f"{spec.name}: frame columns differ from the table: missing {missing}, unexpected {extra}"
        )


def _check_window(spec: TableSpec, frame: pd.DataFrame, table_slice: TableSlice) -> None:
    """Rows outside the partition window would survive a later replace of that window."""
    _, params = _where(spec, table_slice)
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


def _lock_window(cur: Any, target: str, params: tuple[Any, ...]) -> None:
    """Serialise writes (replace and upsert alike) of one table window until COMMIT."""
    cur.execute(
        "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))",
        (f"{target} {[p.isoformat() for p in params]}",),
    )
    cur.fetchall()


def _lock_window_and_check_empty(cur: Any, target: str, where: str, params: tuple[Any, ...]) -> bool:
    """Serialise upserts of one window until COMMIT, and say whether the window holds no row yet."""
    _lock_window(cur, target, params)
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
    from trading_data.schemas import sql_columns

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
        mode = _write_mode(context)
        schema = arrow_schema(spec)
        target = _qualified(table_slice)
        staging = f"staging_{spec.name}"
        started = time.perf_counter()
        rows = 0
        chunks = 0
        where, params = _where(spec, table_slice)
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
            "write_mode": dg.MetadataValue.text(_write_mode(context)),
            "upsert_fast_path": dg.MetadataValue.bool(mode == "append"),
            "write_seconds": dg.MetadataValue.float(round(seconds, 4)),
            "dagster/column_schema": column_schema(spec),
            "table": dg.MetadataValue.text(target),
        }

    def load_input(self, context: dg.InputContext, table_slice: TableSlice, connection: Any) -> pd.DataFrame:
        spec = table_spec(table_slice.table)
        return read_window(
            connection, table_slice.schema, spec, _where(spec, table_slice), columns=table_slice.columns
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


class SessionDbIOManager(DbIOManager):
    """DbIOManager that can fail a step after its write committed (see FrameChunks)."""

    def handle_output(self, context: dg.OutputContext, obj: object) -> None:
        super().handle_output(context, obj)
        if isinstance(obj, FrameChunks) and obj.error_after_commit is not None:
            raise obj.error_after_commit


class PostgresPandasIOManager(dg.ConfigurableIOManagerFactory):
    """Stores each asset in ``<schema>.<asset name>`` of PostgreSQL, one session window at a time.

    Per-asset metadata: ``partition_expr`` (the time column) and ``write_mode`` (replace | upsert).
    """

    database_url: str | None = None
    schema_: str = Field(default=DEFAULT_SCHEMA, alias="schema")

    @classmethod
    def check_configuration(cls, config: Mapping[str, Any]) -> None:
        """A bad schema name fails the run before any step (see trading_data.defs.executor)."""
        validate_schema_name(config.get("schema") or DEFAULT_SCHEMA)

    def create_io_manager(self, context: Any) -> DbIOManager:
        return SessionDbIOManager(
            type_handlers=[PandasPostgresTypeHandler()],
            db_client=PostgresClient(),
            database="trading_data",
            schema=validate_schema_name(self.schema_),
            io_manager_name="PostgresPandasIOManager",
            default_load_type=pd.DataFrame,
        )


def window_for_session(session_key: str) -> TimeWindow:
    """The partition window of one session key, as Dagster hands it to the IO manager."""
    return TimeWindow(*session_window(session_key))
