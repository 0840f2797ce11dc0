"""Helpers shared by the fault tests and by the run worker they start (and SIGKILL) in a subprocess.

``python -m trading_data_tests.faults.support '<json>'`` materializes the tick feeds for one session
against a simulator URL and a database URL, printing ``started`` first; the fault tests kill it mid-write.
"""

import copy
import json
import sys
import warnings
from collections.abc import Sequence
from typing import Any

import dagster as dg
import psycopg

from trading_data.db.io_manager import PostgresPandasIOManager
from trading_data.db.resources import MarketDatabase
from trading_data.definitions import ASSETS
from trading_data.schemas import TABLES
from trading_data.settings import PipelineSettingsResource
from trading_data.sources.resources import PolygonResource, UnusualWhalesResource

SESSION = "2026-11-25"
FEEDS = ("quotes", "trades")
VOLATILE = {"selected_at", "computed_at", "freshness_minutes"}


def without_step_retries(asset: object) -> object:
    """``asset`` without its Dagster RetryPolicy (vendor_retry_policy: 20 s, 40 s, 80 s between attempts).

    Those step retries would only replay a fault that is still injected, for minutes; the tests exercise the
    client's per-request retries. ``execute_in_process`` ignores executor config (``retries: disabled``),
    so the op is copied without its policy instead.
    """
    if not isinstance(asset, dg.AssetsDefinition) or not asset.is_executable or asset.op.retry_policy is None:
        return asset
    op = copy.copy(asset.op)
    op._retry_policy = None
    attributes = asset.get_attributes_dict()
    attributes["node_def"] = op
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # BetaWarning on execution_type, passed through unchanged
        return dg.AssetsDefinition(**attributes)


TEST_ASSETS = [without_step_retries(a) for a in ASSETS]


def resources(url: str, simulator_url: str, symbols: Sequence[str], *, retry_attempts: int = 3) -> dict:
    vendor: dict[str, Any] = {
        "source": "simulated",
        "simulator_url": simulator_url,
        "retry_attempts": retry_attempts,
        "retry_initial_wait_seconds": 0.01,
        "retry_max_wait_seconds": 0.2,
        "retry_min_wait_after_429_seconds": 0.05,
        "timeout_seconds": 30.0,
    }
    return {
        "io_manager": PostgresPandasIOManager(database_url=url),
        "database": MarketDatabase(database_url=url),
        "settings": PipelineSettingsResource(symbols=list(symbols), lookback_days=2),
        "polygon": PolygonResource(**vendor),
        "unusual_whales": UnusualWhalesResource(**vendor),
    }


def materialize(
    url: str,
    simulator_url: str,
    symbols: Sequence[str],
    selection: Sequence[str] = FEEDS,
    *,
    retry_attempts: int = 3,
    partition: str = SESSION,
) -> dg.ExecuteInProcessResult:
    """The real assets of ``selection`` for one session; never raises on a step failure."""
    return dg.materialize(
        TEST_ASSETS,
        partition_key=partition,
        selection=list(selection),
        raise_on_error=False,
        resources=resources(url, simulator_url, symbols, retry_attempts=retry_attempts),
    )


def failure_text(result: dg.ExecuteInProcessResult) -> str:
    """Every step failure's message with its causes, one block per failed step."""
    blocks = []
    for event in result.all_events:
        if not event.is_step_failure or event.step_failure_data is None:
            continue
        lines = [f"[{event.step_key}]"]
        error = event.step_failure_data.error
        while error is not None:
            lines.append(f"{error.cls_name}: {error.message.strip()}")
            error = error.cause or error.context
        blocks.append("\n".join(lines))
    return "\n".join(blocks)


def _columns(table: str) -> str:
    return ", ".join(c for c in TABLES[table].columns if c not in VOLATILE)


def snapshot(url: str) -> dict[str, tuple[int, str]]:
    """Row count and an order-independent checksum of every market table (volatile columns left out)."""
    out = {}
    with psycopg.connect(url) as conn:
        for name in TABLES:
            row = conn.execute(
                f"SELECT count(*), md5(coalesce(string_agg(r::text, '|' ORDER BY r::text), '')) "
                f"FROM (SELECT {_columns(name)} FROM market.{name}) r"
            ).fetchone()
            assert row is not None
            out[name] = (int(row[0]), row[1])
    return out


def duplicate_keys(url: str) -> int:
    """Rows beyond the first per primary key, over every market table (0 unless a key is broken)."""
    total = 0
    with psycopg.connect(url) as conn:
        for name, spec in TABLES.items():
            key = ", ".join(spec.primary_key)
            row = conn.execute(f"SELECT count(*) - count(DISTINCT ({key})) FROM market.{name}").fetchone()
            total += int(row[0]) if row else 0
    return total


def save_reference(url: str, schema: str) -> None:
    """Copy every market table (without volatile columns) into ``schema`` for row-level comparisons."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        conn.execute(f"CREATE SCHEMA {schema}")
        for name in TABLES:
            conn.execute(f"CREATE TABLE {schema}.{name} AS SELECT {_columns(name)} FROM market.{name}")


def drop_reference(url: str, schema: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")


def row_diff(url: str, schema: str) -> tuple[int, int]:
    """(rows of the reference missing now, rows now that the reference lacks), as multisets."""
    lost = extra = 0
    with psycopg.connect(url) as conn:
        for name in TABLES:
            cols = _columns(name)
            cur = f"SELECT {cols} FROM market.{name}"
            ref = f"SELECT {cols} FROM {schema}.{name}"
            lost += conn.execute(f"SELECT count(*) FROM ({ref} EXCEPT ALL {cur}) d").fetchone()[0]
            extra += conn.execute(f"SELECT count(*) FROM ({cur} EXCEPT ALL {ref}) d").fetchone()[0]
    return lost, extra


def main(argv: Sequence[str]) -> int:
    """Run worker: ``{"url", "simulator_url", "symbols"}``; prints ``started`` then materializes the feeds."""
    config = json.loads(argv[0])
    print("started", flush=True)
    result = materialize(
        config["url"], config["simulator_url"], config["symbols"], selection=config.get("selection", FEEDS)
    )
    print("success" if result.success else "failed", flush=True)
    return 0 if result.success else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
