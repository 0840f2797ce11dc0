"""Versioned, idempotent SQL migrations, plus TimescaleDB features when the extension can be used.

Migrations are the files ``migrations/NNNN_name.sql``; each is applied once per schema, in order,
inside one transaction, under an advisory lock so that concurrent processes migrate only once.
Applied versions are recorded in ``<schema>.schema_migrations``.

``TRADING_DATA_STORAGE_MODE`` chooses the storage:

- ``auto`` (default): TimescaleDB hypertables when the extension can be created, else plain PostgreSQL.
  An extension that is installed on the server but cannot be loaded (typically: not in
  ``shared_preload_libraries``) gives plain mode and a warning saying what to do, never a crash.
- ``postgres``: plain PostgreSQL; the extension is never touched.
- ``timescaledb``: TimescaleDB or nothing: the migration fails, before changing anything, with one
  sentence saying why the extension cannot be used.

``TRADING_DATA_SCHEMA`` names the schema: a plain lower-case identifier that is neither a PostgreSQL
system schema nor a reserved key word (see :func:`validate_schema_name`).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from typing import TYPE_CHECKING, Literal, cast

from trading_data.db import aggregate_sql
from trading_data.db.documentation import apply_comments
from trading_data.schemas import TABLES, TableSpec
from trading_data.settings import ConfigurationError, SettingsError
from trading_data.settings import platform as settings_platform
from trading_data.settings.platform import SCHEMA, STORAGE_MODE

if TYPE_CHECKING:
    import psycopg


log = logging.getLogger(__name__)

SCHEMA_PATTERN = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
DEFAULT_SCHEMA = SCHEMA.default
# Data older than this is compressed. Schedules rewrite only today's session and backfills are rare,
# so a horizon well past a month keeps re-materialization on uncompressed chunks.
DEFAULT_COMPRESS_AFTER = "45 days"
_LOCK_KEY = 7_203_311
SCHEMA_ENV = SCHEMA.env_var
STORAGE_MODE_ENV = STORAGE_MODE.env_var
StorageMode = Literal["auto", "postgres", "timescaledb"]
STORAGE_MODES = cast(tuple[StorageMode, ...], settings_platform.STORAGE_MODES)
TIMESCALE_EXTENSION = "timescaledb"

# PostgreSQL's reserved key words (pg_get_keywords() categories R and T, PostgreSQL 18), none of which
# can be an unquoted schema name. Schema names are written unquoted into SQL text (the migration files,
# the IO manager's queries, TimescaleDB's 'schema.table' arguments), so rejecting these is what keeps
# every statement valid; the test suite compares this list with the server's own.
_RESERVED_KEY_WORDS_TEXT = """
    all analyse analyze and any array as asc asymmetric both case cast check collate column constraint
    create current_catalog current_date current_role current_time current_timestamp current_user default
    deferrable desc distinct do else end except false fetch for foreign from grant group having in
    initially intersect into lateral leading limit localtime localtimestamp not null offset on only or
    order placing primary references returning select session_user some symmetric system_user table then
    to trailing true union unique user using variadic when where window with
    authorization binary collation concurrently cross current_schema freeze full ilike inner is isnull
    join left like natural notnull outer overlaps right similar tablesample verbose
"""
RESERVED_KEY_WORDS = frozenset(_RESERVED_KEY_WORDS_TEXT.split())


class MigrationError(RuntimeError):
    """A migration could not be applied."""


class DatabaseSettingError(SettingsError):
    """``TRADING_DATA_SCHEMA`` or ``TRADING_DATA_STORAGE_MODE`` is invalid; the message is one sentence
    naming the variable and its value (the :class:`~trading_data.settings.SettingsError` format)."""


class TimescaleUnavailableError(MigrationError, ConfigurationError):
    """``TRADING_DATA_STORAGE_MODE=timescaledb`` but the extension cannot be used on this server; nothing
    was changed. A configuration error too: the setting, not the data, has to change."""


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
    warnings: list[str] = field(default_factory=list)
    """Sentences for the user (e.g. TimescaleDB installed but not loadable, so plain mode was used)."""


def validate_schema_name(schema: str) -> str:
    """``schema`` when it is usable unquoted in SQL and is the user's own; else DatabaseSettingError.

    ``public`` is accepted: it is an ordinary user schema (owned by the database owner), a sound choice
    for a database dedicated to the platform; ``information_schema`` and ``pg_*`` belong to PostgreSQL.
    """
    problem = None
    if not SCHEMA_PATTERN.match(schema):
        problem = (
            "a schema name must be a plain lower-case identifier (a letter or underscore, then up to 62 "
            "letters, digits or underscores)"
        )
    elif schema == "information_schema" or schema.startswith("pg_"):
        problem = "that is a PostgreSQL system schema; choose a schema of your own, e.g. market"
    elif schema in RESERVED_KEY_WORDS:
        problem = "that is a reserved SQL key word; choose another schema name, e.g. market"
    if problem:
        raise DatabaseSettingError("schema", problem, SCHEMA_ENV, schema)
    return schema


def storage_mode_setting(environ: Mapping[str, str] | None = None) -> StorageMode:
    """``TRADING_DATA_STORAGE_MODE``: auto (default, also when empty), postgres or timescaledb."""
    try:
        return cast(StorageMode, STORAGE_MODE.get(environ))
    except SettingsError as err:
        raise DatabaseSettingError(err.option, err.problem, err.env_var, err.raw) from None


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


def hypertables(conn: psycopg.Connection, schema: str) -> list[str]:
    """The schema's hypertables, sorted (none without TimescaleDB, or in a schema migrated in plain mode)."""
    if not timescale_installed(conn):
        return []
    rows = conn.execute(
        "SELECT hypertable_name FROM timescaledb_information.hypertables WHERE hypertable_schema = %s "
        "ORDER BY 1",
        (schema,),
    )
    return [str(r[0]) for r in rows]


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


def _server_message(exc: psycopg.Error) -> str:
    """The server's error in one line (primary message and hint), without psycopg's context lines."""
    diag = exc.diag
    primary = diag.message_primary or (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    text = f"{primary} ({diag.message_hint})" if diag.message_hint else primary
    return " ".join(text.split())


@dataclass(frozen=True)
class ExtensionProblem:
    """Why ``CREATE EXTENSION`` failed: the server's message, and whether it ended the session."""

    message: str
    session_ended: bool


def extension_creation_problem(url: str, extension: str) -> ExtensionProblem | None:
    """Why ``CREATE EXTENSION extension`` fails on this server, or None when it would succeed.

    Tried on a connection of its own and rolled back: TimescaleDB's loader ends the session (FATAL)
    when it is not preloaded, which would take the migration's transaction with it.
    """
    import psycopg
    from psycopg import sql

    probe = psycopg.connect(url, connect_timeout=10)
    try:
        probe.execute(sql.SQL("CREATE EXTENSION IF NOT EXISTS {}").format(sql.Identifier(extension)))
    except psycopg.Error as exc:
        return ExtensionProblem(_server_message(exc), session_ended=probe.closed or probe.broken)
    finally:
        if not (probe.closed or probe.broken):
            probe.rollback()
        probe.close()
    return None


def timescale_unusable_sentence(problem: ExtensionProblem) -> str:
    """What to do when the extension is installed on the server but ``CREATE EXTENSION`` fails."""
    preload = (
        "add timescaledb to shared_preload_libraries in postgresql.conf and restart PostgreSQL, or set "
        f"{STORAGE_MODE_ENV}=postgres to use plain PostgreSQL"
    )
    if "preload" in problem.message.lower():
        return f"TimescaleDB is installed on this server but not preloaded ({problem.message}): {preload}"
    if problem.session_ended:
        return (
            "TimescaleDB is installed on this server but CREATE EXTENSION timescaledb ended the session "
            f"({problem.message}), as TimescaleDB does when it is not preloaded: {preload}"
        )
    return (
        f"TimescaleDB is installed on this server but CREATE EXTENSION timescaledb failed ({problem.message}): "
        f"run the migration as a user allowed to create it (a superuser), or set {STORAGE_MODE_ENV}=postgres "
        "to use plain PostgreSQL"
    )


def _use_timescale(url: str, mode: StorageMode) -> tuple[bool, str | None]:
    """(use TimescaleDB?, warning) for ``mode``; raises TimescaleUnavailableError in timescaledb mode."""
    import psycopg

    if mode == "postgres":
        return False, None
    with psycopg.connect(url, connect_timeout=10) as conn:
        if timescale_installed(conn):
            return True, None
        available = timescale_available(conn)
    if not available:
        if mode == "timescaledb":
            raise TimescaleUnavailableError(
                f"{STORAGE_MODE_ENV}=timescaledb but the timescaledb extension is not installed on this "
                f"server: install TimescaleDB, or set {STORAGE_MODE_ENV}=auto or postgres to use plain "
                "PostgreSQL"
            )
        return False, None
    problem = extension_creation_problem(url, TIMESCALE_EXTENSION)
    if problem is None:
        return True, None
    sentence = timescale_unusable_sentence(problem)
    if mode == "timescaledb":
        raise TimescaleUnavailableError(f"{STORAGE_MODE_ENV}=timescaledb cannot be honoured: {sentence}")
    return False, sentence


def migrate(url: str, schema: str = DEFAULT_SCHEMA, *, mode: StorageMode | None = None) -> MigrationResult:
    """Apply pending migrations to ``schema``; TimescaleDB features as ``mode`` (default: the
    ``TRADING_DATA_STORAGE_MODE`` setting) allows. All of it is one transaction."""
    import psycopg
    from psycopg import sql

    validate_schema_name(schema)
    mode = storage_mode_setting() if mode is None else mode
    timescale, warning = _use_timescale(url, mode)
    warnings = [f"{warning}; schema {schema} uses plain PostgreSQL for now"] if warning else []
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
        if timescale:
            try:
                for statement in [*timescale_ddl(schema), *aggregate_sql.timescale_ddl(schema)]:
                    conn.execute(statement.encode())
            except psycopg.Error as exc:
                raise MigrationError(
                    f"TimescaleDB setup of schema {schema} failed, nothing was changed: {_server_message(exc)}"
                ) from exc
        # Descriptions come from the models, so they are (re)applied whenever the schema is migrated; after
        # the TimescaleDB setup, whose continuous aggregates replace the plain aggregate tables.
        apply_comments(conn, schema, aggregate_kinds(conn, schema))
        conn.commit()
    mode_text = "TimescaleDB (hypertables, compression by ticker)" if timescale else "plain PostgreSQL"
    log.info("storage mode for schema %s: %s; applied %s", schema, mode_text, applied or "nothing new")
    for text in warnings:
        log.warning("%s", text)
    return MigrationResult(schema=schema, applied=applied, timescale=timescale, warnings=warnings)


def storage_mode(url: str, schema: str = DEFAULT_SCHEMA) -> dict[str, object]:
    """What ``trading-data db status`` shows: versions applied and the TimescaleDB mode."""
    import psycopg
    from psycopg import sql

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
        tables = hypertables(conn, schema)
        return {
            "schema": schema,
            "applied": versions,
            "pending": pending,
            "timescale_available": timescale_available(conn),
            "mode": "timescaledb" if tables else "postgresql",
            "hypertables": tables,
        }


def aggregate_kind(conn: psycopg.Connection, schema: str, name: str) -> str | None:
    """``table`` (plain), ``continuous aggregate``, ``view`` (anything else), or None when it does not
    exist."""
    row = conn.execute(
        "SELECT c.relkind FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = %s AND c.relname = %s",
        (schema, name),
    ).fetchone()
    if row is None:
        return None
    if row[0] == "r":
        return "table"
    continuous = (
        timescale_installed(conn)
        and conn.execute(
            "SELECT 1 FROM timescaledb_information.continuous_aggregates WHERE view_schema = %s AND view_name = %s",
            (schema, name),
        ).fetchone()
    )
    return "continuous aggregate" if continuous else "view"


def aggregate_kinds(conn: psycopg.Connection, schema: str) -> dict[str, str | None]:
    """:func:`aggregate_kind` of every aggregate."""
    return {name: aggregate_kind(conn, schema, name) for name in aggregate_sql.AGGREGATES}
