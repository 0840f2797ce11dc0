"""Any valid ticker symbol has a deterministic market of its own (issue 8), over real HTTP."""

from __future__ import annotations

import hashlib
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from trading_data.sources.simulator.market import WELL_KNOWN, SimulatedMarket
from trading_data.sources.simulator.server import SimulatorServer
from trading_data_tests.simulator.conftest import AFTER_THANKSGIVING, fixed_clock

AUTH = {"Authorization": "Bearer k"}
SESSION = "2026-11-20"
WINDOW = {"timestamp.gte": "2026-11-20T15:00:00Z", "timestamp.lt": "2026-11-20T15:05:00Z", "order": "asc"}
PROJECT_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def sim(market: SimulatedMarket) -> Iterator[SimulatorServer]:
    with SimulatorServer(market, recorded_dir=None) as server:
        yield server


@pytest.fixture
def http(sim: SimulatorServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=sim.base_url, headers=AUTH, timeout=30) as client:
        yield client


def per_ticker_answers(http: httpx.Client, ticker: str) -> dict[str, Any]:
    """Every per-ticker endpoint's JSON for ``ticker`` (request ids and next_url hosts dropped)."""
    urls: dict[str, tuple[str, dict[str, Any]]] = {
        "minute": (f"/v2/aggs/ticker/{ticker}/range/1/minute/{SESSION}/{SESSION}", {"limit": 50000}),
        "day": (f"/v2/aggs/ticker/{ticker}/range/1/day/2026-11-02/2026-11-27", {}),
        "quotes": (f"/v3/quotes/{ticker}", {**WINDOW, "limit": 50000}),
        "trades": (f"/v3/trades/{ticker}", {**WINDOW, "limit": 50000}),
        "chain": (f"/v3/snapshot/options/{ticker}", {"limit": 250}),
        "contracts": ("/v3/reference/options/contracts", {"underlying_ticker": ticker, "limit": 1000}),
        "reference": ("/v3/reference/tickers", {"ticker": ticker}),
        "flow": ("/api/option-trades/flow-alerts", {"ticker_symbol": ticker, "limit": 200}),
        "uw_chain": (f"/api/stock/{ticker}/option-contracts", {}),
    }
    out = {}
    for name, (path, params) in urls.items():
        response = http.get(path, params=params)
        assert response.status_code == 200, (name, response.text)
        body = response.json()
        if isinstance(body, dict):
            body.pop("request_id", None)
            body.pop("next_url", None)
        out[name] = body
    return out


def test_ibm_and_ko_have_bars_quotes_trades_options_and_flow(http: httpx.Client) -> None:
    for ticker in ("IBM", "KO"):
        answers = per_ticker_answers(http, ticker)
        minute = answers["minute"]["results"]
        assert len(minute) > 300  # a liquid name trades most minutes of a full session
        assert all(
            bar["l"] <= min(bar["o"], bar["c"]) <= max(bar["o"], bar["c"]) <= bar["h"] for bar in minute
        )
        assert answers["day"]["resultsCount"] == 19  # the sessions of 2026-11-02..27 (Thanksgiving shut)
        quotes, trades = answers["quotes"]["results"], answers["trades"]["results"]
        assert quotes and trades
        assert all(q["bid_price"] < q["ask_price"] for q in quotes)
        assert all(t["size"] > 0 and t["price"] > 0 for t in trades)
        assert answers["chain"]["results"][0]["details"]["ticker"].startswith(f"O:{ticker}")
        assert all(c["underlying_ticker"] == ticker for c in answers["contracts"]["results"])
        assert [r["ticker"] for r in answers["reference"]["results"]] == [ticker]
        assert answers["flow"]["data"] and {a["ticker"] for a in answers["flow"]["data"]} == {ticker}
        assert answers["uw_chain"]["data"][0]["option_symbol"].startswith(ticker)
        price = minute[0]["o"]
        assert 1.0 < price < 2000.0


def test_different_symbols_differ_and_well_known_keep_their_character(
    http: httpx.Client, market: SimulatedMarket
) -> None:
    ibm, ko = (per_ticker_answers(http, t)["minute"]["results"] for t in ("IBM", "KO"))
    assert [b["c"] for b in ibm] != [b["c"] for b in ko]
    for ticker, character in WELL_KNOWN.items():
        profile = market.profile(ticker)
        assert profile is not None and profile.index < len(WELL_KNOWN)
        fields = (profile.name, profile.base_price, profile.avg_volume, profile.volatility)
        assert fields + (profile.primary_exchange, profile.type) == character


def test_invalid_symbols_have_no_market(http: httpx.Client, market: SimulatedMarket) -> None:
    for ticker in ("ibm", "TOOLONGTICKER", "1BM"):
        assert market.profile(ticker) is None
        body = http.get(f"/v2/aggs/ticker/{ticker}/range/1/minute/{SESSION}/{SESSION}").json()
        assert body["resultsCount"] == 0 and "results" not in body


def test_grouped_daily_stays_the_fixed_universe(http: httpx.Client) -> None:
    per_ticker_answers(http, "IBM")  # asking for IBM does not add it to the whole-market answer
    body = http.get(f"/v2/aggs/grouped/locale/us/market/stocks/{SESSION}").json()
    tickers = {row["T"] for row in body["results"]}
    assert body["resultsCount"] == 3000 and "IBM" not in tickers


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _digest(answers: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(answers, sort_keys=True).encode()).hexdigest()


def test_same_symbol_same_market_in_another_process(http: httpx.Client) -> None:
    """A second simulator process (another hash salt, pinned to the same clock) serves the same IBM."""
    port = _free_port()
    env = {
        **os.environ,
        "TRADING_DATA_NOW": AFTER_THANKSGIVING.isoformat(),
        "PYTHONHASHSEED": "12345",  # a salt this process almost surely does not have
    }
    command = [sys.executable, "-m", "trading_data.cli", "simulator", "serve", "--port", str(port)]
    process = subprocess.Popen(
        command, cwd=PROJECT_ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", headers=AUTH, timeout=30) as other:
            deadline = time.monotonic() + 60
            while True:
                try:
                    other.get("/v1/marketstatus/upcoming")
                    break
                except httpx.TransportError:
                    assert process.poll() is None, process.stderr.read() if process.stderr else ""
                    assert time.monotonic() < deadline, "the simulator subprocess did not start"
                    time.sleep(0.2)
            theirs, ours = per_ticker_answers(other, "IBM"), per_ticker_answers(http, "IBM")
            assert all(ours[name].get("results") for name in ("minute", "quotes", "trades", "chain"))
            assert _digest(theirs) == _digest(ours)
            assert _digest(per_ticker_answers(other, "KO")) != _digest(theirs)
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_a_fresh_market_reproduces_an_arbitrary_symbol(market: SimulatedMarket) -> None:
    twin = SimulatedMarket(7, now=fixed_clock(AFTER_THANKSGIVING))
    other_seed = SimulatedMarket(8, now=fixed_clock(AFTER_THANKSGIVING))
    day = AFTER_THANKSGIVING.date().replace(day=20)
    assert market.daily_bar("IBM", day) == twin.daily_bar("IBM", day) != other_seed.daily_bar("IBM", day)
    assert market.profile("IBM") == twin.profile("IBM")
