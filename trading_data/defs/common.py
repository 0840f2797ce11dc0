"""What every asset module shares: metadata, retry policy, partition helpers, validation modes."""

from __future__ import annotations

import datetime as dt
import os
from typing import Any

import dagster as dg
import pandas as pd

from trading_data.io.postgres import column_schema
from trading_data.schemas import TABLES
from trading_data.validation import split_valid, validate

KINDS = {"python", "pandas", "postgres"}


def asset_metadata(table: str, **extra: Any) -> dict[str, Any]:
    """Definition metadata the IO manager and the UI read: time column, write mode, columns."""
    spec = TABLES[table]
    return {
        "partition_expr": spec.time_column,
        "write_mode": spec.write_mode,
        "primary_key": ", ".join(spec.primary_key),
        "dagster/column_schema": column_schema(spec),
        "dagster/table_name": f"{os.environ.get('TRADING_DATA_SCHEMA', 'market')}.{spec.name}",
        **extra,
    }


STEP_RETRY_DELAY_ENV = "TRADING_DATA_STEP_RETRY_DELAY_SECONDS"


def vendor_retry_policy() -> dg.RetryPolicy:
    """Retries for steps that call a vendor: exponential backoff with jitter, on top of the client's
    own per-request retries (which handle short blips); this one rides out longer outages.

    The first delay (default 20 s, then 40 s, 80 s) comes from TRADING_DATA_STEP_RETRY_DELAY_SECONDS,
    read when the definitions load; the test suite sets it to 0.
    """
    delay = float(os.environ.get(STEP_RETRY_DELAY_ENV, "20"))
    return dg.RetryPolicy(
        max_retries=3, delay=delay, backoff=dg.Backoff.EXPONENTIAL, jitter=dg.Jitter.PLUS_MINUS
    )


def partition_day(context: dg.AssetExecutionContext) -> dt.date:
    return dt.date.fromisoformat(context.partition_key)


def active_tickers(selected: pd.DataFrame) -> list[str]:
    """The tickers the feeds collect for a session, in selection order."""
    if selected.empty:
        return []
    return [str(t) for t in selected.loc[selected["is_active"].astype(bool), "ticker"]]


class ChunkValidator:
    """Per chunk: strict mode raises on any failing row; otherwise failing rows are set aside.

    Rejected rows are written to ``market.rejects`` with the reason, and counted in metadata.
    """

    def __init__(self, table: str, strict: bool, on_rejects: Any = None):
        self.spec = TABLES[table]
        self.strict = strict
        self.failures = 0
        self._on_rejects = on_rejects

    def __call__(self, chunk: pd.DataFrame) -> pd.DataFrame:
        if self.strict:
            return validate(self.spec.model, chunk, self.spec.name)
        result = split_valid(self.spec.model, chunk, self.spec.name)
        if len(result.rejects):
            self.failures += result.failure_count
            if self._on_rejects is not None:
                self._on_rejects(result.rejects)
        return result.valid
