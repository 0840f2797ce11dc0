"""``TRADING_DATA_STORAGE_MODE`` and a TimescaleDB that is installed but cannot be loaded.

TimescaleDB is not installable here, and the server's extension directory is not ours to write. So
the tests use PostgreSQL 18's ``extension_control_path`` (set for the migration's sessions only, through
the connection's ``options``) to put a stand-in ``timescaledb`` extension on the server: it is listed in
``pg_available_extensions`` like the real one, and its ``CREATE EXTENSION`` fails the way the real one
does when it is not in ``shared_preload_libraries``:

- ``preload``: its script calls into ``pg_stat_statements``' library, which is not preloaded either, so
  PostgreSQL itself raises ``pg_stat_statements must be loaded via "shared_preload_libraries"``;
- ``fatal``: its script ends its own session, as TimescaleDB's loader does (it raises FATAL, not ERROR,
  when it is not preloaded), which takes any transaction on that connection with it.

Each attempt to create it first bumps a sequence (sequences ignore rollback), so a test can count the
``CREATE EXTENSION`` calls.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg.conninfo import make_conninfo

from trading_data.db.migrate import (
    DatabaseSettingError,
    TimescaleUnavailableError,
    migrate,
    storage_mode_setting,
    timescale_available,
)
from trading_data.schemas import TABLES
from trading_data.settings import ConfigurationError, SettingsError

ATTEMPTS = "public.stand_in_timescaledb_attempts"
FAILURES = {
    "preload": (
        "CREATE FUNCTION stand_in_probe() RETURNS void "
        "AS '$libdir/pg_stat_statements', 'pg_stat_statements_reset' LANGUAGE C;\n"
        "SELECT stand_in_probe();\n"
    ),
    "fatal": "SELECT pg_terminate_backend(pg_backend_pid());\n",
}


@pytest.fixture
def extension_root() -> Iterator[Path]:
    """A directory the server can read (it may run as another OS user than the tests)."""
    root = Path(tempfile.mkdtemp(prefix="stand_in_timescaledb_"))
    root.chmod(0o755)
    yield root
    shutil.rmtree(root)


def stand_in_url(url: str, root: Path, failure: str) -> str:
    folder = root / "extension"
    folder.mkdir(mode=0o755, parents=True, exist_ok=True)
    (folder / "timescaledb.control").write_text(
        "comment = 'stand-in for a TimescaleDB that is not preloaded'\n"
        "default_version = '2.0'\nrelocatable = false\n"
    )
    (folder / "timescaledb--2.0.sql").write_text(f"SELECT nextval('{ATTEMPTS}');\n{FAILURES[failure]}")
    return make_conninfo(url, options=f"-c extension_control_path={root}:$system")


def attempts(url: str) -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute(
            f"SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM {ATTEMPTS}"
        ).fetchone()
    assert row is not None
    return int(row[0])


def tables_in(url: str, schema: str) -> set[str]:
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = %s", (schema,)
        ).fetchall()
    return {r[0] for r in rows}


@pytest.fixture
def schema(database_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A schema of this test's own, dropped afterwards; the counting sequence reset."""
    monkeypatch.delenv("TRADING_DATA_STORAGE_MODE", raising=False)
    name = "storage_mode_test"
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA IF EXISTS {name} CASCADE")
        conn.execute(f"DROP SEQUENCE IF EXISTS {ATTEMPTS}")
        conn.execute(f"CREATE SEQUENCE {ATTEMPTS}")
    yield name
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA IF EXISTS {name} CASCADE")
        conn.execute(f"DROP SEQUENCE IF EXISTS {ATTEMPTS}")


@pytest.fixture
def plain_server(database_url: str) -> str:
    with psycopg.connect(database_url) as conn:
        if timescale_available(conn):
            pytest.skip("this server has TimescaleDB installed")
    return database_url


@pytest.mark.parametrize("failure", sorted(FAILURES))
def test_auto_mode_migrates_plain_and_says_what_to_do(
    plain_server: str, schema: str, extension_root: Path, failure: str, caplog: pytest.LogCaptureFixture
) -> None:
    url = stand_in_url(plain_server, extension_root, failure)
    with psycopg.connect(url) as conn:
        assert timescale_available(conn)  # the stand-in is "installed" for these sessions
    with caplog.at_level(logging.WARNING, logger="trading_data.db.migrate"):
        result = migrate(url, schema)
    assert result.timescale is False and attempts(plain_server) == 1
    assert result.applied == [
        "0001_market_tables",
        "0002_operations",
        "0003_daily_report_reconciliation",
        "0004_views",
        "0005_bar_aggregates",
    ]
    assert tables_in(plain_server, schema) >= set(TABLES) | {"schema_migrations"}
    (warning,) = result.warnings
    assert "shared_preload_libraries" in warning and "TRADING_DATA_STORAGE_MODE=postgres" in warning
    if failure == "preload":
        assert warning.startswith("TimescaleDB is installed on this server but not preloaded")
        assert 'pg_stat_statements must be loaded via "shared_preload_libraries"' in warning
    else:
        assert "CREATE EXTENSION timescaledb ended the session (terminating connection" in warning
    assert "\n" not in warning
    assert [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING] == [warning]
    # Idempotent: a second run changes nothing and warns again.
    again = migrate(url, schema)
    assert again.applied == [] and again.warnings == [warning]


def test_postgres_mode_never_creates_the_extension(
    plain_server: str, schema: str, extension_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = stand_in_url(plain_server, extension_root, "preload")
    monkeypatch.setenv("TRADING_DATA_STORAGE_MODE", "postgres")
    result = migrate(url, schema)
    assert result.timescale is False and result.warnings == []
    assert tables_in(plain_server, schema) >= set(TABLES)
    assert attempts(plain_server) == 0
    monkeypatch.setenv("TRADING_DATA_STORAGE_MODE", "auto")
    migrate(url, schema)
    assert attempts(plain_server) == 1  # the counter does count


@pytest.mark.parametrize("failure", sorted(FAILURES))
def test_timescaledb_mode_fails_with_the_sentence_and_changes_nothing(
    plain_server: str, schema: str, extension_root: Path, failure: str
) -> None:
    url = stand_in_url(plain_server, extension_root, failure)
    with pytest.raises(TimescaleUnavailableError) as error:
        migrate(url, schema, mode="timescaledb")
    message = str(error.value)
    assert isinstance(error.value, ConfigurationError)  # printed alone by the CLI, never retried
    assert message.startswith(
        "TRADING_DATA_STORAGE_MODE=timescaledb cannot be honoured: TimescaleDB is installed on this server"
    )
    assert "shared_preload_libraries" in message and "\n" not in message
    assert tables_in(plain_server, schema) == set()


def test_timescaledb_mode_fails_when_the_extension_is_missing(plain_server: str, schema: str) -> None:
    with pytest.raises(TimescaleUnavailableError) as error:
        migrate(plain_server, schema, mode="timescaledb")
    assert str(error.value) == (
        "TRADING_DATA_STORAGE_MODE=timescaledb but the timescaledb extension is not installed on this server: "
        "install TimescaleDB, or set TRADING_DATA_STORAGE_MODE=auto or postgres to use plain PostgreSQL"
    )
    assert tables_in(plain_server, schema) == set()


@pytest.mark.parametrize("value", ["", "auto", "postgres", "timescaledb", " Postgres "])
def test_storage_mode_values(value: str) -> None:
    assert storage_mode_setting({"TRADING_DATA_STORAGE_MODE": value}) == (value.strip().lower() or "auto")
    assert storage_mode_setting({}) == "auto"


def test_a_bad_storage_mode_names_the_variable(monkeypatch: pytest.MonkeyPatch, database_url: str) -> None:
    monkeypatch.setenv("TRADING_DATA_STORAGE_MODE", "fast")
    with pytest.raises(DatabaseSettingError) as error:
        migrate(database_url)
    assert isinstance(error.value, SettingsError)
    assert str(error.value) == (
        "invalid setting storage_mode (from TRADING_DATA_STORAGE_MODE='fast'): "
        "must be one of auto, postgres, timescaledb"
    )
