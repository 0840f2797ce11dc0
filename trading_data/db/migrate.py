"""Versioned, idempotent SQL migrations, plus TimescaleDB features when the extension exists.

Migrations are the files ``migrations/NNNN_name.sql``; each is applied once per schema, in order,
inside one transaction, under an advisory lock so that concurrent processes migrate only once.
Applied versions are recorded in ``<schema>.schema_migrations``.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from importlib import resources

import psycopg
from psycopg import sql

from trading_data.schemas import TABLES, TableSpec

log = logging.getLogger(__name__)

SCHEMA_PATTERN = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
DEFAULT_SCHEMA = "market"
# Data older than this is compressed. Schedules rewrite only today's session and backfills are rare,
# so a horizon well past a month keeps re-materialization on uncompressed chunks.
DEFAULT_COMPRESS_AFTER = "45 days"
_LOCK_KEY = 7_203_311


class MigrationError(RuntimeError):
    """A migration could not be applied."""


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql_text: str


@dataclass(frozen=True)
class MigrationResult:
    schema: str
    applied: list[str]
    timescale: bool


def validate_schema_name(schema: str) -> str:
    if not SCHEMA_PATTERN.match(schema):
        raise MigrationError(
            f"schema name {schema!r} is not a plain lower-case identifier (letters, digits, underscore)"
        )
    return schema


def load_migrations() -> list[Migration]:
    folder = resources.files("trading_data.db") / "migrations"
    migrations = []
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        match = re.match(r"^(\d{4})_(\w+)\.sql$", entry.name)
        if match:
            migrations.append(Migration(int(match.group(1)), match.group(2), entry.read_text()))
    return migrations


def timescale_available(conn: psycopg.Connection) -> bool:
    row = conn.execute("SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb'").fetchone()
    return row is not None


def timescale_installed(conn: psycopg.Connection) -> bool:
    row = conn.execute("SELECT 1 FROM pg_extension WHERE extname = 'timescaledb'").fetchone()
    return row is not None


def timescale_ddl(
    schema: str, specs: list[TableSpec] | None = None, compress_after: str = DEFAULT_COMPRESS_AFTER
) -> list[str]:
    """The statements that turn every market table into a compressed hypertable (idempotent)."""
    validate_schema_name(schema)
    statements = ["CREATE EXTENSION IF NOT EXISTS timescaledb"]
    for spec in specs or list(TABLES.values()):
        table = f"{schema}.{spec.name}"
        orderby = ", ".join(c for c in spec.primary_key if c not in ("ticker", spec.time_column))
        orderby = f"{spec.time_column} DESC" + (f", {orderby}" if orderby else "")
        statements += [
            f"SELECT create_hypertable('{table}', by_range('{spec.time_column}', "
            f"INTERVAL '{spec.chunk_interval}'), if_not_exists => TRUE, migrate_data => TRUE)",
            f"ALTER TABLE {table} SET (timescaledb.compress, timescaledb.compress_segmentby = 'ticker', "
            f"timescaledb.compress_orderby = '{orderby}')",
            f"SELECT add_compression_policy('{table}', compress_after => INTERVAL '{compress_after}', "
            f"if_not_exists => TRUE)",
        ]
    return statements


def migrate(url: str, schema: str = DEFAULT_SCHEMA, *, use_timescale: bool | None = None) -> MigrationResult:
    """Apply pending migrations to ``schema``; enable TimescaleDB features when available."""
    validate_schema_name(schema)
    applied: list[str] = []
    with psycopg.connect(url) as conn:
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK_KEY,))
        conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(schema)))
        conn.execute(
            sql.SQL(
                "CREATE TABLE IF NOT EXISTS {}.schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL,"
                " applied_at TIMESTAMPTZ NOT NULL DEFAULT now())"
            ).format(sql.Identifier(schema))
        )
        done = {
            row[0]
            for row in conn.execute(
                sql.SQL("SELECT version FROM {}.schema_migrations").format(sql.Identifier(schema))
            )
        }
        for migration in load_migrations():
            if migration.version in done:
                continue
            try:
                conn.execute(migration.sql_text.replace("{schema}", schema).encode())
            except psycopg.Error as exc:
                raise MigrationError(
                    f"migration {migration.version:04d}_{migration.name} failed: {exc}"
                ) from exc
            conn.execute(
                sql.SQL("INSERT INTO {}.schema_migrations (version, name) VALUES (%s, %s)").format(
                    sql.Identifier(schema)
                ),
                (migration.version, migration.name),
            )
            applied.append(f"{migration.version:04d}_{migration.name}")
        timescale = timescale_available(conn) if use_timescale is None else use_timescale
        if timescale:
            for statement in timescale_ddl(schema):
                conn.execute(statement.encode())
        conn.commit()
    mode = "TimescaleDB (hypertables, compression by ticker)" if timescale else "plain PostgreSQL"
    log.info("storage mode for schema %s: %s; applied %s", schema, mode, applied or "nothing new")
    return MigrationResult(schema=schema, applied=applied, timescale=timescale)


def storage_mode(url: str, schema: str = DEFAULT_SCHEMA) -> dict[str, object]:
    """What ``trading-data db status`` shows: versions applied and the TimescaleDB mode."""
    with psycopg.connect(url) as conn:
        exists = conn.execute(
            "SELECT 1 FROM information_schema.tables WHERE table_schema = %s"
            " AND table_name = 'schema_migrations'",
            (schema,),
        ).fetchone()
        versions = (
            []
            if not exists
            else [
                f"{v:04d}_{n}"
                for v, n in conn.execute(
                    sql.SQL("SELECT version, name FROM {}.schema_migrations ORDER BY version").format(
                        sql.Identifier(schema)
                    )
                )
            ]
        )
        pending = [
            f"{m.version:04d}_{m.name}"
            for m in load_migrations()
            if f"{m.version:04d}_{m.name}" not in versions
        ]
        hypertables: list[str] = []
        if timescale_installed(conn):
            hypertables = [
                r[0]
                for r in conn.execute(
                    "SELECT hypertable_name FROM timescaledb_information.hypertables WHERE hypertable_schema = %s",
                    (schema,),
                )
            ]
        return {
            "schema": schema,
            "applied": versions,
            "pending": pending,
            "timescale_available": timescale_available(conn),
            "mode": "timescaledb" if hypertables else "postgresql",
            "hypertables": hypertables,
        }
