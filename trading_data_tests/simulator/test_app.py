"""The HTTP contract, in process: shapes, paging, auth, recorded responses, Unusual Whales."""

from __future__ import annotations

import asyncio
import base64
import json
import warnings
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from trading_data.sources.simulator.app import create_app
from trading_data.sources.simulator.faults import Fault, FaultInjector
from trading_data.sources.simulator.market import SimulatedMarket
from trading_data.sources.simulator.server import build_parser, inprocess_transport
from trading_data_tests.simulator.conftest import AFTER_THANKSGIVING, fixed_clock
from trading_data_tests.sources.fakes import RECORDED

with warnings.catch_warnings():  # starlette nags about httpx in its TestClient
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

AUTH = {"Authorization": "Bearer test-key"}
pytestmark = pytest.mark.filterwarnings("ignore::Warning:starlette.testclient")


@pytest.fixture(scope="module")
def client(market: SimulatedMarket) -> TestClient:
    return TestClient(create_app(market, recorded_dir=None), headers=AUTH)


def cursor_of(next_url: str) -> str:
    parts = urlsplit(next_url)
    query = parse_qs(parts.query)
    assert list(query) == ["cursor"], next_url
    return query["cursor"][0]


def follow(client: TestClient, next_url: str) -> dict:
    parts = urlsplit(next_url)  # keep path and query, put back our own base URL and auth
    return client.get(f"{parts.path}?{parts.query}").json()


def test_holiday_is_empty_without_results_key(client: TestClient) -> None:
    body = client.get("/v2/aggs/ticker/AAPL/range/1/minute/2026-11-26/2026-11-26").json()
    assert body["resultsCount"] == 0 and "results" not in body and body["status"] == "OK"
    grouped = client.get("/v2/aggs/grouped/locale/us/market/stocks/2026-11-26").json()
    assert grouped["resultsCount"] == 0 and "results" not in grouped
    quotes = client.get("/v3/quotes/AAPL", params={"timestamp": "2026-11-26"}).json()
    assert "results" not in quotes and quotes["status"] == "OK" and "request_id" in quotes


def test_early_close_over_http(client: TestClient) -> None:
    body = client.get(
        "/v2/aggs/ticker/AAPL/range/1/minute/2026-11-27/2026-11-27", params={"limit": 50000}
    ).json()
    last = max(bar["t"] for bar in body["results"])
    assert last < 1795802400000  # 2026-11-27 13:00 New York
    assert body["resultsCount"] == len(body["results"]) > 100


def test_grouped_daily_shape(client: TestClient) -> None:
    body = client.get("/v2/aggs/grouped/locale/us/market/stocks/2026-11-20").json()
    assert body["resultsCount"] == 3000
    row = body["results"][0]
    assert set(row) == {"T", "v", "vw", "o", "c", "h", "l", "t", "n"}
    assert row["t"] == 1795208400000  # 16:00 New York


def test_aggs_paging_rewrites_from_and_covers_everything(client: TestClient) -> None:
    path = "/v2/aggs/ticker/MSFT/range/1/minute/2026-11-19/2026-11-20"
    whole = client.get(path, params={"limit": 50000}).json()["results"]
    page = client.get(path, params={"limit": 300}).json()
    seen = list(page["results"])
    hosts = set()
    while "next_url" in page:
        parts = urlsplit(page["next_url"])
        hosts.add(parts.netloc)
        assert parts.path.split("/")[-2].isdigit()  # {from} is now a ms timestamp
        cursor_of(page["next_url"])
        page = follow(client, page["next_url"])
        seen.extend(page.get("results", []))
    assert seen == whole
    assert len(hosts) >= 2


def test_aggs_hour_and_day(client: TestClient) -> None:
    hours = client.get("/v2/aggs/ticker/AAPL/range/1/hour/2026-11-20/2026-11-20").json()["results"]
    assert len(hours) == 7  # 09:00 (from 09:30) .. 15:00 New York
    days = client.get("/v2/aggs/ticker/AAPL/range/1/day/2026-11-16/2026-11-20").json()
    assert days["resultsCount"] == 5 and days["results"][0]["t"] == 1794805200000  # 00:00 New York


def test_quotes_paging_next_url_shape_and_continuity(client: TestClient) -> None:
    params = {"timestamp.gte": "2026-11-20T17:00:00Z", "timestamp.lt": "2026-11-20T17:03:00Z", "order": "asc"}
    whole = client.get("/v3/quotes/AAPL", params={**params, "limit": 50000}).json()["results"]
    page = client.get("/v3/quotes/AAPL", params={**params, "limit": 1000, "apiKey": "secret"}).json()
    assert "secret" not in page["next_url"] and page["next_url"].startswith("https://")
    assert not page["next_url"].startswith("http://testserver")
    cursor = cursor_of(page["next_url"])
    json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))  # opaque but ours
    seen = list(page["results"])
    while "next_url" in page:
        page = follow(client, page["next_url"])
        seen.extend(page.get("results", []))
    assert seen == whole and 1000 < len(whole) < 50000
    keys = [(q["sip_timestamp"], q["sequence_number"]) for q in whole]
    assert keys == sorted(keys)


def test_trades_default_order_is_desc(client: TestClient) -> None:
    body = client.get("/v3/trades/TSLA", params={"timestamp": "2026-11-20", "limit": 50}).json()
    stamps = [t["sip_timestamp"] for t in body["results"]]
    assert stamps == sorted(stamps, reverse=True) and len(stamps) == 50
    assert {"exchange", "id", "price", "sequence_number", "sip_timestamp", "size", "tape"} <= set(
        body["results"][0]
    )


def test_big_quote_page_renders(client: TestClient) -> None:
    body = client.get("/v3/quotes/SPY", params={"timestamp": "2026-11-20", "limit": 50000}).json()
    assert len(body["results"]) == 50000 and "next_url" in body


def test_options_snapshot_and_contracts(client: TestClient) -> None:
    snap = client.get("/v3/snapshot/options/AAPL", params={"limit": 250}).json()
    assert 0 < len(snap["results"]) <= 250
    row = snap["results"][0]
    assert row["details"]["ticker"].startswith("O:AAPL")
    assert {"delta", "gamma", "theta", "vega"} == set(row["greeks"])
    assert isinstance(row["open_interest"], int) and row["implied_volatility"] > 0
    contracts = client.get(
        "/v3/reference/options/contracts", params={"underlying_ticker": "AAPL", "limit": 1000}
    ).json()["results"]
    expiry = contracts[0]["expiration_date"]
    only = client.get(
        "/v3/reference/options/contracts",
        params={"underlying_ticker": "AAPL", "expiration_date": expiry, "limit": 1000},
    ).json()
    assert only["results"] and all(c["expiration_date"] == expiry for c in only["results"])


def test_reference_tickers_and_market_status(client: TestClient) -> None:
    page = client.get("/v3/reference/tickers", params={"market": "stocks", "limit": 1000}).json()
    assert len(page["results"]) == 1000 and "next_url" in page
    tickers = [r["ticker"] for r in page["results"]]
    assert tickers == sorted(tickers)
    status = client.get("/v1/marketstatus/now").json()
    assert status["market"] == "closed"
    upcoming = client.get("/v1/marketstatus/upcoming").json()
    assert isinstance(upcoming, list) and {"NYSE", "NASDAQ"} == {u["exchange"] for u in upcoming}


def test_auth_required(market: SimulatedMarket) -> None:
    anonymous = TestClient(create_app(market, recorded_dir=None))
    response = anonymous.get("/v3/reference/tickers")
    assert response.status_code == 401
    assert response.json()["error"] == "API Key was not provided" and response.json()["status"] == "ERROR"
    assert anonymous.get("/v3/reference/tickers", params={"apiKey": "k"}).status_code == 200
    assert anonymous.get("/api/option-trades/flow-alerts").status_code == 401


def test_unusual_whales_flow_alerts(client: TestClient) -> None:
    response = client.get("/api/option-trades/flow-alerts", params={"ticker_symbol": "AAPL", "limit": 5})
    assert response.status_code == 200
    for header in (
        "x-uw-daily-req-count",
        "x-uw-token-req-limit",
        "x-uw-minute-req-counter",
        "x-uw-req-per-minute-remaining",
        "x-uw-req-per-minute-reset",
    ):
        assert header in response.headers
    data = response.json()["data"]
    assert len(data) == 5
    alert = data[0]
    for key in ("price", "strike", "total_premium", "underlying_price", "volume_oi_ratio"):
        assert isinstance(alert[key], str)
        float(alert[key])
    for key in ("total_size", "volume", "open_interest", "start_time", "end_time", "trade_count"):
        assert isinstance(alert[key], int)
    assert not alert["option_chain"].startswith("O:") and alert["option_chain"].startswith("AAPL")
    created = [a["created_at"] for a in data]
    assert created == sorted(created, reverse=True)
    # Paging by time overlaps at the edge: the boundary record comes back again.
    last = data[-1]
    older = client.get(
        "/api/option-trades/flow-alerts",
        params={"ticker_symbol": "AAPL", "limit": 5, "older_than": str(last["end_time"] + 10_000)},
    )
    ids = [a["id"] for a in older.json()["data"]]
    assert last["id"] in ids


def test_unusual_whales_errors_and_contracts(client: TestClient) -> None:
    bad = client.get("/api/option-trades/flow-alerts", params={"limit": 500})
    assert bad.status_code == 422 and set(bad.json()) == {"msg", "path", "query", "url"}
    page0 = client.get("/api/stock/AAPL/option-contracts", params={"limit": 100, "page": 0}).json()["data"]
    page1 = client.get("/api/stock/AAPL/option-contracts", params={"limit": 100, "page": 1}).json()["data"]
    assert len(page0) == 100 and page1 and page0[0]["option_symbol"] != page1[0]["option_symbol"]
    row = page0[0]
    assert isinstance(row["implied_volatility"], str) and isinstance(row["open_interest"], int)
    assert client.get("/api/stock/AAPL/option-contracts", params={"page": 99}).json() == {"data": []}


@pytest.mark.skipif(not RECORDED.is_dir(), reason="reference recordings not present")
def test_recorded_responses_are_answered_verbatim(market: SimulatedMarket) -> None:
    client = TestClient(create_app(market, recorded_dir=RECORDED), headers=AUTH)
    files = sorted(RECORDED.rglob("*.json"))
    assert files
    for file in files:
        rel = file.relative_to(RECORDED).as_posix()[: -len(".json")].replace(";", ":")
        url = "/" + rel.replace("&", "?", 1)
        response = client.get(url, params={"apiKey": "k"} if "?" not in url else None)
        assert response.status_code == 200, url
        assert response.json() == json.loads(Path(file).read_text()), url


def test_same_seed_same_pages_over_http(market: SimulatedMarket) -> None:
    def page(seed: int) -> list[dict]:
        app = create_app(SimulatedMarket(seed, now=fixed_clock(AFTER_THANKSGIVING)), recorded_dir=None)
        params = {"timestamp": "2026-11-20", "limit": 200}
        return TestClient(app, headers=AUTH).get("/v3/trades/AMD", params=params).json()["results"]

    assert page(7) == page(7) != page(8)


def test_inprocess_transport_and_its_connection_reset(market: SimulatedMarket) -> None:
    faults = FaultInjector([Fault("connection_reset", count=1)])
    transport = inprocess_transport(create_app(market, faults, recorded_dir=None))

    async def run() -> tuple[str, int]:
        async with httpx.AsyncClient(
            transport=transport, base_url="https://api.polygon.io", headers=AUTH
        ) as http:
            try:
                await http.get("/v1/marketstatus/now")
                error = ""
            except httpx.ReadError as exc:
                error = str(exc)
            ok = await http.get("/v1/marketstatus/now")
            return error, ok.status_code

    assert asyncio.run(run()) == ("simulated connection reset", 200)


def test_cli_arguments() -> None:
    args = build_parser().parse_args(["serve", "--port", "9001", "--seed", "3", "--latency-ms", "25"])
    assert (args.port, args.seed, args.latency_ms, args.recorded_dir) == (9001, 3, 25.0, None)
    args = build_parser().parse_args(["serve", "--recorded-dir", "recordings"])
    assert args.recorded_dir == Path("recordings")


def test_no_recorded_responses_by_default(market: SimulatedMarket) -> None:
    """Without a folder configured every answer is the simulated market's, not a 2022 recording."""
    client = TestClient(create_app(market), headers=AUTH)
    assert client.get("/v1/marketstatus/now").json()["serverTime"].startswith("2026-11-28")
    assert client.get("/v1/open-close/AAPL/2005-04-01", params={"adjusted": "true"}).status_code == 404


def test_a_missing_recorded_folder_is_one_clear_error(market: SimulatedMarket, tmp_path: Path) -> None:
    missing = tmp_path / "no-such-folder"
    with pytest.raises(ValueError) as caught:
        create_app(market, recorded_dir=missing)
    message = str(caught.value)
    assert str(missing) in message and "recorded" in message and "--recorded-dir" in message
    assert message.count("\n") == 0
