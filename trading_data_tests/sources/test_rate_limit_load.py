"""Rate limit under load (issue 12): 4 OS processes collect at once through the real PolygonClient
against the simulator, whose server-side limit equals the plan, sharing one key's window through
PostgreSQL or Redis. The server refuses nothing and no second holds more than the plan.

The load runs with the default padding: the delays between a permit and the server counting its
request need none (a permit's window starts when its request is done), however loaded the machine.
The server's own counts are the evidence; the workers' records of their grants are not checked
against the window, since a worker stalled between a permit and recording it shifts the record,
not the request. Throughput is a timing figure: ``make bench-rate-limit`` measures it."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Iterator

import httpx
import pytest

from trading_data.sources.polygon import PolygonClient
from trading_data.sources.rate_limit import RateLimit, key_fingerprint, reset_rate_limiters
from trading_data.sources.rate_limit_store import REDIS_KEY_PREFIX
from trading_data.sources.retry import RetryPolicy
from trading_data_tests.sources.rate_limit_load import run_load
from trading_data_tests.sources.test_shared_rate_limit import REDIS_URL, RUN, redis_or_skip

PLAN_PER_SECOND = 10
PAGE_SIZE = 30  # 13+ pages of minute bars per worker


@pytest.fixture
def key() -> Iterator[str]:
    made = f"{RUN}load-{uuid.uuid4().hex}"
    yield made
    import redis

    with contextlib.suppress(redis.RedisError):
        redis.Redis.from_url(REDIS_URL).delete(f"{REDIS_KEY_PREFIX}:polygon:{key_fingerprint(made)}")


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["postgres", "redis"])
def test_four_processes_stay_within_the_plan(kind: str, key: str, database_url: str) -> None:
    if kind == "redis":
        redis_or_skip()
    result = run_load(
        store=kind,
        store_url=database_url if kind == "postgres" else REDIS_URL,
        key=key,
        workers=4,
        limit_per_second=PLAN_PER_SECOND,
        page_size=PAGE_SIZE,
    )
    assert result.server_refused == 0 and result.client_429s == 0
    assert result.server_max_per_second <= PLAN_PER_SECOND  # every request, counted as it arrived
    # Every page of every worker was fetched, each once.
    assert result.requests == result.server_requests == len(result.grants) >= 4 * 13


class SlowFirstRequest(httpx.AsyncHTTPTransport):
    """A real HTTP transport whose first request spends ``delay`` seconds on its way to the server,
    as on a congested network or behind a stalled event loop."""

    def __init__(self, delay: float):
        super().__init__()
        self.delay = delay
        self.sent = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.sent += 1
        if self.sent == 1:
            await asyncio.sleep(self.delay)
        return await super().handle_async_request(request)


def test_a_request_slow_to_arrive_cannot_overfill_the_servers_window() -> None:
    """Bug: permits were counted from their grant. Two requests granted at 0, the first reaching the
    server at 0.6 s: the window let two more go at 1.05 s, and the server, counting arrivals, saw
    three within a second and refused one (429). Counted from the response, the third goes a window
    after the second's and the fourth a window after the first's."""
    from trading_data.sources.simulator.server import SimulatorServer

    reset_rate_limiters()
    transport = SlowFirstRequest(0.6)
    with SimulatorServer() as sim:
        sim.faults.rate_limit_per_second = 2

        async def go() -> None:
            async with PolygonClient.create(
                "key-slow-first",
                base_url=sim.base_url,
                rate_limit=RateLimit(2, 1.0),
                retry=RetryPolicy(attempts=1),
                transport=transport,
            ) as client:
                await asyncio.gather(*(client.market_status_now() for _ in range(4)))

        asyncio.run(go())
        stats = sim.stats.snapshot()
    reset_rate_limiters()
    assert transport.sent == 4 and stats["total"] == 4
    assert stats["rate_limited"] == 0
