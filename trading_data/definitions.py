"""The code location: every definition of ``trading_data/defs`` (one folder per domain), found by Dagster's
package loader, with the shared resources and the platform's executor (``dg list defs`` shows them)."""

import gc
import warnings

# A definitions load creates some hundred thousand objects that live as long as the process (modules,
# classes, Dagster's definitions); the collector's full passes over that growing heap free next to nothing
# and cost ~0.3 s of CPU in every process that loads the code location: the CLI, the code server, a run's
# forkserver (measured for issue 11). The collector is paused for the load and resumed after it.
_collecting = gc.isenabled()
gc.disable()
try:
    import dagster as dg

    # full_pipeline_job and prices_job hold bar_aggregates (BackfillPolicy.single_run: a backfill refreshes
    # a range in one step) beside assets that take up to 20 sessions a run (multi_run); Dagster then gives
    # the job itself the smaller limit, which their ticks (one session) never reach, and says so in a
    # warning at every load. Asset backfills keep each asset's own policy.
    warnings.filterwarnings(
        "ignore",
        message=r"Asset job (full_pipeline_job|prices_job) materializes assets with varying BackfillPolicies",
    )
    with warnings.catch_warnings():
        # Two notices that would print at every load of the code location, naming nothing to act on:
        # `backfill_policy` (orchestration/sessions.py) is a beta parameter, the package loader a preview.
        warnings.filterwarnings("ignore", message=r"Parameter `backfill_policy`", category=dg.BetaWarning)
        warnings.simplefilter("ignore", dg.PreviewWarning)

        import trading_data.defs
        from trading_data.defs.analytics.checks import ANALYTICS_CHECKS
        from trading_data.defs.market_data.checks import MARKET_DATA_CHECKS
        from trading_data.defs.resources import build_resources
        from trading_data.defs.selection.checks import SELECTION_CHECKS
        from trading_data.orchestration.platform_executor import platform_executor

        # The package loader rather than dg.load_from_defs_folder: both collect every module-level
        # definition of defs/ (the same keys, checks, jobs, crons and resources: test_definitions), but the
        # defs-folder loader also builds the component tree and the JSON schemas of every installed
        # component type for the UI's component catalogue (we define no components): ~0.28 s of CPU in
        # every process that loads the code location, a fifth of `import dagster, pandas`
        # (bench/bench_startup.py, issue 11).
        # The executor: Dagster's default behind a configuration check (a bad setting fails the run before
        # any step, once), its step processes forked from a forkserver that has the definitions imported
        # (orchestration/executor.py); TRADING_DATA_EXECUTOR=celery: the same check, then the steps on
        # Celery workers per queue (orchestration/celery_executor.py).
        defs = dg.load_definitions_from_package_module(
            trading_data.defs, resources=build_resources(), executor=platform_executor()
        )
finally:
    if _collecting:
        gc.enable()

# For tests and scripts that materialize the assets outside the code location.
ASSETS = list(defs.assets or ())
# The SQL checks of the data (not the freshness checks, which read the instance).
ASSET_CHECKS = [*SELECTION_CHECKS, *MARKET_DATA_CHECKS, *ANALYTICS_CHECKS]
SENSORS = list(defs.sensors or ())
