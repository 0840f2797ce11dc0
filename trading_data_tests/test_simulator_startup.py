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
