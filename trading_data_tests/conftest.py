"""Shared fixtures: every test that stores data talks to a real PostgreSQL server.

The server is ``TRADING_DATA_DATABASE_URL``'s when set, else the project's embedded server
(``trading-data db start``, which ``make test`` runs first). Each pytest worker gets a fresh database
of its own, migrated once.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

# Step retries keep their count but not their 20/40/80 s waits (read when definitions load).
os.environ.setdefault("TRADING_DATA_STEP_RETRY_DELAY_SECONDS", "0")

import psycopg
import pytest

from trading_data.db.migrate import migrate
from trading_data.db.url import market_database_url, with_database


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
                "AND table_name <> 'schema_migrations'"
            )
        ]
        conn.execute("TRUNCATE " + ", ".join(f"market.{t}" for t in tables))
    return database_url
