"""The code location: assets by domain, their checks, schedules, sensors and resources."""

import dagster as dg

from trading_data.defs.analytics import assets as analytics
from trading_data.defs.checks import ASSET_CHECKS
from trading_data.defs.market_data import assets as market_data
from trading_data.defs.resources import build_resources
from trading_data.defs.schedules import JOBS, SCHEDULES
from trading_data.defs.selection import assets as selection

ASSETS = dg.load_assets_from_modules([selection, market_data, analytics])

defs = dg.Definitions(
    assets=ASSETS,
    asset_checks=ASSET_CHECKS,
    jobs=JOBS,
    schedules=SCHEDULES,
    resources=build_resources(),
)
