"""Fixtures for tests that run the platform as separate processes (see helpers.py)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from trading_data_tests.processes.helpers import drop_database, fresh_database, isolated_environment


@dataclass(frozen=True)
class IsolatedInstance:
    home: Path
    env: dict[str, str]
    market_url: str
    dagster_url: str
    logs: Path


@pytest.fixture(scope="module")
def isolated_instance(
    request: pytest.FixtureRequest,
    server_url: str,
    database_url: str,
    worker_id: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[IsolatedInstance]:
    """A DAGSTER_HOME of its own with a fresh Dagster storage database, and the worker's market database.

    Extra environment for the processes comes from a module-level ``PROCESS_ENV`` dict.
    """
    # TRADING_DATA_TEST_RUN keeps concurrent pytest sessions on one server apart (as for the market database).
    name = f"dagster_test_processes_{os.environ.get('TRADING_DATA_TEST_RUN', '')}{worker_id}"
    dagster_url = fresh_database(server_url, name)
    root = tmp_path_factory.mktemp(request.module.__name__.rsplit(".", 1)[-1])
    env = isolated_environment(
        root / "dagster_home", database_url, dagster_url, getattr(request.module, "PROCESS_ENV", None)
    )
    yield IsolatedInstance(root / "dagster_home", env, database_url, dagster_url, root / "logs")
    drop_database(server_url, name)
