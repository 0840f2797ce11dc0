"""The code location: assets by domain, their checks, schedules, sensors and resources."""

import dagster as dg

from trading_data.defs.analytics import assets as analytics
from trading_data.defs.checks import ASSET_CHECKS
from trading_data.defs.executor import trading_data_executor
from trading_data.defs.market_data import assets as market_data
from trading_data.defs.resources import build_resources
from trading_data.defs.schedules import JOBS, SCHEDULES
from trading_data.defs.selection import assets as selection
from trading_data.ops.freshness import FRESHNESS_CHECKS, FRESHNESS_JOB, FRESHNESS_SCHEDULE
from trading_data.ops.sensors import SENSORS

ASSETS = dg.load_assets_from_modules([selection, market_data, analytics])

defs = dg.Definitions(
    assets=ASSETS,
    asset_checks=[*ASSET_CHECKS, *FRESHNESS_CHECKS],
    jobs=[*JOBS, FRESHNESS_JOB],
    schedules=[*SCHEDULES, FRESHNESS_SCHEDULE],
    sensors=SENSORS,
    resources=build_resources(),
    # Dagster's default executor behind a configuration check: a bad setting fails the run before any
    # step, once (trading_data/defs/executor.py).
    executor=trading_data_executor,
)
