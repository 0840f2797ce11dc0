"""Every fault kind, the rate limit and the admin endpoints, observed over real HTTP (uvicorn)."""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import urlsplit

import httpx
import pytest

from trading_data.sources.simulator.faults import Fault
from trading_data.sources.simulator.market import SimulatedMarket
from trading_data.sources.simulator.server import SimulatorServer

TICKERS = "/v3/reference/tickers"
QUOTES_PARAMS: dict[str, str | int] = {
    "timestamp.gte": "2026-11-20T17:00:00Z",
    "timestamp.lt": "2026-11-20T17:02:00Z",
    "order": "asc",
    "limit": 500,
}


@pytest.fixture(scope="module")
def sim(market: SimulatedMarket) -> Iterator[SimulatorServer]:
    with SimulatorServer(market, recorded_dir=None) as server:
        yield server


@pytest.fixture
def client(sim: SimulatorServer) -> Iterator[httpx.Client]:
    sim.faults.clear()
    with httpx.Client(base_url=sim.base_url, headers={"Authorization": "Bearer k"}, timeout=5) as http:
        yield http
    sim.faults.clear()


def follow(client: httpx.Client, next_url: str) -> httpx.Response:
    parts = urlsplit(next_url)
    return client.get(f"{parts.path}?{parts.query}")


def test_http_429_with_and_without_retry_after(sim: SimulatorServer, client: httpx.Client) -> None:
    sim.faults.replace([Fault("http_429", path_prefix=TICKERS, count=1, retry_after=2)])
    first = client.get(TICKERS)
    assert first.status_code == 429 and first.headers["Retry-After"] == "2"
    assert first.json()["status"] == "ERROR" and "maximum requests per minute" in first.json()["error"]
    assert client.get(TICKERS).status_code == 200  # count spent
    sim.faults.replace([Fault("http_429", count=1)])
    assert "Retry-After" not in client.get(TICKERS).headers


def test_5xx_faults(sim: SimulatorServer, client: httpx.Client) -> None:
    sim.faults.replace(
        [Fault("http_5xx_html", status=504, count=1), Fault("http_5xx_html", count=1, path_prefix="/v3")]
    )
    html = client.get(TICKERS)
    assert html.status_code == 504 and "<center>nginx</center>" in html.text
    assert client.get(TICKERS).status_code == 502
    sim.faults.replace([Fault("http_5xx_empty", count=1)])
    empty = client.get(TICKERS)
    assert empty.status_code == 503 and empty.content == b""
    sim.faults.replace([Fault("http_500_text", vendor="unusualwhales", count=1)])
    assert client.get(TICKERS).status_code == 200  # vendor filter: Polygon untouched
    text = client.get("/api/stock/AAPL/option-contracts")
    assert text.status_code == 500 and text.text == "Something went wrong"


def test_auth_faults(sim: SimulatorServer, client: httpx.Client) -> None:
    sim.faults.replace([Fault("http_401", count=1), Fault("http_403", count=1, path_prefix="/v2")])
    unknown = client.get(TICKERS)
    assert unknown.status_code == 401 and unknown.json()["error"] == "Unknown API Key"
    denied = client.get("/v2/aggs/grouped/locale/us/market/stocks/2026-11-20")
    assert denied.status_code == 403 and denied.json()["status"] == "NOT_AUTHORIZED"
    assert "not entitled" in denied.json()["message"]


def test_latency_and_timeout(sim: SimulatorServer, client: httpx.Client) -> None:
    sim.faults.replace([Fault("latency", count=1, seconds=0.05)])
    assert client.get(TICKERS).status_code == 200
    sim.faults.replace([Fault("timeout", count=1, seconds=3)])
    with pytest.raises(httpx.TimeoutException):
        client.get(TICKERS, timeout=0.3)
    assert client.get(TICKERS).status_code == 200


def test_connection_reset(sim: SimulatorServer, client: httpx.Client) -> None:
    sim.faults.replace([Fault("connection_reset", count=1)])
    with pytest.raises(httpx.ReadError, match="reset"):
        client.get(TICKERS)
    assert client.get(TICKERS).status_code == 200


def test_truncated_json(sim: SimulatorServer, client: httpx.Client) -> None:
    sim.faults.replace([Fault("truncated_json", count=1)])
    response = client.get(TICKERS)
    assert response.status_code == 200
    with pytest.raises(ValueError):
        response.json()


def test_repeat_last_row(sim: SimulatorServer, client: httpx.Client) -> None:
    first = client.get("/v3/quotes/AAPL", params=QUOTES_PARAMS).json()
    sim.faults.replace([Fault("repeat_last_row", count=1)])
    second = follow(client, first["next_url"]).json()
    assert second["results"][0] == first["results"][-1]
    sim.faults.clear()
    pages = [client.get(TICKERS, params={"limit": 10}).json()]
    sim.faults.replace([Fault("repeat_last_row", count=1, path_prefix=TICKERS)])
    pages.append(follow(client, pages[0]["next_url"]).json())
    assert pages[1]["results"][0] == pages[0]["results"][-1]


def test_next_url_cycle(sim: SimulatorServer, client: httpx.Client) -> None:
    first = client.get("/v3/quotes/AAPL", params=QUOTES_PARAMS).json()
    second = follow(client, first["next_url"]).json()
    sim.faults.replace([Fault("next_url_cycle", count=1)])
    third = follow(client, second["next_url"]).json()
    sim.faults.clear()
    back = follow(client, third["next_url"]).json()
    assert back["results"] == first["results"]  # next_url pointed back to the first page
    aggs = "/v2/aggs/ticker/AAPL/range/1/minute/2026-11-19/2026-11-20"
    page1 = client.get(aggs, params={"limit": 100}).json()
    sim.faults.replace([Fault("next_url_cycle", count=1)])
    page2 = follow(client, page1["next_url"]).json()
    sim.faults.clear()
    assert follow(client, page2["next_url"]).json()["results"] == page1["results"]


def test_rate_limit_and_stats_over_admin_endpoints(sim: SimulatorServer, client: httpx.Client) -> None:
    client.delete("/_sim/stats")
    plan = client.post("/_sim/faults", json={"faults": [], "rate_limit_per_second": 3})
    assert plan.status_code == 200
    codes = [client.get(TICKERS, params={"limit": 1}).status_code for _ in range(8)]
    assert codes.count(429) >= 1 and codes[:3] == [200, 200, 200]
    stats = client.get("/_sim/stats").json()
    assert stats["rate_limited"] == codes.count(429) and stats["total"] == 8
    assert stats["per_path"][TICKERS] == 8 and stats["max_per_second"] >= 3
    assert client.delete("/_sim/faults").status_code == 200
    assert sim.faults.rate_limit_per_second is None
    posted = client.post("/_sim/faults", json=[{"kind": "http_403", "count": 1}])
    assert posted.status_code == 200 and client.get(TICKERS).status_code == 403
    assert client.post("/_sim/faults", json=[{"kind": "nope"}]).status_code == 400
    assert sim.stats.snapshot()["total"] == stats["total"] + 1
