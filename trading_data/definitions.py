"""The code location: every definition of ``trading_data/defs``, loaded by domain with Dagster's own loader
(``[tool.dg.project]`` in pyproject.toml names the package; ``dg list defs`` shows what it finds)."""

from pathlib import Path

import dagster as dg

from trading_data.defs.analytics.checks import ANALYTICS_CHECKS
from trading_data.defs.market_data.checks import MARKET_DATA_CHECKS
from trading_data.defs.selection.checks import SELECTION_CHECKS

defs = dg.load_from_defs_folder(path_within_project=Path(__file__).parent)

# For tests and scripts that materialize the assets outside the code location.
ASSETS = list(defs.assets or ())
# The SQL checks of the data (not the freshness checks, which read the instance).
ASSET_CHECKS = [*SELECTION_CHECKS, *MARKET_DATA_CHECKS, *ANALYTICS_CHECKS]
SENSORS = list(defs.sensors or ())
