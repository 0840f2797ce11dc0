"""What the IO manager's client and its pandas type handler both need to know about a ``TableSlice``:
its table model, its qualified name, its partition window as bound parameters (and, for a run of several
sessions, each session's window), its write mode, and the per-session locks that serialise writes."""

from __future__ import annotations

import datetime as dt
from typing import Any

import dagster as dg

# Dagster exports no public name for the DbIOManager family (1.13: not in dagster/__init__.py); the
# official DuckDB, BigQuery and Delta Lake integrations import it from here too.
from dagster._core.storage.db_io_manager import TableSlice

from trading_data.calendar import NEW_YORK, session_window
from trading_data.db.migrate import validate_schema_name
from trading_data.schemas import TABLES, TableSpec

WRITE_MODES = ("replace", "upsert")


class StorageError(RuntimeError):
    """The database cannot take or give the data; the message says what to do."""


def table_spec(table: str) -> TableSpec:
    try:
        return TABLES[table]
    except KeyError:
        raise StorageError(f"no table model for asset {table!r}; known tables: {', '.join(TABLES)}") from None


def window_parameters(spec: TableSpec, window: dg.TimeWindow) -> tuple[Any, Any]:
    """Bounds for ``time_column >= start AND time_column < end``, typed for the column."""
    start = window.start.astimezone(NEW_YORK)
    end = window.end.astimezone(NEW_YORK)
    if spec.time_column == "session":
        return start.date(), end.date()
    # Bind UTC: pyarrow (under ADBC) turns a ZoneInfo-aware datetime into its wall-clock time as UTC
    # once pandas is imported, which would shift every window by the New York offset.
    return start.astimezone(dt.UTC), end.astimezone(dt.UTC)


def window_clause(spec: TableSpec, table_slice: TableSlice) -> tuple[str, tuple[Any, ...]]:
    """``WHERE`` clause with ``$1``/``$2`` placeholders and its bounds; ``("", ())`` when unpartitioned."""
    for dimension in table_slice.partition_dimensions or []:
        if isinstance(dimension.partitions, dg.TimeWindow):
            start, end = window_parameters(spec, dimension.partitions)
            column = dimension.partition_expr
            if column != spec.time_column:
                raise StorageError(
                    f"{spec.name}: partition_expr {column!r} must be the time column {spec.time_column!r}"
                )
            return f"WHERE {column} >= $1 AND {column} < $2", (start, end)
    return "", ()


def session_clause(spec: TableSpec, session_key: str) -> tuple[str, tuple[Any, ...]]:
    """``WHERE`` clause and bounds of one session's window (a part of a multi-session run's window)."""
    start, end = window_parameters(spec, dg.TimeWindow(*session_window(session_key)))
    column = spec.time_column
    return f"WHERE {column} >= $1 AND {column} < $2", (start, end)


def output_sessions(context: dg.OutputContext) -> list[str]:
    """The session keys an output writes: one for a one-session run, every session of a range's run."""
    return list(context.asset_partition_keys) if context.has_asset_partitions else []


def qualified_name(table_slice: TableSlice) -> str:
    return f"{validate_schema_name(table_slice.schema)}.{table_spec(table_slice.table).name}"


def write_mode(context: dg.OutputContext) -> str:
    """The asset's ``write_mode`` metadata, else its table model's."""
    spec = table_spec(context.asset_key.path[-1])
    mode = (context.definition_metadata or {}).get("write_mode", spec.write_mode)
    if mode not in WRITE_MODES:
        raise StorageError(f"{spec.name}: write_mode {mode!r} is not one of {WRITE_MODES}")
    return str(mode)


def lock_window(cur: Any, target: str, params: tuple[Any, ...]) -> None:
    """Serialise writes (replace and upsert alike) of one table window until COMMIT."""
    cur.execute(
        "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))",
        (f"{target} {[p.isoformat() for p in params]}",),
    )
    cur.fetchall()


def lock_sessions(
    cur: Any, target: str, spec: TableSpec, sessions: list[str], params: tuple[Any, ...]
) -> None:
    """Lock the window of every session written (``params``, the whole window, when the output is not
    partitioned): a run of a range and a one-session run of a session inside it take the same lock, and
    runs lock in session order, so two overlapping ranges cannot deadlock."""
    if len(sessions) <= 1:
        lock_window(cur, target, params)
        return
    for key in sorted(sessions):
        lock_window(cur, target, session_clause(spec, key)[1])
