"""Dagster's instance storage for this project: dagster-postgres at the URL the platform resolves.

``dagster.yaml`` names this class instead of ``postgres: {postgres_url: {env: ...}}`` so that the URL
comes from :func:`trading_data.db.url.dagster_database_url` (the user's
``TRADING_DATA_DAGSTER_DATABASE_URL``, else a ``dagster`` database beside the market data, which
defaults to the embedded dev server). A fixed variable in ``dagster.yaml`` had to be filled from a
``.env`` file, and Dagster's CLI injects ``.env`` over the process environment, so the project's
file shadowed the user's own setting.

    storage:
      custom:
        module: trading_data.db.dagster_storage
        class: TradingDataPostgresStorage
        config: {}          # or postgres_url: {env: SOME_VARIABLE} to name the URL explicitly
"""

from __future__ import annotations

from typing import Any

from dagster import Field, StringSource

# No public name in Dagster 1.13 (dagster/__init__.py does not export it); dagster-postgres' own
# storages take their inst_data from here too.
from dagster._serdes import ConfigurableClassData
from dagster_postgres import DagsterPostgresStorage
from dagster_postgres.utils import DagsterPostgresException

from trading_data.db.url import dagster_database_url, mask_password, sqlalchemy_psycopg2_url


class DagsterStorageUnreachable(RuntimeError):
    """The Dagster storage database could not be reached; the message says how to start it."""


class TradingDataPostgresStorage(DagsterPostgresStorage):
    """``DagsterPostgresStorage`` whose URL is resolved by the platform when none is configured."""

    @classmethod
    def config_type(cls) -> dict[str, Any]:
        return {
            "postgres_url": Field(StringSource, is_required=False),
            "should_autocreate_tables": Field(bool, is_required=False, default_value=True),
        }

    @classmethod
    def from_config_value(  # type: ignore[override]
        cls, inst_data: ConfigurableClassData | None, config_value: dict[str, Any]
    ) -> TradingDataPostgresStorage:
        url = sqlalchemy_psycopg2_url(config_value.get("postgres_url") or dagster_database_url())
        try:
            return cls(
                postgres_url=url,
                should_autocreate_tables=config_value.get("should_autocreate_tables", True),
                inst_data=inst_data,
            )
        except DagsterPostgresException as exc:  # raised once dagster-postgres' connection retries are spent
            raise DagsterStorageUnreachable(
                f"cannot reach Dagster's storage at {mask_password(url)}: start the embedded server with "
                "`trading-data db start` (or `make dev`), or set TRADING_DATA_DAGSTER_DATABASE_URL"
            ) from exc
