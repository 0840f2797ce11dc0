"""Where a vendor account's rate-limit window lives, so that every process and host sharing the account
waits on the same window (DESIGN.md decision 14).

=========== ===================================================================================
store       the window
=========== ===================================================================================
``process`` a pyrate-limiter ``InMemoryBucket`` in this process: right for one process only
``postgres`` a pyrate-limiter ``PostgresBucket``: table ``<schema>.ratelimit___<vendor>_<key hash>``
            in the market database, every grant decided and stamped under a table lock, on the
            database's clock (:mod:`trading_data.db.rate_limit_bucket`)
``redis``   a pyrate-limiter ``RedisBucket``: sorted set ``trading_data:rate_limit:<vendor>:<key hash>``,
            every grant decided by one Lua script, on the Redis server's clock (``TIME``)
=========== ===================================================================================

Every store counts a permit from the moment its request *finished*, not from its grant
(:class:`~trading_data.sources.in_flight.InFlightWindow`): a granted permit is stored as in flight
(stamped ``IN_FLIGHT_HOLD_MS`` ahead) and :meth:`SettlingBucket.settle` re-stamps it with the
store's clock once the response is in. The vendor counts a request when it arrives, at some moment between its grant and its
response that the client cannot know (network, event loop and server delays vary); a window that
starts at the response is the earliest start that is never before the vendor's, so the
``limit + 1``-th request always arrives more than a window after the first, whatever the delays and
whichever process or host sent them. Stamping both ends with the store's one clock keeps hosts'
clocks out of it.

``TRADING_DATA_RATE_LIMIT_STORE=auto`` (the default) picks ``redis`` when ``TRADING_DATA_REDIS_URL``
is set, else ``postgres``, for a live vendor; the simulator's nominal limit stays in the process.
A store that cannot be reached fails at once with one sentence (:class:`RateLimitStoreUnavailable`),
after at most ``CONNECT_TIMEOUT_SECONDS``.
"""

from __future__ import annotations

import logging
import time
from bisect import insort
from dataclasses import dataclass, field
from operator import attrgetter
from typing import Any, Literal, Protocol, cast, runtime_checkable

from pyrate_limiter import AbstractBucket, InMemoryBucket, Rate, RateItem, RedisBucket
from pyrate_limiter.abstracts.algorithm import ADMITTED, Decision

from trading_data.db.migrate import validate_schema_name
from trading_data.db.url import market_database_url
from trading_data.errors import ConfigurationError
from trading_data.redact import redact
from trading_data.settings import RUN_CONFIG
from trading_data.settings import platform as settings
from trading_data.sources.in_flight import IN_FLIGHT_HOLD_MS, IN_FLIGHT_WINDOW

log = logging.getLogger(__name__)

StoreKind = Literal["process", "postgres", "redis"]
CONNECT_TIMEOUT_SECONDS = 5
REDIS_KEY_PREFIX = "trading_data:rate_limit"
# A window needs three connections at most: the grant (under the async lock, one at a time), the
# settling of a finished request, and the library's leak thread.
POOL_MAX_SIZE = 3


@runtime_checkable
class SettlingBucket(Protocol):
    """A bucket whose permits are stored as in flight until :meth:`settle` re-stamps them."""

    def settle(self, name: str) -> None:
        """Re-stamp permit ``name`` with the store's clock now (re-adding it if it was leaked)."""


class InFlightMemoryBucket(InMemoryBucket):
    """pyrate-limiter's ``InMemoryBucket`` with in-flight permits (see the module docstring).

    The library keeps ``items`` sorted by stamp; an in-flight stamp (now + hold) is the newest, so
    it stays at the end, and a settled one is re-inserted in order."""

    def __init__(self, rates: list[Rate]):
        super().__init__(rates, algorithm=IN_FLIGHT_WINDOW)

    def put(self, item: RateItem) -> bool:
        with self._lock:
            if not super().put(item):
                return False
            if item.weight:
                assert item.weight == 1, "permits are taken one at a time"
                self.items[-1] = RateItem(item.name, item.timestamp + IN_FLIGHT_HOLD_MS)
            return True

    def settle(self, name: str) -> None:
        with self._lock:
            for index in range(len(self.items) - 1, -1, -1):
                if self.items[index].name == name:
                    del self.items[index]
                    break
            # Rounded up to the millisecond (the clock's own ms round down): never earlier than now.
            settled = -(-time.monotonic_ns() // 1_000_000)
            insort(self.items, RateItem(name, settled), key=attrgetter("timestamp"))


class RateLimitStoreUnavailable(RuntimeError):
    """The shared rate-limit store cannot be reached (or used); the message says which and how to fix."""


@dataclass(frozen=True)
class RateLimitStore:
    """Where a limiter's window lives (see the module docstring). ``url`` may hold a password: it is
    kept out of ``repr`` and shown only through :meth:`describe`."""

    kind: StoreKind = "process"
    url: str | None = field(default=None, repr=False)
    schema: str = "market"

    def __post_init__(self) -> None:
        if self.kind != "process" and not self.url:
            raise ValueError(f"a {self.kind} rate-limit store needs a URL")

    def describe(self) -> str:
        if self.kind == "process":
            return "this process"
        where = redact(self.url or "")
        return f"PostgreSQL {where} (schema {self.schema})" if self.kind == "postgres" else f"Redis {where}"


PROCESS = RateLimitStore()


def resolve_store(live: bool, choice: str | None = None) -> RateLimitStore:
    """The store for a vendor: ``choice`` (run config) or ``TRADING_DATA_RATE_LIMIT_STORE``; ``auto``
    means Redis when ``TRADING_DATA_REDIS_URL`` is set, else PostgreSQL, for a ``live`` vendor and
    the process for the simulator."""
    if choice:
        kind = settings.RATE_LIMIT_STORE.parse_value(choice, RUN_CONFIG)
    else:
        kind = settings.RATE_LIMIT_STORE.get()
    redis_url = settings.REDIS_URL.get()
    if kind == "auto":
        kind = ("redis" if redis_url else "postgres") if live else "process"
    if kind == "process":
        return PROCESS
    if kind == "redis":
        if not redis_url:
            raise ConfigurationError(
                f"{settings.RATE_LIMIT_STORE.env_var}=redis needs {settings.REDIS_URL.env_var}; "
                "set it to the Redis server's URL (redis://host:6379/0)"
            )
        return RateLimitStore("redis", redis_url)
    return RateLimitStore("postgres", market_database_url(), validate_schema_name(settings.SCHEMA.get()))


def build_bucket(store: RateLimitStore, vendor: str, fingerprint: str, rates: list[Rate]) -> AbstractBucket:
    """A pyrate-limiter bucket for the window of ``vendor``'s key ``fingerprint`` in ``store``."""
    if store.kind == "process":
        return InFlightMemoryBucket(rates)
    try:
        if store.kind == "postgres":
            return _postgres_bucket(store, f"{vendor}_{fingerprint}", rates)
        return _redis_bucket(store, f"{REDIS_KEY_PREFIX}:{vendor}:{fingerprint}", rates)
    except RateLimitStoreUnavailable:
        raise
    except Exception as exc:
        raise unavailable(store, exc) from exc


def unavailable(store: RateLimitStore, exc: BaseException) -> RateLimitStoreUnavailable:
    """The one-sentence error for a store that failed (``exc`` redacted, on one line)."""
    detail = redact(" ".join(str(exc).split()), [store.url or ""]) or type(exc).__name__
    fix = (
        "start it (`trading-data db start`) or set TRADING_DATA_DATABASE_URL"
        if store.kind == "postgres"
        else f"start it or correct {settings.REDIS_URL.env_var}"
    )
    return RateLimitStoreUnavailable(
        f"the shared rate limit cannot use {store.describe()} ({type(exc).__name__}: {detail}); {fix}, "
        f"or set {settings.RATE_LIMIT_STORE.env_var}=process when a single process calls the vendor"
    )


def _postgres_bucket(store: RateLimitStore, name: str, rates: list[Rate]) -> AbstractBucket:
    from psycopg_pool import ConnectionPool

    from trading_data.db.rate_limit_bucket import LockStampedPostgresBucket

    assert store.url is not None
    refused = _connect_error(store)  # a server that is down fails here at once, with its own error
    if refused is not None:
        raise unavailable(store, refused)
    # TimeZone=UTC: the library stores TIMESTAMP (no zone) converted with the session's zone, so every
    # process must use the same one or their windows would be hours apart.
    kwargs: dict[str, Any] = {
        "connect_timeout": CONNECT_TIMEOUT_SECONDS,
        "options": f"-c search_path={store.schema} -c TimeZone=UTC",
    }
    pool = ConnectionPool(
        store.url,
        min_size=1,
        max_size=POOL_MAX_SIZE,
        kwargs=kwargs,
        timeout=CONNECT_TIMEOUT_SECONDS,
        open=False,
        name=f"rate-limit-{name}",
        reconnect_timeout=CONNECT_TIMEOUT_SECONDS,
    )
    try:
        pool.open(wait=True, timeout=CONNECT_TIMEOUT_SECONDS)
        return LockStampedPostgresBucket(pool, name, rates)
    except Exception as exc:
        pool.close(timeout=1)
        raise unavailable(store, exc) from exc


def _connect_error(store: RateLimitStore) -> BaseException | None:
    import psycopg

    try:
        psycopg.connect(store.url or "", connect_timeout=CONNECT_TIMEOUT_SECONDS).close()
    except psycopg.Error as exc:
        return exc
    return None


def _redis_bucket(store: RateLimitStore, key: str, rates: list[Rate]) -> AbstractBucket:
    from redis import Redis

    client = Redis.from_url(
        store.url or "",
        socket_connect_timeout=CONNECT_TIMEOUT_SECONDS,
        socket_timeout=CONNECT_TIMEOUT_SECONDS,
    )
    client.ping()  # fail here, in one sentence, rather than at the first request
    return InFlightRedisBucket(rates, client, key)


# Whole milliseconds of the Redis server's clock, rounded down (a decision) or up (a settled permit),
# so rounding can only make the measured gap between them shorter than the real one. Before Redis 7
# a script must ask for effects replication to write after reading TIME.
_REDIS_NOW = """
if redis.replicate_commands then redis.replicate_commands() end
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + math.{rounding}(tonumber(clock[2]) / 1000)
"""

# pyrate-limiter's put script (4.5.1), changed in three ways:
# * ``now`` is the Redis server's TIME, not the caller's stamp: one clock for every host (the library
#   leaves the clock to the callers' hosts);
# * a window counts every permit stamped after its start up to '+inf', not up to the caller's stamp:
#   the library's ``ZCOUNT bucket window_start now`` let a caller stamped a moment before other
#   processes' permits landed miss them and go past the limit (5 within 3 ms at 4 a second from 3
#   processes), and in-flight permits are stamped in the future;
# * a granted permit is stored in flight, ``hold`` ms ahead, under its caller's unique name.
# ARGV: weight, name, hold, rates, then per rate: interval, limit, blocking rank (the algorithm's
# ``blocking_offset``; < 0 for none). Returns {failing rate index or -1, blocking stamp or -1, now}.
_REDIS_PUT = (
    _REDIS_NOW.format(rounding="floor")
    + """
local bucket = KEYS[1]
local weight = tonumber(ARGV[1])
local rates_count = tonumber(ARGV[4])
for i = 1, rates_count do
    local offset = (i - 1) * 3
    local window_start = now - tonumber(ARGV[5 + offset])
    local limit = tonumber(ARGV[6 + offset])
    local blocking_rank = tonumber(ARGV[7 + offset])
    local count = redis.call('ZCOUNT', bucket, window_start, '+inf')
    if limit - tonumber(count) < weight then
        local blocking_timestamp = -1
        if blocking_rank >= 0 then
            local blocking = redis.call('ZRANGE', bucket, -1 - blocking_rank, -1 - blocking_rank, 'WITHSCORES')
            if blocking[2] then
                blocking_timestamp = tonumber(blocking[2])
            end
        end
        return {i - 1, blocking_timestamp, now}
    end
end
redis.call('ZADD', bucket, now + tonumber(ARGV[3]), ARGV[2])
return {-1, -1, now}
"""
)

# Re-stamp a permit with the server's clock now (re-adding it if the leak removed it).
_REDIS_SETTLE = (
    _REDIS_NOW.format(rounding="ceil")
    + """
redis.call('ZADD', KEYS[1], now, ARGV[1])
return now
"""
)


class InFlightRedisBucket(RedisBucket):
    """pyrate-limiter's ``RedisBucket`` on the Redis server's clock, with in-flight permits (see the
    module docstring and ``_REDIS_PUT``)."""

    def __init__(self, rates: list[Rate], client: Any, key: str):
        super().__init__(rates, client, key, str(client.script_load(_REDIS_PUT)), algorithm=IN_FLIGHT_WINDOW)
        self._settle_hash = str(client.script_load(_REDIS_SETTLE))

    def now(self) -> int:
        # The leak thread drops permits older than now minus the window: on a host whose clock runs
        # ahead of the others, its own clock would drop permits still inside theirs.
        seconds, micros = cast(tuple[int, int], self.redis.time())  # a sync client
        return int(seconds) * 1000 + int(micros) // 1000

    def _check_and_insert(self, item: RateItem) -> Decision:
        assert item.weight == 1, "permits are taken one at a time"
        args: list[Any] = [item.weight, item.name, IN_FLIGHT_HOLD_MS, len(self.rates)]
        for rate in self.rates:
            offset = self._algorithm.blocking_offset(rate, item.weight)
            args.extend((rate.interval, rate.limit, -1 if offset is None else offset))
        reply = cast(list[Any], self.redis.evalsha(self.script_hash, 1, self.bucket_key, *args))
        failing, blocking, now = (int(v) for v in reply)
        item.timestamp = now  # the decision's time on the server's clock: waits are measured from it
        if failing < 0:
            return ADMITTED
        rate = self.rates[failing]
        return Decision(
            failing_rate=rate,
            retry_after_ms=self._algorithm.retry_after(rate, now, blocking if blocking >= 0 else None),
        )

    def settle(self, name: str) -> None:
        self.redis.evalsha(self._settle_hash, 1, self.bucket_key, name)


def store_errors() -> tuple[type[BaseException], ...]:
    """The exceptions a shared store raises when it fails mid-run (imported lazily: the clients load
    only where a shared store is used)."""
    import psycopg
    import psycopg_pool
    import redis

    return (psycopg.Error, psycopg_pool.PoolTimeout, redis.RedisError, OSError)
