"""What every asset module shares: metadata, retry policy and step failures, active tickers,
validation modes."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import dagster as dg
import pandas as pd

from trading_data.db.pandas_type_handler import column_schema
from trading_data.schemas import TABLES
from trading_data.settings import ConfigurationError
from trading_data.settings.platform import SCHEMA, STEP_RETRY_DELAY_SECONDS
from trading_data.sources.errors import VendorAuthError, VendorRequestError
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
        "dagster/table_name": f"{SCHEMA.get()}.{spec.name}",
        **extra,
    }


STEP_MAX_RETRIES = 3


def vendor_retry_policy() -> dg.RetryPolicy:
    """Retries for steps that call a vendor, on top of the client's own per-request retries (which
    handle short blips); this one rides out longer outages. Errors a retry cannot fix (settings, 401,
    403, 404, 422) are not retried: the assets raise them through :func:`step_failure`.

    Dagster's exponential backoff waits ``(2**n - 1) * delay`` before retry ``n``, and PLUS_MINUS
    jitter adds up to ``±delay``: with the default delay of 20 s, about 20 s, 60 s and 140 s
    (0-40 s, 40-80 s, 120-160 s; ``dagster/_core/definitions/policy.py``). The delay comes from
    TRADING_DATA_STEP_RETRY_DELAY_SECONDS, read when the definitions load; the test suite sets 0.
    """
    delay = STEP_RETRY_DELAY_SECONDS.get()
    return dg.RetryPolicy(
        max_retries=STEP_MAX_RETRIES, delay=delay, backoff=dg.Backoff.EXPONENTIAL, jitter=dg.Jitter.PLUS_MINUS
    )


# Errors a retry cannot fix: a setting, or a vendor's 401/403 (key), 404 (path or ticker), 422/400.
NON_RETRYABLE_ERRORS: tuple[type[BaseException], ...] = (
    ConfigurationError,
    VendorAuthError,
    VendorRequestError,
)


def is_retryable(exc: BaseException) -> bool:
    """False for a configuration error or a non-retryable vendor error (or a group of only those)."""
    if isinstance(exc, dg.Failure):
        return exc.allow_retries
    if isinstance(exc, BaseExceptionGroup):
        return any(is_retryable(e) for e in exc.exceptions)
    return not isinstance(exc, NON_RETRYABLE_ERRORS)


def step_failure(exc: BaseException, causes: Iterable[BaseException] = ()) -> BaseException:
    """What a step raises for ``exc``: ``dg.Failure(allow_retries=False)`` with ``exc``'s sentence when
    no retry can help (see :func:`is_retryable`; with ``causes``, e.g. every ticker's error of a feed
    that failed whole, when each of them is non-retryable), else ``exc`` itself.

    Use as ``except Exception as exc: raise step_failure(exc)``: the step's RetryPolicy then skips it,
    the step fails once and (a step failure, with ``retry_on_asset_or_op_failure: false``) the run is
    not retried either. Honoured from an asset body and from an IO manager's ``handle_output``.
    """
    causes = list(causes)
    retryable = any(is_retryable(c) for c in causes) if causes else is_retryable(exc)
    if retryable or (isinstance(exc, dg.Failure) and not exc.allow_retries):
        return exc
    failure = dg.Failure(
        description=str(exc) or type(exc).__name__,
        metadata={"error": dg.MetadataValue.text(type(exc).__name__)},
        allow_retries=False,
    )
    # The sentence says it all: no chained traceback of the original under it.
    failure.__cause__ = None
    failure.__suppress_context__ = True
    return failure


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
