"""The market-data database as a Dagster resource: watermarks, rejects and SQL checks beside the IO manager.

Each method opens a connection, runs one statement of :mod:`trading_data.db.queries` in its own
transaction and closes it; ``database.run(queries.<statement>, ...)`` runs any other. The IO manager
does the bulk writes.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Concatenate, ParamSpec, TypeVar

import dagster as dg
import pandas as pd
from pydantic import Field

from trading_data.db import queries
from trading_data.db.migrate import DEFAULT_SCHEMA, validate_schema_name
from trading_data.db.url import market_database_url, mask_password

if TYPE_CHECKING:
    import psycopg


P = ParamSpec("P")
R = TypeVar("R")


def _json_record(row: dict[str, Any]) -> str:
    """A rejected row as JSON: missing values (NaN, NA, NaT) become null, which JSON can hold."""
    return json.dumps({k: None if _missing(v) else v for k, v in row.items()}, default=str)


def _missing(value: Any) -> bool:
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):  # a list or array is a value, not a missing one
        return False


class MarketDatabase(dg.ConfigurableResource):
    """The market-data database for watermarks, rejects and checks (the IO manager does the writes)."""

    database_url: str | None = None
    schema_: str = Field(default=DEFAULT_SCHEMA, alias="schema")

    @classmethod
    def check_configuration(cls, config: Mapping[str, Any]) -> None:
        """A bad schema name fails the run before any step (see trading_data.orchestration.executor)."""
        validate_schema_name(config.get("schema") or DEFAULT_SCHEMA)

    @property
    def url(self) -> str:
        return self.database_url or market_database_url()

    @property
    def schema_name(self) -> str:
        return validate_schema_name(self.schema_)

    @contextmanager
    def connect(self) -> Iterator[psycopg.Connection]:
        import psycopg

        try:
            conn = psycopg.connect(self.url, connect_timeout=10)
        except psycopg.OperationalError as exc:
            raise RuntimeError(
                f"cannot reach PostgreSQL at {mask_password(self.url)}: {exc}. Start it with "
                "`trading-data db start` or set TRADING_DATA_DATABASE_URL."
            ) from exc
        with conn:
            yield conn

    def run(
        self, query: Callable[Concatenate[queries.Connection, str, P], R], *args: P.args, **kwargs: P.kwargs
    ) -> R:
        """``query(connection, schema, *args, **kwargs)`` in one transaction of its own."""
        with self.connect() as conn:
            return query(conn, self.schema_name, *args, **kwargs)

    def read_sql(self, query: queries.Query, params: Sequence[Any] = ()) -> pd.DataFrame:
        with self.connect() as conn:
            return queries.read_frame(conn, query, params)

    def watermarks(
        self, table: str, session_key: str, tickers: Sequence[str], where: str = ""
    ) -> dict[str, pd.Timestamp]:
        """Latest stored ``ts`` per ticker inside the session's window (incremental ticks start there)."""
        return self.run(queries.watermarks, table, session_key, tickers, where)

    def session_rows(self, table: str, session_key: str) -> dict[str, int]:
        """Row count per ticker in one session's window."""
        return self.run(queries.session_rows, table, session_key)

    def record_rejects(self, table: str, partition_key: str, run_id: str, rejects: pd.DataFrame) -> int:
        """Append rows that failed validation (strict_validation off), with the reason, as JSON.

        Append-only: a step streams many pages and each page's rejects are kept. A step clears its
        own earlier rejects once, when it starts (:meth:`clear_rejects`), so a retry does not double them.
        """
        if rejects.empty:
            return 0
        payload = [
            (table, partition_key, run_id, str(row.pop("reject_reason")), _json_record(row))
            for row in rejects.to_dict("records")
        ]
        self.run(queries.copy_rejects, payload)
        return len(payload)

    def clear_rejects(self, table: str, partition_key: str, run_id: str) -> int:
        """Delete this run's rejects of one table and partition (a step calls it once, as it starts)."""
        return self.run(queries.delete_rejects, table, partition_key, run_id)

    def reject_counts(self, session_key: str) -> dict[tuple[str, str], int]:
        """(table, ticker) -> distinct rows rejected for the session, over every run."""
        return self.run(queries.reject_counts, session_key)

    def minute_activity(self, table: str, session_key: str) -> pd.DataFrame:
        """Per ticker and minute: rows and last ts, aggregated in SQL (feeds have millions of rows)."""
        return self.run(queries.minute_activity, table, session_key)
