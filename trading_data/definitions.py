"""The code location: every definition of ``trading_data/defs``, loaded by domain with Dagster's own loader
(``[tool.dg.project]`` in pyproject.toml names the package; ``dg list defs`` shows what it finds)."""

import gc
import warnings
from pathlib import Path

# A definitions load creates some hundred thousand objects that live as long as the process (modules,
# classes, Dagster's definitions); the collector's full passes over that growing heap free next to nothing
# and cost ~0.3 s of CPU in every process that loads the code location: the CLI, the code server, a run's
# forkserver (measured for issue 11). The collector is paused for the load and resumed after it.
_collecting = gc.isenabled()
gc.disable()
try:
    import dagster as dg

    from trading_data.defs.analytics.checks import ANALYTICS_CHECKS
    from trading_data.defs.market_data.checks import MARKET_DATA_CHECKS
    from trading_data.defs.selection.checks import SELECTION_CHECKS

    # full_pipeline_job and prices_job hold bar_aggregates (BackfillPolicy.single_run: a backfill refreshes
    # a range in one step) beside assets that take up to 20 sessions a run (multi_run); Dagster then gives
    # the job itself the smaller limit, which their ticks (one session) never reach, and says so in a
    # warning at every load. Asset backfills keep each asset's own policy.
    warnings.filterwarnings(
        "ignore",
        message=r"Asset job (full_pipeline_job|prices_job) materializes assets with varying BackfillPolicies",
    )

    defs = dg.load_from_defs_folder(path_within_project=Path(__file__).parent)
finally:
    if _collecting:
        gc.enable()

# For tests and scripts that materialize the assets outside the code location.
ASSETS = list(defs.assets or ())
# The SQL checks of the data (not the freshness checks, which read the instance).
ASSET_CHECKS = [*SELECTION_CHECKS, *MARKET_DATA_CHECKS, *ANALYTICS_CHECKS]
SENSORS = list(defs.sensors or ())
