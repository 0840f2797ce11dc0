"""Resources shared by every domain, configured from the environment (secrets through dg.EnvVar)."""

from typing import Any

import dagster as dg

from trading_data.db.io_manager import PostgresPandasIOManager
from trading_data.db.resources import MarketDatabase
from trading_data.settings import PipelineSettingsResource
from trading_data.settings.platform import DATABASE_URL, SCHEMA
from trading_data.sources.resources import polygon_resource, unusual_whales_resource


def build_resources() -> dict[str, object]:
    """The resource set: without TRADING_DATA_DATABASE_URL the embedded server's URL is used."""
    # EnvVar keeps the URL (it may hold a password) out of the UI's config view.
    url: Any = dg.EnvVar(DATABASE_URL.env_var) if DATABASE_URL.is_set() else None
    schema = SCHEMA.get()
    return {
        "io_manager": PostgresPandasIOManager(database_url=url, schema=schema),
        "database": MarketDatabase(database_url=url, schema=schema),
        "settings": PipelineSettingsResource(),
        "polygon": polygon_resource(),
        "unusual_whales": unusual_whales_resource(),
    }
