"""Resources shared by every asset, configured from the environment (secrets through dg.EnvVar)."""

import os
from typing import Any

import dagster as dg

from trading_data.db.url import DATABASE_URL_ENV
from trading_data.io.postgres import PostgresPandasIOManager
from trading_data.market_db import MarketDatabase
from trading_data.settings import PipelineSettingsResource
from trading_data.sources.resources import polygon_resource, unusual_whales_resource

SCHEMA_ENV = "TRADING_DATA_SCHEMA"


def build_resources() -> dict[str, object]:
    """The resource set: without TRADING_DATA_DATABASE_URL the embedded server's URL is used."""
    # EnvVar keeps the URL (it may hold a password) out of the UI's config view.
    url: Any = dg.EnvVar(DATABASE_URL_ENV) if os.environ.get(DATABASE_URL_ENV) else None
    schema = os.environ.get(SCHEMA_ENV, "market")
    return {
        "io_manager": PostgresPandasIOManager(database_url=url, schema=schema),
        "database": MarketDatabase(database_url=url, schema=schema),
        "settings": PipelineSettingsResource(),
        "polygon": polygon_resource(),
        "unusual_whales": unusual_whales_resource(),
    }
