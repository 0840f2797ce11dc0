"""Rate limit under load (issue 12): 4 OS processes collect at once through the real PolygonClient
against the simulator, whose server-side limit equals the plan, sharing one key's window through
PostgreSQL or Redis. The server refuses nothing and no second holds more than the plan.

Throughput is a timing figure: ``make bench-rate-limit`` measures it. The padding here is 50%, room
for a process stalled up to 500 ms on a loaded machine between its permit and the server counting
the request; the bench uses the default 5%."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator

import pytest

from trading_data.sources.rate_limit import key_fingerprint
from trading_data.sources.rate_limit_store import REDIS_KEY_PREFIX
from trading_data_tests.sources.rate_limit_load import run_load
from trading_data_tests.sources.test_shared_rate_limit import PADDING, REDIS_URL, RUN, redis_or_skip

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
        env={"TRADING_DATA_RATE_LIMIT_PADDING": PADDING},
    )
    assert result.server_refused == 0 and result.client_429s == 0
    assert result.server_max_per_second <= PLAN_PER_SECOND
    assert result.max_in_window(1.0) <= PLAN_PER_SECOND
    # Every page of every worker was fetched, each once.
    assert result.requests == result.server_requests == len(result.grants) >= 4 * 13
