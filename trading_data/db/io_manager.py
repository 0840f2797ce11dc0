"""A partition-aware PostgreSQL IO manager on Dagster's DbIOManager.

Built like the official DuckDB integration: a ``DbClient`` (connections, schema checks, window deletes,
select statements) and a ``ConfigurableIOManagerFactory`` here, the pandas ``DbTypeHandler`` in
:mod:`trading_data.db.pandas_type_handler`. Unlike the official handlers, partition windows are bound
as timezone-aware parameters, never formatted as naive strings, and every write is one transaction.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from typing import Any

import dagster as dg
import pandas as pd

# Dagster exports no public name for the DbIOManager family (see trading_data.db.table_slices).
from dagster._core.storage.db_io_manager import DbClient, DbIOManager, TableSlice
from pydantic import Field

from trading_data.db import table_slices as slices
from trading_data.db.frame_chunks import FrameChunks
from trading_data.db.migrate import DEFAULT_SCHEMA, validate_schema_name
from trading_data.db.pandas_type_handler import PandasPostgresTypeHandler
from trading_data.db.url import market_database_url, mask_password


class PostgresClient(DbClient):
    """Connections, schema checks, window deletes and select statements for PostgreSQL."""

    @staticmethod
    @contextmanager
    def connect(context: dg.OutputContext | dg.InputContext, table_slice: TableSlice) -> Iterator[Any]:
        import adbc_driver_manager
        import adbc_driver_postgresql.dbapi as adbc

        url = str(context.resource_config.get("database_url") or "") if context.resource_config else ""
        url = url or market_database_url()
        try:
            conn = adbc.connect(url)
        except adbc_driver_manager.Error as exc:
            raise slices.StorageError(
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
            raise slices.StorageError(
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
        spec = slices.table_spec(table_slice.table)
        with connection.cursor() as cur:
            cur.execute(
                "SELECT column_name FROM information_schema.columns WHERE table_schema = $1 "
                "AND table_name = $2",
                (table_slice.schema, spec.name),
            )
            columns = {row[0] for row in cur.fetchall()}
        if not columns:
            raise slices.StorageError(
                f"table {table_slice.schema}.{spec.name} does not exist: run `trading-data db migrate`"
            )
        missing = [c for c in spec.columns if c not in columns]
        if missing:
            raise slices.StorageError(
                f"table {table_slice.schema}.{spec.name} lacks columns {missing}: run "
                "`trading-data db migrate`"
            )

    @staticmethod
    def delete_table_slice(context: dg.OutputContext, table_slice: TableSlice, connection: Any) -> None:
        if slices.write_mode(context) != "replace":
            return
        spec = slices.table_spec(table_slice.table)
        where, params = slices.window_clause(spec, table_slice)
        target = slices.qualified_name(table_slice)
        with connection.cursor() as cur:
            # Concurrent replaces of one window take turns: without the lock both delete nothing,
            # then the second's load fails on the first's keys.
            slices.lock_sessions(cur, target, spec, slices.output_sessions(context), params)
            cur.execute(f"DELETE FROM {target} {where}", params or None)

    @staticmethod
    def get_select_statement(table_slice: TableSlice) -> str:
        spec = slices.table_spec(table_slice.table)
        columns = ", ".join(table_slice.columns or spec.columns)
        where, params = slices.window_clause(spec, table_slice)
        if params:
            where = where.replace("$1", f"'{params[0].isoformat()}'").replace(
                "$2", f"'{params[1].isoformat()}'"
            )
        return f"SELECT {columns} FROM {slices.qualified_name(table_slice)} {where}".strip()


class SessionDbIOManager(DbIOManager):
    """DbIOManager that can fail a step after its write committed (see FrameChunks)."""

    def handle_output(self, context: dg.OutputContext, obj: object) -> None:
        super().handle_output(context, obj)
        if isinstance(obj, FrameChunks) and obj.error_after_commit is not None:
            raise obj.error_after_commit


class PostgresPandasIOManager(dg.ConfigurableIOManagerFactory):
    """Stores each asset in ``<schema>.<asset name>`` of PostgreSQL, the run's partition window in one
    transaction (one session, or every session of a backfill run's range).

    Per-asset metadata: ``partition_expr`` (the time column) and ``write_mode`` (replace | upsert).
    """

    database_url: str | None = None
    schema_: str = Field(default=DEFAULT_SCHEMA, alias="schema")

    @classmethod
    def check_configuration(cls, config: Mapping[str, Any]) -> None:
        """A bad schema name fails the run before any step (see trading_data.orchestration.executor)."""
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
