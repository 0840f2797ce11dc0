"""``trading-data`` prints one line, no traceback, for a configuration error (exit status 2)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from trading_data.db.url import with_database

BIN = Path(sys.executable).parent


def test_conflicting_dagster_storage_urls_print_one_sentence(database_url: str, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TRADING_DATA_DAGSTER", "DAGSTER_"))}
    env.update(
        {
            "TRADING_DATA_DATABASE_URL": database_url,
            "TRADING_DATA_DAGSTER_DATABASE_URL": with_database(database_url, "dagster_a"),
            "TRADING_DATA_DAGSTER_PG_URL": with_database(database_url, "dagster_b"),
        }
    )
    done = subprocess.run(
        [str(BIN / "trading-data"), "db", "start"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 2
    errors = [line for line in done.stderr.splitlines() if line.startswith("trading-data:")]
    assert errors == [
        "trading-data: TRADING_DATA_DAGSTER_DATABASE_URL="
        f"{with_database(database_url, 'dagster_a')!r} and TRADING_DATA_DAGSTER_PG_URL="
        f"{with_database(database_url, 'dagster_b')!r} name different Dagster storage databases; set only "
        "TRADING_DATA_DAGSTER_DATABASE_URL"
    ]
    assert "Traceback" not in done.stderr
