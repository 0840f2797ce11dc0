from __future__ import annotations

import datetime as dt

import pytest

from trading_data.calendar import NEW_YORK
from trading_data.sources.simulator.market import SimulatedMarket

# A Saturday: every session up to Friday 2026-11-27 (early close) is complete.
AFTER_THANKSGIVING = dt.datetime(2026, 11, 28, 12, 0, tzinfo=NEW_YORK)


def fixed_clock(moment: dt.datetime):
    return lambda: moment


@pytest.fixture(scope="session")
def market() -> SimulatedMarket:
    return SimulatedMarket(7, now=fixed_clock(AFTER_THANKSGIVING))
