"""The clients end to end against the offline simulator over real HTTP on loopback, with its faults."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Iterator
from typing import Any

import dagster as dg
import httpx
import pandas as pd
import pytest

from trading_data import schemas
from trading_data.sources import models
from trading_data.sources.errors import MalformedResponse, PagingLoopError, VendorAuthError
from trading_data.sources.polygon import PolygonClient
from trading_data.sources.rate_limit import RateLimit, reset_rate_limiters
from trading_data.sources.resources import PolygonResource
from trading_data.sources.retry import RetryPolicy
from trading_data.sources.unusual_whales import UnusualWhalesClient
from trading_data_tests.sources.fakes import KEY, SleepRecorder

server_module = pytest.importorskip("trading_data.sources.simulator.server")
from trading_data.sources.simulator.faults import Fault  # noqa: E402

UTC = dt.UTC
NOW = dt.datetime(2026, 11, 27, 23, 0, tzinfo=UTC)  # after the 2026-11-27 early close
SESSION = "2026-11-27"
OPEN_NS = int(pd.Timestamp("2026-11-27 09:30", tz="America/New_York").value)
UNLIMITED = RateLimit(10_000, 1.0)
FAST = RetryPolicy(attempts=4, initial_wait=0.01, max_wait=0.05, jitter=0.01, min_wait_after_429=0.02)


class RecordingTransport(httpx.AsyncHTTPTransport):
    """A real HTTP transport that keeps the requests it sent."""

    def __init__(self, **kwargs: Any):
        super().__init__(**kwargs)
        self.requests: list[httpx.Request] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return await super().handle_async_request(request)


@pytest.fixture(scope="module")
def sim() -> Iterator[Any]:
    with server_module.SimulatorServer(seed=7, now=lambda: NOW) as server:
        yield server


@pytest.fixture(autouse=True)
def _reset(sim: Any) -> Iterator[None]:
    sim.faults.clear()
    sim.stats.reset()
    reset_rate_limiters()
    yield
    sim.faults.clear()


def polygon(
    sim: Any,
    *,
    transport: httpx.AsyncBaseTransport | None = None,
    sleep: SleepRecorder | None = None,
    rate_limit: RateLimit = UNLIMITED,
    timeout: float = 5.0,
) -> PolygonClient:
    return PolygonClient.create(
        KEY,
        base_url=sim.base_url,
        rate_limit=rate_limit,
        retry=FAST,
        timeout=timeout,
        transport=transport,
        sleep=sleep or SleepRecorder(),
    )


def run(coro: Any) -> Any:
    return asyncio.run(coro)


async def quote_pages(client: PolygonClient, minutes: int = 1, limit: int = 2000) -> list[pd.DataFrame]:
    return [
        f
        async for f in client.iter_quotes(
            "MSFT", gte_ns=OPEN_NS, lt_ns=OPEN_NS + minutes * 60 * 10**9, limit=limit
        )
    ]


def test_quotes_stream_page_by_page_with_bearer_only(sim):
    transport = RecordingTransport()

    async def go() -> list[pd.DataFrame]:
        async with polygon(sim, transport=transport) as client:
            return await quote_pages(client)

    frames = run(go())
    assert len(frames) > 1
    df = pd.concat(frames, ignore_index=True)
    schemas.Quotes.validate(df)
    assert not df.duplicated(["ticker", "sip_ns", "sequence_number"]).any()
    assert df["ts"].is_monotonic_increasing and df["ts"].min() >= pd.Timestamp(OPEN_NS, tz="UTC")
    for request in transport.requests:
        assert request.url.host == "127.0.0.1" and "apikey" not in str(request.url).lower()
        assert request.headers["authorization"] == f"Bearer {KEY}"


def test_repeated_last_row_fault_is_deduplicated(sim):
    async def go() -> pd.DataFrame:
        async with polygon(sim) as client:
            return pd.concat(await quote_pages(client), ignore_index=True)

    clean = run(go())
    sim.faults.replace([Fault("repeat_last_row", path_prefix="/v3/quotes", count=None)])
    faulty = run(go())
    pd.testing.assert_frame_equal(clean, faulty)


def test_next_url_cycle_fault_raises(sim):
    # every page's next_url restarts the listing: the second cursor repeats the first
    sim.faults.replace([Fault("next_url_cycle", path_prefix="/v3/quotes", count=None)])

    async def go() -> None:
        async with polygon(sim) as client:
            await quote_pages(client)

    with pytest.raises(PagingLoopError, match="cycling"):
        run(go())


@pytest.mark.parametrize(
    "fault",
    [
        Fault("http_5xx_html", status=502, count=2),
        Fault("http_5xx_html", status=504, count=1),
        Fault("http_5xx_empty", count=2),
        Fault("connection_reset", count=2),
        Fault("timeout", seconds=3.0, count=1),
        Fault("http_429", count=2),
    ],
    ids=lambda f: f"{f.kind}-{f.status or ''}",
)
def test_transient_faults_are_retried(sim, fault):
    sim.faults.replace([fault])
    sleep = SleepRecorder()
    # Only the stalled response should time out: a tight timeout on every fault made the retry after
    # the fault time out too on a loaded CI machine (a 3,000-ticker page), one retry more than planned.
    timeout = 1.0 if fault.kind == "timeout" else 10.0

    async def go() -> tuple[pd.DataFrame, PolygonClient]:
        async with polygon(sim, sleep=sleep, timeout=timeout) as client:
            return await client.grouped_daily(SESSION), client

    df, client = run(go())
    models.GroupedDaily.validate(df)
    assert "AAPL" in set(df["ticker"]) and len(sleep.waits) == fault.count
    assert client.stats.retries == fault.count


def test_429_retry_after_is_honoured(sim):
    sim.faults.replace([Fault("http_429", retry_after=3, count=1)])
    sleep = SleepRecorder()

    async def go() -> PolygonClient:
        async with polygon(sim, sleep=sleep) as client:
            await client.market_status_now()
            return client

    client = run(go())
    assert sleep.waits == [3.0] and client.stats.rate_limited == 1


def test_faults_posted_over_http(sim):
    plan = {"faults": [{"kind": "http_401", "path_prefix": "/v3/reference/tickers", "count": 1}]}
    assert httpx.post(f"{sim.base_url}/_sim/faults", json=plan).status_code == 200

    async def go() -> None:
        async with polygon(sim) as client:
            await client.tickers()

    with pytest.raises(VendorAuthError) as info:
        run(go())
    message = str(info.value)
    assert "POLYGON_API_KEY" in message and "Unknown API Key" in message and KEY not in message
    assert sim.stats.snapshot()["total"] == 1  # not retried


def test_403_not_entitled(sim):
    sim.faults.replace([Fault("http_403", count=1)])

    async def go() -> None:
        async with polygon(sim) as client:
            await client.option_chain_snapshot("AAPL")

    with pytest.raises(VendorAuthError, match="not entitled"):
        run(go())


def test_truncated_json_raises_malformed_after_retries(sim):
    sim.faults.replace([Fault("truncated_json", count=None)])

    async def go() -> None:
        async with polygon(sim) as client:
            await client.bars("AAPL", 1, "day", "2026-11-02", "2026-11-27")

    with pytest.raises(MalformedResponse, match=f"gave up after {FAST.attempts} attempts"):
        run(go())
    assert sim.stats.snapshot()["total"] == FAST.attempts


def test_rate_limiter_spreads_concurrent_requests(sim):
    async def go() -> PolygonClient:
        async with polygon(sim, rate_limit=RateLimit(10, 1.0)) as client:
            await asyncio.gather(*(client.market_status_now() for _ in range(20)))
            return client

    client = run(go())
    snapshot = sim.stats.snapshot()
    assert snapshot["total"] == 20
    assert snapshot["max_per_second"] <= 10
    assert client.http.limiter.max_in_window(1.0) <= 10


def test_polygon_endpoints_validate(sim):
    async def go() -> dict[str, Any]:
        async with polygon(sim) as client:
            return {
                "bars": await client.bars("AAPL", 1, "minute", dt.date(2026, 11, 27), dt.date(2026, 11, 27)),
                "trades": await client.trades("MSFT", gte_ns=OPEN_NS, lt_ns=OPEN_NS + 60 * 10**9),
                "chain": await client.option_chain_snapshot("AAPL", polled_at=NOW),
                "contracts": await client.option_contracts("AAPL"),
                "universe": await client.tickers(),
                "stats": client.stats,
            }

    out = run(go())
    bars = out["bars"]
    assert len(bars) > 100 and bars["ts"].min() >= pd.Timestamp("2026-11-27 04:00", tz="America/New_York")
    assert len(out["trades"]) > 0 and (out["trades"]["ticker"] == "MSFT").all()
    assert len(out["chain"]) > 0 and (out["chain"]["record_type"] == "chain_snapshot").all()
    assert len(out["contracts"]) > 0 and len(out["universe"]) > 100
    metadata = out["stats"].as_metadata()
    assert metadata["polygon/requests"] >= 5 and "polygon/latency_p95_ms" in metadata


def test_unusual_whales_flow_alerts_and_contracts(sim):
    async def go() -> tuple[pd.DataFrame, pd.DataFrame, UnusualWhalesClient]:
        async with UnusualWhalesClient.create(
            "uw_token",
            base_url=sim.base_url,
            rate_limit=RateLimit(10_000, 1.0),
            retry=FAST,
            sleep=SleepRecorder(),
        ) as client:
            start = pd.Timestamp("2026-11-27", tz="America/New_York").to_pydatetime()
            end = pd.Timestamp("2026-11-28", tz="America/New_York").to_pydatetime()
            alerts = await client.flow_alerts("AAPL", start, end, limit=20)
            contracts = await client.option_contracts("AAPL", limit=200)
            return alerts, contracts, client

    alerts, contracts, client = run(go())
    schemas.OptionsFlow.validate(alerts)
    assert len(alerts) > 0 and alerts["record_id"].is_unique and (alerts["ticker"] == "AAPL").all()
    assert alerts["ts"].dt.tz_convert("America/New_York").dt.date.eq(dt.date(2026, 11, 27)).all()
    models.OptionContractStats.validate(contracts)
    assert contracts["option_symbol"].is_unique and len(contracts) > 0
    assert "x-uw-daily-req-count" in client.stats.usage


def test_uw_500_text_plain_retried(sim):
    sim.faults.replace([Fault("http_500_text", vendor="unusualwhales", count=1)])
    sleep = SleepRecorder()

    async def go() -> pd.DataFrame:
        async with UnusualWhalesClient.create(
            "uw_token", base_url=sim.base_url, retry=FAST, sleep=sleep
        ) as client:
            return await client.option_contracts("MSFT", limit=500)

    assert len(run(go())) > 0 and len(sleep.waits) == 1


def test_resource_in_simulated_mode_feeds_an_asset(monkeypatch):
    for name in ["POLYGON_API_KEY", "TRADING_DATA_SOURCE", "TRADING_DATA_SIMULATOR_URL"]:
        monkeypatch.delenv(name, raising=False)

    @dg.asset
    async def grouped(context, polygon: PolygonResource) -> int:
        async with polygon.client() as client:
            df = await client.grouped_daily(SESSION)
            context.add_output_metadata(client.stats.as_metadata())
        return len(df)

    result = dg.materialize([grouped], resources={"polygon": PolygonResource()})
    assert result.success and result.output_for_node("grouped") > 100
    metadata = result.asset_materializations_for_node("grouped")[0].metadata
    assert metadata["polygon/requests"].value == 1
