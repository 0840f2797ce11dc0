"""PolygonClient and UnusualWhalesClient over MockTransport: recorded responses and paging by time/page."""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any

import httpx
import pandas as pd
import pytest

from trading_data import schemas
from trading_data.sources import models
from trading_data.sources.errors import PagingLoopError
from trading_data.sources.polygon import PolygonClient, session_window_ns
from trading_data.sources.rate_limit import RateLimit, reset_rate_limiters
from trading_data.sources.retry import RetryPolicy
from trading_data.sources.unusual_whales import UnusualWhalesClient
from trading_data_tests.sources.fakes import KEY, Recorder, SleepRecorder, recorded_polygon, uw_example

FAST = RetryPolicy(attempts=3, initial_wait=0.01, max_wait=0.02, jitter=0.0, min_wait_after_429=0.01)
UTC = dt.UTC


@pytest.fixture(autouse=True)
def _fresh_limiters():
    reset_rate_limiters()
    yield
    reset_rate_limiters()


def polygon(server: Recorder) -> PolygonClient:
    return PolygonClient.create(
        KEY,
        rate_limit=RateLimit(10_000, 1.0),
        retry=FAST,
        transport=server.transport(),
        sleep=SleepRecorder(),
    )


def call(server: Recorder, method: str, *args: Any, **kwargs: Any) -> Any:
    async def go() -> Any:
        async with polygon(server) as client:
            return await getattr(client, method)(*args, **kwargs)

    return asyncio.run(go())


def test_bars_from_recording():
    server = Recorder(recorded_polygon)
    df = call(server, "bars", "AAPL", 1, "day", dt.date(2005, 4, 1), dt.date(2005, 4, 4))
    schemas.Prices.validate(df)
    assert len(df) == 2 and df["close"].tolist() == [1.4604, 1.4675]
    request = server.requests[0]
    assert request.url.path == "/v2/aggs/ticker/AAPL/range/1/day/2005-04-01/2005-04-04"
    assert request.url.params["adjusted"] == "true" and request.url.params["limit"] == "50000"


def test_grouped_daily_from_recording():
    server = Recorder(recorded_polygon)
    df = call(server, "grouped_daily", dt.date(2005, 4, 4))
    models.GroupedDaily.validate(df)
    assert df.iloc[0]["ticker"] == "GIK" and df.iloc[0]["vwap"] == 9.9979


def test_quotes_follow_recorded_next_url_to_our_host_page_by_page():
    server = Recorder(recorded_polygon)

    async def go() -> list[pd.DataFrame]:
        async with polygon(server) as client:
            return [
                f
                async for f in client.iter_quotes(
                    "AAPL", gte_ns=1652191872000000000, lt_ns=1652191873000000000
                )
            ]

    frames = asyncio.run(go())
    assert [len(f) for f in frames] == [10, 10]
    for frame in frames:
        schemas.Quotes.validate(frame)
    assert frames[0].iloc[0]["sip_ns"] == 1652191872800638700
    assert frames[1].iloc[-1]["sequence_number"] == 19288004
    first, second = server.requests
    assert first.url.params["order"] == "asc" and first.url.params["sort"] == "timestamp"
    assert first.url.params["limit"] == "50000" and first.url.params["timestamp.gte"] == "1652191872000000000"
    assert first.url.params["timestamp.lt"] == "1652191873000000000"
    # the recorded next_url points at api.massive.com: we keep only path and query
    assert second.url.host == "api.polygon.io" and set(second.url.params) == {"cursor"}
    assert all(
        r.headers["authorization"] == f"Bearer {KEY}" and "apiKey" not in str(r.url) for r in server.requests
    )


def test_trades_for_a_session_window():
    server = Recorder(recorded_polygon)
    df = call(server, "trades", "AAPL", session="2026-11-27")
    schemas.Trades.validate(df)
    assert len(df) == 2 and df.iloc[0]["trade_id"] == "183276"
    gte, lt = session_window_ns("2026-11-27")
    assert server.requests[0].url.params["timestamp.gte"] == str(gte)
    assert server.requests[0].url.params["timestamp.lt"] == str(lt)
    assert pd.Timestamp(gte, tz="UTC") == pd.Timestamp("2026-11-27 00:00", tz="America/New_York")


def test_trades_session_must_be_a_session():
    with pytest.raises(ValueError, match="Thanksgiving|not an NYSE session"):
        call(Recorder(recorded_polygon), "trades", "AAPL", session="2026-11-26")


def test_empty_answer_is_an_empty_valid_frame():
    server = Recorder(
        lambda request: httpx.Response(
            200, json={"status": "OK", "resultsCount": 0, "queryCount": 0, "request_id": "x"}
        )
    )
    trades = call(server, "trades", "AAPL", gte_ns=1, lt_ns=2)
    assert len(trades) == 0 and list(trades.columns) == schemas.TABLES["trades"].columns
    assert len(call(server, "grouped_daily", "2024-01-01")) == 0


def test_option_chain_snapshot_from_recording():
    server = Recorder(recorded_polygon)
    polled = dt.datetime(2024, 5, 1, 14, 30, tzinfo=UTC)
    df = call(server, "option_chain_snapshot", "AAPL", polled_at=polled)
    schemas.OptionsFlow.validate(df)
    assert df.iloc[0]["option_symbol"] == "AAPL230616C00150000" and df.iloc[0]["ts"] == pd.Timestamp(polled)
    assert server.requests[0].url.params["limit"] == "250"


def test_option_contracts_two_recorded_pages():
    server = Recorder(recorded_polygon)
    df = call(server, "option_contracts", "A")
    models.OptionContracts.validate(df)
    assert len(df) == 20 and df.iloc[-1]["option_symbol"] == "A220520C00160000"
    assert server.requests[0].url.params["underlying_ticker"] == "A"


def test_ticker_universe_two_recorded_pages():
    server = Recorder(recorded_polygon)
    df = call(server, "tickers")
    models.TickerUniverse.validate(df)
    assert df["ticker"].tolist() == ["A", "AA", "AAA", "AAAU"]
    assert server.requests[0].url.params["market"] == "stocks"


def test_market_status():
    server = Recorder(recorded_polygon)
    now = call(server, "market_status_now")
    assert now["market"] == "extended-hours" and now["exchanges"]["nyse"] == "extended-hours"


def test_bars_reject_unknown_timespan():
    with pytest.raises(ValueError, match="timespan"):
        call(Recorder(recorded_polygon), "bars", "AAPL", 1, "week", "2024-01-01", "2024-01-31")


# -- Unusual Whales ----------------------------------------------------------------------------------


def _alert(i: int, created: pd.Timestamp, template: dict[str, Any]) -> dict[str, Any]:
    fmt = "%Y-%m-%dT%H:%M:%S.%fZ" if i % 2 else "%Y-%m-%d %H:%M:%S.%f+00:00"
    return dict(template, id=f"alert-{i:04d}", created_at=created.strftime(fmt))


class FlowAlertServer:
    """Flow alerts newest first; ``older_than`` inclusive (so pages overlap at the edges), ms epochs."""

    def __init__(self, count: int, start: pd.Timestamp, step: pd.Timedelta):
        template = uw_example("Flow Alert")["data"][0]
        self.alerts = [_alert(i, start + i * step, template) for i in range(count)]
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        params = request.url.params
        newer = pd.Timestamp(int(params["newer_than"]), unit="ms", tz="UTC")
        older = pd.Timestamp(int(params["older_than"]), unit="ms", tz="UTC")
        limit = int(params.get("limit", 100))
        hits = [a for a in self.alerts if newer <= pd.Timestamp(a["created_at"]).tz_convert("UTC") <= older]
        hits.sort(key=lambda a: pd.Timestamp(a["created_at"]).tz_convert("UTC"), reverse=True)
        return httpx.Response(200, json={"data": hits[:limit]})


def uw_client(handler: Any) -> UnusualWhalesClient:
    return UnusualWhalesClient.create(
        "uw_token",
        rate_limit=RateLimit(10_000, 1.0),
        retry=FAST,
        transport=httpx.MockTransport(handler),
        sleep=SleepRecorder(),
    )


def test_flow_alerts_page_by_time_dedupe_and_cover_the_window():
    start = pd.Timestamp("2025-10-22 13:30", tz="UTC")
    server = FlowAlertServer(450, start, pd.Timedelta(seconds=1))
    window = (dt.datetime(2025, 10, 22, 13, 31, tzinfo=UTC), dt.datetime(2025, 10, 22, 13, 37, tzinfo=UTC))

    async def go() -> pd.DataFrame:
        async with uw_client(server) as client:
            return await client.flow_alerts("MSFT", *window, limit=100, min_premium=50_000)

    df = asyncio.run(go())
    schemas.OptionsFlow.validate(df)
    expected = {
        a["id"]
        for a in server.alerts
        if window[0] <= pd.Timestamp(a["created_at"]).tz_convert("UTC") < window[1]
    }
    assert len(expected) == 360
    assert set(df["record_id"]) == expected and df["record_id"].is_unique
    assert df["ts"].min() == pd.Timestamp(window[0]) and df["ts"].max() < pd.Timestamp(window[1])
    first = server.requests[0].url.params
    assert first["ticker_symbol"] == "MSFT" and first["min_premium"] == "50000" and first["limit"] == "100"
    # older_than moves back to the oldest created_at seen
    cursors = [int(r.url.params["older_than"]) for r in server.requests]
    assert cursors == sorted(cursors, reverse=True) and len(server.requests) <= 6


def test_flow_alerts_stop_when_nothing_new():
    template = uw_example("Flow Alert")["data"][0]
    same = [dict(template, id="a1", created_at="2025-10-22T13:00:00.000000Z")]
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"data": same})

    async def go() -> pd.DataFrame:
        async with uw_client(handler) as client:
            return await client.flow_alerts(
                None, dt.datetime(2025, 10, 22, tzinfo=UTC), dt.datetime(2025, 10, 23, tzinfo=UTC), limit=1
            )

    df = asyncio.run(go())
    assert df["record_id"].tolist() == ["a1"] and len(seen) == 2


def test_uw_option_contracts_paged_by_number():
    template = uw_example("Option contracts")["data"][0]
    contracts = [dict(template, option_symbol=f"AAPL240202P{(100 + i) * 1000:08d}") for i in range(1200)]
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        page, limit = int(request.url.params["page"]), int(request.url.params["limit"])
        return httpx.Response(200, json={"data": contracts[page * limit : (page + 1) * limit]})

    async def go() -> pd.DataFrame:
        async with uw_client(handler) as client:
            return await client.option_contracts("AAPL")

    df = asyncio.run(go())
    models.OptionContractStats.validate(df)
    assert len(df) == 1200 and df["option_symbol"].is_unique
    assert [r.url.params["page"] for r in seen] == ["0", "1", "2"]


def test_uw_option_contracts_ignoring_page_is_a_loop():
    template = uw_example("Option contracts")["data"]

    async def go() -> None:
        async with uw_client(lambda request: httpx.Response(200, json={"data": template})) as client:
            await client.option_contracts("AAPL", limit=2)

    with pytest.raises(PagingLoopError, match="page 1"):
        asyncio.run(go())
