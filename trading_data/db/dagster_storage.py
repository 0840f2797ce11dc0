"""Dagster's instance storage for this project: dagster-postgres at the URL the platform resolves.

``dagster.yaml`` names this class instead of ``postgres: {postgres_url: {env: ...}}`` so that the URL
comes from :func:`trading_data.db.url.dagster_database_url` (the user's
``TRADING_DATA_DAGSTER_DATABASE_URL``, else a ``dagster`` database beside the market data, which
defaults to the embedded dev server). A fixed variable in ``dagster.yaml`` had to be filled from a
``.env`` file, and Dagster's CLI injects ``.env`` over the process environment, so the project's
file shadowed the user's own setting.

    storage:
      custom:
        module: trading_data.db.dagster_storage
        class: TradingDataPostgresStorage
        config: {}          # or postgres_url: {env: SOME_VARIABLE} to name the URL explicitly

In a gRPC code server's orphan check this storage waits for the server instead of raising: see
:data:`ORPHAN_CHECK_THREAD` for why. On a new database one process creates the schema while the others
wait: see :data:`SCHEMA_LOCK_KEY`.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from typing import Any

import sqlalchemy
import sqlalchemy.exc
from dagster import Field, StringSource

# No public name in Dagster 1.13 (dagster/__init__.py does not export it); dagster-postgres' own
# storages take their inst_data from here too.
from dagster._serdes import ConfigurableClassData
from dagster_postgres import DagsterPostgresStorage
from dagster_postgres.utils import DagsterPostgresException, retry_pg_connection_fn
from sqlalchemy.pool import NullPool

from trading_data.db.url import dagster_database_url, mask_password, sqlalchemy_psycopg2_url

# The code server's orphan check (dagster/_grpc/server.py, DagsterApiServer._cleanup_thread ->
# _check_for_orphaned_runs, Dagster 1.13) builds an instance from the run's InstanceRef whenever a run
# worker has exited, with no exception handling: one storage error during an outage ends that thread for
# good. The dead worker's run then stays in the server's executions, so the run monitor's later terminate
# (max_runtime) reaches CancelExecution, which holds the server's execution lock while it sets that run's
# multiprocessing.Event; a SIGKILLed worker was waiting on the event, and multiprocessing.Condition.notify
# waits forever for a dead waiter (CPython issue 75158). Every later StartRun blocks on that lock and times
# out ("Unexpected error in IPC client"). In this thread only, the storage waits for the database to come
# back instead, so the orphan check survives the outage, fails the orphaned run and forgets it. It waits
# holding the execution lock, so a cancel sent meanwhile finds the run gone. The cost: while the database
# is down, that code server's StartRun/CancelExecution calls wait too (they could not succeed anyway), and
# a graceful shutdown waits for the database (SIGKILL after a grace period still ends it).
ORPHAN_CHECK_THREAD = "grpc-server-cleanup"
ORPHAN_CHECK_RETRY_SECONDS = 2.0
log = logging.getLogger(__name__)

# `dagster dev` starts the webserver, the daemon and a code server at once, and each builds this storage.
# On a new database each one saw no tables and created them: dagster-postgres retries a concurrent CREATE
# TABLE that fails as DuplicateTable, but not one that fails as DuplicateObject on the table's row type
# ('type "asset_keys" already exists'), so a code location failed to load on a first start. Whoever finds
# the schema incomplete takes this session-level advisory lock (any 64-bit number the platform owns:
# "td-dgsch" in ASCII) and builds the storage holding it, so the others wait and then find every table made.
SCHEMA_LOCK_KEY = int.from_bytes(b"td-dgsch", "big") & 0x7FFF_FFFF_FFFF_FFFF
# The last table each storage creates, in one transaction with the rest of its tables.
SCHEMA_TABLES = ("runs", "event_logs", "jobs")


class DagsterStorageUnreachable(RuntimeError):
    """The Dagster storage database could not be reached; the message says how to start it."""


class TradingDataPostgresStorage(DagsterPostgresStorage):
    """``DagsterPostgresStorage`` whose URL is resolved by the platform when none is configured."""

    @classmethod
    def config_type(cls) -> dict[str, Any]:
        return {
            "postgres_url": Field(StringSource, is_required=False),
            "should_autocreate_tables": Field(bool, is_required=False, default_value=True),
        }

    @classmethod
    def from_config_value(  # type: ignore[override]
        cls, inst_data: ConfigurableClassData | None, config_value: dict[str, Any]
    ) -> TradingDataPostgresStorage:
        url = sqlalchemy_psycopg2_url(config_value.get("postgres_url") or dagster_database_url())
        autocreate = config_value.get("should_autocreate_tables", True)
        wait = threading.current_thread().name == ORPHAN_CHECK_THREAD
        while True:
            try:
                with schema_creation_lock(url) if autocreate else nullcontext():
                    return cls(postgres_url=url, should_autocreate_tables=autocreate, inst_data=inst_data)
            except DagsterPostgresException as exc:  # raised once dagster-postgres' retries are spent
                if not wait:
                    raise DagsterStorageUnreachable(
                        f"cannot reach Dagster's storage at {mask_password(url)}: start the embedded server "
                        "with `trading-data db start` (or `make dev`), or set TRADING_DATA_DAGSTER_DATABASE_URL"
                    ) from exc
                log.warning(
                    "code server orphan check: Dagster's storage at %s is unreachable; retrying in %.0f s",
                    mask_password(url),
                    ORPHAN_CHECK_RETRY_SECONDS,
                )
                time.sleep(ORPHAN_CHECK_RETRY_SECONDS)


@contextmanager
def schema_creation_lock(url: str) -> Iterator[None]:
    """Hold :data:`SCHEMA_LOCK_KEY` while Dagster's schema at ``url`` is incomplete; a complete one needs none.

    Raises ``DagsterPostgresException`` when the database cannot be reached, as dagster-postgres does.
    """
    engine = sqlalchemy.create_engine(url, poolclass=NullPool, isolation_level="AUTOCOMMIT")
    try:
        with retry_pg_connection_fn(engine.connect) as conn:
            try:
                # to_regclass resolves through the connection's search_path, as dagster-postgres' inspect does.
                found = conn.execute(
                    sqlalchemy.text(
                        "SELECT " + ", ".join(f"to_regclass('{t}') IS NOT NULL" for t in SCHEMA_TABLES)
                    )
                ).one()
                if not all(found):
                    # Released when this connection closes, after the storage is built or failed to build.
                    conn.execute(sqlalchemy.text("SELECT pg_advisory_lock(:key)"), {"key": SCHEMA_LOCK_KEY})
            except sqlalchemy.exc.DBAPIError as exc:  # the server went away after the connect
                raise DagsterPostgresException("lost the connection checking Dagster's schema") from exc
            yield
    finally:
        engine.dispose()
