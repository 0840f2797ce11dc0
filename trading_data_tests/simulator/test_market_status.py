"""``/v1/marketstatus/now`` is the NYSE calendar at the simulator's clock (``TRADING_DATA_NOW``), over HTTP."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import httpx
import pytest

from trading_data.calendar import NEW_YORK
from trading_data.sources.simulator.server import SimulatorServer

# (pinned New York time, market, earlyHours, afterHours, fx: Sunday 17:00 to Friday 17:00)
CASES = [
    (dt.datetime(2026, 12, 1, 11, 0), "open", False, False, "open"),  # mid-session
    (dt.datetime(2026, 12, 1, 8, 0), "extended-hours", True, False, "open"),  # pre-market
    (dt.datetime(2026, 12, 1, 21, 0), "closed", False, False, "open"),  # after the post-market
    (dt.datetime(2026, 11, 26, 11, 0), "closed", False, False, "open"),  # Thanksgiving
    (dt.datetime(2026, 11, 27, 14, 0), "extended-hours", False, True, "open"),  # after the 13:00 early close
    (
        dt.datetime(2026, 11, 27, 18, 0),
        "closed",
        False,
        False,
        "closed",
    ),  # early-close post-market ends 17:00
    (dt.datetime(2026, 11, 28, 11, 0), "closed", False, False, "closed"),  # Saturday
]


@pytest.fixture(scope="module")
def sim() -> Iterator[SimulatorServer]:
    # The defaults, as `trading-data simulator serve` and the in-process simulator use them.
    with SimulatorServer() as server:
        yield server


@pytest.mark.parametrize(
    ("moment", "market", "early", "after", "fx"), CASES, ids=[c[0].isoformat() for c in CASES]
)
def test_market_status_now_follows_the_calendar_at_the_pinned_clock(
    sim: SimulatorServer,
    monkeypatch: pytest.MonkeyPatch,
    moment: dt.datetime,
    market: str,
    early: bool,
    after: bool,
    fx: str,
) -> None:
    pinned = moment.replace(tzinfo=NEW_YORK)
    monkeypatch.setenv("TRADING_DATA_NOW", pinned.isoformat())
    body = httpx.get(f"{sim.base_url}/v1/marketstatus/now", params={"apiKey": "k"}).json()
    assert body["market"] == market
    assert (body["earlyHours"], body["afterHours"]) == (early, after)
    assert dt.datetime.fromisoformat(body["serverTime"]) == pinned
    assert body["serverTime"] == pinned.isoformat()  # RFC 3339 with the New York offset, no fraction
    assert body["exchanges"]["nyse"] == body["exchanges"]["nasdaq"] == market
    assert body["exchanges"]["otc"] == ("open" if market == "open" else "closed")
    assert body["currencies"] == {"fx": fx, "crypto": "open"}
    assert set(body["indicesGroups"]) >= {"s_and_p", "nasdaq", "dow_jones"}


def test_market_data_follows_the_pinned_clock(sim: SimulatorServer, monkeypatch: pytest.MonkeyPatch) -> None:
    """The default market asks trading_data.clock too: at 10:00 the session has 30 minute bars."""
    monkeypatch.setenv("TRADING_DATA_NOW", "2026-12-01T10:00:00-05:00")
    body = httpx.get(
        f"{sim.base_url}/v2/aggs/ticker/SPY/range/1/minute/2026-12-01/2026-12-01",
        params={"apiKey": "k", "limit": 50000},
    ).json()
    assert body["resultsCount"] == 30
