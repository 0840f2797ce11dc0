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
            every grant decided by one Lua script, on the callers' wall clocks (keep hosts on NTP)
=========== ===================================================================================

``TRADING_DATA_RATE_LIMIT_STORE=auto`` (the default) picks ``redis`` when ``TRADING_DATA_REDIS_URL``
is set, else ``postgres``, for a live vendor; the simulator's nominal limit stays in the process.
A store that cannot be reached fails at once with one sentence (:class:`RateLimitStoreUnavailable`),
after at most ``CONNECT_TIMEOUT_SECONDS``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, Literal

from pyrate_limiter import AbstractBucket, InMemoryBucket, Rate, RedisBucket

from trading_data.db.migrate import validate_schema_name
from trading_data.db.url import market_database_url
from trading_data.errors import ConfigurationError
from trading_data.redact import redact
from trading_data.settings import RUN_CONFIG
from trading_data.settings import platform as settings

log = logging.getLogger(__name__)

StoreKind = Literal["process", "postgres", "redis"]
CONNECT_TIMEOUT_SECONDS = 5
REDIS_KEY_PREFIX = "trading_data:rate_limit"
# A window needs two connections at most: the grant (under the async lock, one at a time) and the
# library's leak thread.
POOL_MAX_SIZE = 2


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
        return InMemoryBucket(rates)
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
    return RedisBucket(rates, client, key, str(client.script_load(_redis_put_script())))


def _redis_put_script() -> str:
    """pyrate-limiter's put script, counting a window's permits up to any stamp, not the caller's own.

    The library counts ``ZCOUNT bucket window_start now`` with ``now`` the caller's stamp: a caller
    stamped a moment before other processes' permits landed does not see them and goes past the limit
    (seen: 5 permits within 3 ms at 4 a second from 3 processes). Every permit stamped after the
    window's start is in the window, whoever stamped it later."""
    from pyrate_limiter.buckets.redis_bucket import LuaScript

    own_stamp = "redis.call('ZCOUNT', bucket, window_start, now)"
    if own_stamp not in LuaScript.PUT_ITEM:
        raise RuntimeError("pyrate-limiter's Redis put script changed: review _redis_put_script")
    return LuaScript.PUT_ITEM.replace(own_stamp, "redis.call('ZCOUNT', bucket, window_start, '+inf')")


def store_errors() -> tuple[type[BaseException], ...]:
    """The exceptions a shared store raises when it fails mid-run (imported lazily: the clients load
    only where a shared store is used)."""
    import psycopg
    import psycopg_pool
    import redis

    return (psycopg.Error, psycopg_pool.PoolTimeout, redis.RedisError, OSError)
