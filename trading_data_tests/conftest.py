"""Shared fixtures: every test that stores data talks to a real PostgreSQL server.

The server is ``TRADING_DATA_DATABASE_URL``'s when set, else the project's embedded server
(``trading-data db start``, which ``make test`` runs first). Each pytest worker gets a fresh database
of its own, migrated once.

``--now=<ISO instant with offset>`` pins the platform's clock (``trading_data.clock.utc_now``) for the
session: it sets ``TRADING_DATA_NOW`` here and for every process the tests start. Tests whose outcome
could depend on the time of day carry the ``clock`` marker; ``make test-times`` runs them at five pinned
times (a session morning, mid-session, after the close, a weekend, a holiday).
"""

from __future__ import annotations

import os
from collections.abc import Iterator

# Step retries keep their count but not their 20/40/80 s waits (read when definitions load).
os.environ.setdefault("TRADING_DATA_STEP_RETRY_DELAY_SECONDS", "0")

import psycopg
import pytest

from trading_data.clock import NOW_ENV, ClockError, pinned_now
from trading_data.db.migrate import migrate
from trading_data.db.url import market_database_url, with_database

# Modules whose outcome could depend on the time of day (schedules, sensors, freshness, health, the
# daemon): they get the ``clock`` marker here, so the list lives in one place. A new module can also mark
# itself with ``pytestmark = pytest.mark.clock``.
CLOCK_SENSITIVE = (
    "scheduling/test_schedules.py",
    "scheduling/test_decide_tick.py",
    "monitoring/test_sensors.py",
    "monitoring/test_freshness.py",
    "monitoring/test_health.py",
    "simulator/test_market_status.py",
    "processes/test_topology.py",
    "test_incremental.py",
    "test_catch_up.py",
    "test_recompute.py",
    "sources/test_http.py::test_429_retry_after_http_date_honoured",
)
TESTS_ROOT = os.path.dirname(os.path.abspath(__file__))


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--now",
        metavar="ISO",
        default=None,
        help=f"pin trading_data.clock.utc_now() for the session and the processes it starts (sets {NOW_ENV}), "
        "e.g. --now=2026-12-01T14:09-05:00",
    )


def pytest_configure(config: pytest.Config) -> None:
    raw = config.getoption("--now")
    if raw is None:
        return
    if not raw.strip():
        raise pytest.UsageError(
            "--now is empty: give an ISO 8601 instant with an offset, e.g. 2026-12-01T14:09-05:00"
        )
    try:
        pinned_now({NOW_ENV: raw})
    except ClockError as err:
        raise pytest.UsageError(f"--now={raw!r} (pytest option) cannot pin the clock: {err}") from None
    # Set before any test or xdist worker starts: tests read it, the processes they start inherit it.
    os.environ[NOW_ENV] = raw


def pytest_report_header(config: pytest.Config) -> str:
    pinned = pinned_now()
    return f"{NOW_ENV}={os.environ[NOW_ENV]} (utc_now pinned)" if pinned else f"{NOW_ENV} unset (real clock)"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        path = os.path.relpath(str(item.path), TESTS_ROOT).replace(os.sep, "/")
        node = f"{path}::{item.name.split('[', 1)[0]}"
        if any(node == entry or path == entry for entry in CLOCK_SENSITIVE):
            item.add_marker(pytest.mark.clock)


@pytest.fixture(scope="session")
def server_url() -> str:
    url = market_database_url()
    if not os.environ.get("TRADING_DATA_DATABASE_URL"):
        from trading_data.db import server

        server.start()
    return url


@pytest.fixture(scope="session")
def database_url(server_url: str, worker_id: str) -> Iterator[str]:
    # TRADING_DATA_TEST_RUN keeps concurrent pytest sessions on one server apart.
    name = f"trading_data_test_{os.environ.get('TRADING_DATA_TEST_RUN', '')}{worker_id}"
    admin = with_database(server_url, "postgres")
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    url = with_database(server_url, name)
    migrate(url)
    yield url


@pytest.fixture
def clean_market(database_url: str) -> str:
    """A migrated database whose market tables are empty."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        tables = [
            r[0]
            for r in conn.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = 'market' "
                "AND table_type = 'BASE TABLE' AND table_name <> 'schema_migrations'"
            )
        ]
        conn.execute("TRUNCATE " + ", ".join(f"market.{t}" for t in tables))
    return database_url
