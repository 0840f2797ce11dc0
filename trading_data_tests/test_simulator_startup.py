"""What a process that loads the code location or builds the simulator imports and builds (issue 11)."""

import subprocess
import sys

SIMULATOR = """
import sys
from trading_data.sources.simulator.market import SimulatedMarket
SimulatedMarket(7, n_tickers=20)
print("exchange_calendars" in sys.modules)
"""


def test_building_the_simulator_does_not_build_the_exchange_calendar() -> None:
    # The session table of trading_data.calendar answers for the simulator's whole range.
    out = subprocess.run([sys.executable, "-c", SIMULATOR], check=True, capture_output=True, text=True)
    assert out.stdout.strip() == "False"


def _shape(defs: dg.Definitions) -> dict[str, object]:
    repo = defs.get_repository_def()
    graph = defs.resolve_asset_graph()
    return {
        "assets": sorted(k.to_user_string() for k in graph.get_all_asset_keys()),
        "checks": sorted(k.to_user_string() for k in graph.asset_check_keys),
        "jobs": sorted(repo.job_names),
        "schedules": sorted(s.name for s in repo.schedule_defs),
        "sensors": sorted(s.name for s in repo.sensor_defs),
        "resources": sorted(repo.get_top_level_resources()),
        "executor": repo.get_job(repo.job_names[0]).executor_def.name,
    }
