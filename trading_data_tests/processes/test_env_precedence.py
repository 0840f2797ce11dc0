"""The user's environment wins over the project's ``.env`` (issue 8, DESIGN.md decision 10).

Dagster's CLI loads ``.env`` from its working directory *over* the process environment. Earlier
versions of ``trading-data db start`` wrote the database URLs into the project's ``.env``, so
``dagster asset materialize`` in the project root wrote to the embedded dev server whatever the user
had exported. Run as a user runs it: ``trading-data db start`` (which meets such a ``.env`` from an
earlier version), then the CLI in the project root with ``TRADING_DATA_DATABASE_URL`` exported.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from trading_data.cli import ENV_FILE_HEADER, retire_env_file
from trading_data.db.url import MARKET_DATABASE, sqlalchemy_psycopg2_url, with_database
from trading_data_tests.processes.helpers import (
    BIN,
    PROJECT_ROOT,
    drop_database,
    fresh_database,
    isolated_environment,
)

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("project_env_file")]

SESSION = "2026-11-25"
ENV_FILE = PROJECT_ROOT / ".env"


@pytest.fixture
def project_env_file() -> Iterator[Path]:
    """The project's real ``.env``, restored byte for byte afterwards."""
    before = ENV_FILE.read_bytes() if ENV_FILE.exists() else None
    try:
        yield ENV_FILE
    finally:
        if before is None:
            ENV_FILE.unlink(missing_ok=True)
        else:
            ENV_FILE.write_bytes(before)


def _rows(url: str, session: str) -> int:
    with psycopg.connect(url) as conn:
        exists = conn.execute("SELECT to_regclass('market.selected_tickers')").fetchone()
        if not exists or exists[0] is None:
            return 0
        row = conn.execute(
            "SELECT count(*) FROM market.selected_tickers WHERE session = %s", (session,)
        ).fetchone()
        return int(row[0]) if row else 0


def _base_env() -> dict[str, str]:
    """The test's environment without the platform's and Dagster's own variables (the embedded
    server's location, TRADING_DATA_PG_PORT / TRADING_DATA_PGDATA, is kept)."""
    keep = {"TRADING_DATA_PG_PORT", "TRADING_DATA_PGDATA"}
    return {
        k: v
        for k, v in os.environ.items()
        if k in keep
        or not k.startswith(("TRADING_DATA_", "DAGSTER_", "POLYGON", "UNUSUAL_WHALES", "PYTEST_"))
    }


def test_exported_database_url_wins_over_the_project_env_file(
    project_env_file: Path, server_url: str, clean_market: str, worker_id: str, tmp_path: Path
) -> None:
    if os.environ.get("TRADING_DATA_DATABASE_URL"):
        pytest.skip("the project's .env names the embedded dev server; this session uses another server")
    embedded_default = with_database(server_url, MARKET_DATABASE)
    # A .env as `trading-data db start` wrote it before this fix.
    project_env_file.write_text(
        f"{ENV_FILE_HEADER}\n"
        f"TRADING_DATA_DAGSTER_PG_URL={sqlalchemy_psycopg2_url(with_database(server_url, 'dagster'))}\n"
        f"TRADING_DATA_DATABASE_URL={embedded_default}\n"
    )
    started = subprocess.run(
        [str(BIN / "trading-data"), "db", "start"],
        cwd=PROJECT_ROOT,
        env=_base_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert started.returncode == 0, started.stderr
    left = project_env_file.read_text() if project_env_file.exists() else ""
    assert "TRADING_DATA_DATABASE_URL" not in left and "TRADING_DATA_DAGSTER_PG_URL" not in left

    dagster_name = f"dagster_test_env_precedence_{os.environ.get('TRADING_DATA_TEST_RUN', '')}{worker_id}"
    dagster_url = fresh_database(server_url, dagster_name)
    try:
        env = isolated_environment(tmp_path / "dagster_home", clean_market, dagster_url)
        env = {**_base_env(), **{k: v for k, v in env.items() if k.startswith(("TRADING_DATA_", "DAGSTER_"))}}
        env.update(
            {
                "TRADING_DATA_NOW": "2026-11-27T12:00:00-05:00",
                "TRADING_DATA_STEP_RETRY_DELAY_SECONDS": "0",
                "TRADING_DATA_SYMBOLS": "AAPL,MSFT,KO",
            }
        )
        before = _rows(embedded_default, SESSION)
        command = [
            str(BIN / "dagster"),
            "asset",
            "materialize",
            "--select",
            "selected_tickers",
            "--partition",
            SESSION,
            "-m",
            "trading_data.definitions",
        ]
        done = subprocess.run(command, cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=600)
        output = done.stdout + done.stderr
        assert done.returncode == 0, output[-4000:]
        assert "TRADING_DATA_DATABASE_URL" not in "".join(
            line for line in output.splitlines() if "Loaded environment variables from .env" in line
        )
        assert _rows(clean_market, SESSION) == 3  # where the export says: the three symbols
        assert _rows(embedded_default, SESSION) == before  # nothing into the embedded default database
    finally:
        drop_database(server_url, dagster_name)


def test_retire_env_file_keeps_what_the_user_wrote(tmp_path: Path) -> None:
    ours = tmp_path / "ours.env"
    ours.write_text(f"{ENV_FILE_HEADER}\nTRADING_DATA_DAGSTER_PG_URL=x\nTRADING_DATA_DATABASE_URL=y\n")
    assert retire_env_file(ours) == ours and not ours.exists()
    mixed = tmp_path / "mixed.env"
    mixed.write_text(f"{ENV_FILE_HEADER}\nTRADING_DATA_DATABASE_URL=y\nPOLYGON_API_KEY=pk\n")
    assert retire_env_file(mixed) == mixed
    assert mixed.read_text() == "POLYGON_API_KEY=pk\n"
    theirs = tmp_path / "theirs.env"
    theirs.write_text("TRADING_DATA_DATABASE_URL=postgresql://me@db/x\n")
    assert retire_env_file(theirs) is None
    assert theirs.read_text() == "TRADING_DATA_DATABASE_URL=postgresql://me@db/x\n"
