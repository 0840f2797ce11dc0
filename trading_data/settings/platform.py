"""Every setting of the platform besides the pipeline options, each declared once.

Modules ask these objects instead of reading ``os.environ`` (``SCHEMA.get()``, ``DATABASE_URL.is_set()``);
:meth:`Setting.get` reads the environment at call time, blank meaning unset. Settings whose fallback is
computed (the embedded server's URL, the data folder inside the project) default to None here and the
module that owns the fallback applies it.
"""

from __future__ import annotations

import shlex
from typing import Any

from trading_data.clock import NOW_ENV, pinned_now
from trading_data.settings.execution import EXECUTION_SETTINGS
from trading_data.settings.history import HISTORY_SETTINGS
from trading_data.settings.parsing import (
    Choice,
    Setting,
    SettingsError,
    integer,
    number,
    parse_bool,
    parse_int,
    parse_text,
)


def _port(option: str, value: object) -> int:
    try:
        return parse_int(option, value, 1, 65535)
    except SettingsError:
        raise SettingsError(option, "must be a port number (1-65535)") from None


def _per_hour(option: str, value: object) -> int:
    per_hour = parse_int(option, value, low=1)
    if 60 % per_hour:
        raise SettingsError(option, f"must divide 60 (1, 2, 3, 4, 5, 6, 10, 12, …), got {per_hour}")
    return per_hour


def _force(option: str, value: object) -> bool | frozenset[str]:
    """A boolean (every schedule, or none), else a set of schedule names."""
    try:
        return parse_bool(option, value)
    except SettingsError:
        return frozenset(name.strip() for name in str(value).split(",") if name.strip())


def _instant(option: str, value: object) -> Any:
    return pinned_now({NOW_ENV: str(value)})


# --- data sources ----------------------------------------------------------------------------------------

SOURCE_MODES = ("live", "simulated")
SOURCE: Setting[str | None] = Setting(
    "TRADING_DATA_SOURCE",
    None,
    Choice(SOURCE_MODES),
    "Where market data comes from: the vendors, or the offline simulator (`live` without a key fails "
    "the run naming the variable).",
    default_text="live for a vendor whose key is set, else simulated",
)
POLYGON_API_KEY: Setting[str | None] = Setting(
    "POLYGON_API_KEY", None, parse_text, "Polygon API key (read through `dg.EnvVar`).", secret=True
)
POLYGON_BASE_URL = Setting(
    "POLYGON_BASE_URL", "https://api.polygon.io", parse_text, "Polygon's REST base URL."
)
POLYGON_RATE_LIMIT_PER_MINUTE = Setting(
    "POLYGON_RATE_LIMIT_PER_MINUTE", 5, integer(1), "Polygon requests per minute of the plan (free: 5)."
)
UNUSUAL_WHALES_API_TOKEN: Setting[str | None] = Setting(
    "UNUSUAL_WHALES_API_TOKEN",
    None,
    parse_text,
    "Unusual Whales API token (read through `dg.EnvVar`).",
    secret=True,
)
UNUSUAL_WHALES_BASE_URL = Setting(
    "UNUSUAL_WHALES_BASE_URL", "https://api.unusualwhales.com", parse_text, "Unusual Whales' REST base URL."
)
UNUSUAL_WHALES_RATE_LIMIT_PER_MINUTE = Setting(
    "UNUSUAL_WHALES_RATE_LIMIT_PER_MINUTE",
    120,
    integer(1),
    "Unusual Whales requests per minute of the plan (basic: 120).",
)
# Tickers fetched at once (each streams its pages one request at a time). Requests in flight bound
# throughput at concurrency / latency: a vendor request takes ~100 ms end to end (network plus the
# vendor's time), so a plan's 100 requests/s needs ~10 in flight, where the old default of 4 capped a
# run near 40/s. 8 gives ~80/s at 100 ms and the full 100/s at up to 80 ms while bounding the pages
# held in memory (up to 50,000 rows each); the shared rate limiter, not this, keeps us within the plan.
MAX_CONCURRENCY = Setting(
    "TRADING_DATA_MAX_CONCURRENCY", 8, integer(1), "Tickers fetched at once per vendor step."
)
SIMULATOR_URL: Setting[str | None] = Setting(
    "TRADING_DATA_SIMULATOR_URL",
    None,
    parse_text,
    "An out-of-process simulator (`trading-data simulator serve`) to call in simulated mode.",
    default_text="unset: the simulator runs in-process",
)
RATE_LIMIT_STORES = ("auto", "process", "postgres", "redis")
RATE_LIMIT_STORE = Setting(
    "TRADING_DATA_RATE_LIMIT_STORE",
    "auto",
    Choice(RATE_LIMIT_STORES),
    "Where each vendor key's rate-limit window lives: `process` (one process only), `postgres` (the "
    "market database) or `redis` (TRADING_DATA_REDIS_URL), shared by every process and host.",
    option="rate_limit_store",
    default_text="auto: redis when TRADING_DATA_REDIS_URL is set, else postgres, for a live vendor; "
    "process for the simulator",
)
RATE_LIMIT_PADDING = Setting(
    "TRADING_DATA_RATE_LIMIT_PADDING",
    0.01,
    number(0, 1),
    "How much longer the client-side window is than the plan's (0.01: 1%): room for the vendor's clock "
    "running faster than the store's or counting coarser, at the cost of that share of throughput.",
)
REDIS_URL: Setting[str | None] = Setting(
    "TRADING_DATA_REDIS_URL",
    None,
    parse_text,
    "A Redis server (redis://host:6379/0) holding the shared rate-limit windows.",
    default_text="unset: the windows live in PostgreSQL",
    secret=True,
)

# --- databases -------------------------------------------------------------------------------------------

DATABASE_URL: Setting[str | None] = Setting(
    "TRADING_DATA_DATABASE_URL",
    None,
    parse_text,
    "The market-data database (read through `dg.EnvVar`: it may hold a password).",
    default_text="the embedded server (`trading-data db start`), database `trading_data`",
)
DAGSTER_DATABASE_URL: Setting[str | None] = Setting(
    "TRADING_DATA_DAGSTER_DATABASE_URL",
    None,
    parse_text,
    "Dagster's instance storage (runs, events, schedules).",
    default_text="a `dagster` database on the market data's server",
)
DAGSTER_PG_URL: Setting[str | None] = Setting(
    "TRADING_DATA_DAGSTER_PG_URL",
    None,
    parse_text,
    "The older name of TRADING_DATA_DAGSTER_DATABASE_URL, still read (both set: they must agree).",
)
SCHEMA = Setting(
    "TRADING_DATA_SCHEMA",
    "market",
    parse_text,
    "The PostgreSQL schema of the market tables: a plain lower-case identifier, no system schema or "
    "reserved word (checked by `trading_data.db.migrate.validate_schema_name`).",
    option="schema",
)
STORAGE_MODES = ("auto", "postgres", "timescaledb")
STORAGE_MODE = Setting(
    "TRADING_DATA_STORAGE_MODE",
    "auto",
    Choice(STORAGE_MODES),
    "TimescaleDB hypertables when the extension loads (auto), never (postgres), or required (timescaledb).",
    option="storage_mode",
)
PG_PORT = Setting("TRADING_DATA_PG_PORT", 54329, _port, "The embedded PostgreSQL server's port (1-65535).")
PGDATA: Setting[str | None] = Setting(
    "TRADING_DATA_PGDATA",
    None,
    parse_text,
    "The embedded PostgreSQL server's data folder.",
    default_text="`.pgdata` in the project",
)


PG_OPTIONS_EXAMPLE = "-c shared_preload_libraries=timescaledb"


def _server_options(option: str, value: object) -> str:
    text = str(value).strip()
    try:
        shlex.split(text)
    except ValueError as err:
        raise SettingsError(
            option, f"must be postgres command-line options, e.g. {PG_OPTIONS_EXAMPLE} ({err})"
        ) from None
    return text


PG_SERVER_OPTIONS: Setting[str | None] = Setting(
    "TRADING_DATA_PG_SERVER_OPTIONS",
    None,
    _server_options,
    "Extra options of the embedded server's `postgres` command, e.g. "
    f"`{PG_OPTIONS_EXAMPLE}` for an installed TimescaleDB; read by `trading-data db start`, so a "
    "running server takes them after `trading-data db stop`.",
    default_text="none",
)

# --- runs and schedules ----------------------------------------------------------------------------------

STEP_RETRY_DELAY_SECONDS = Setting(
    "TRADING_DATA_STEP_RETRY_DELAY_SECONDS",
    20.0,
    number(0),
    "Base delay of a vendor step's retries (exponential: about 1, 3 and 7 times it); read when the "
    "definitions load.",
)
POOL_POLYGON = Setting(
    "TRADING_DATA_POOL_POLYGON",
    3,
    integer(0),
    "Steps calling Polygon at once across all runs (`trading-data dev`).",
)
POOL_UNUSUAL_WHALES = Setting(
    "TRADING_DATA_POOL_UNUSUAL_WHALES",
    2,
    integer(0),
    "Steps calling Unusual Whales at once across all runs (`trading-data dev`).",
)
# Per-vendor concurrency pools (assets declare pool="polygon" / "unusual_whales").
POOL_LIMITS: dict[str, Setting[int]] = {"polygon": POOL_POLYGON, "unusual_whales": POOL_UNUSUAL_WHALES}
FORCE: Setting[bool | frozenset[str]] = Setting(
    "TRADING_DATA_FORCE",
    False,
    _force,
    "Run ticks the market-hours rules would skip: `true` for every schedule, or a comma-separated list "
    "of schedule names.",
)
NOW: Setting[Any] = Setting(
    NOW_ENV,
    None,
    _instant,
    "Pins the platform's clock (`trading_data.clock.utc_now`) to an ISO 8601 instant with an offset, "
    "e.g. 2026-12-01T14:09:00-05:00.",
    default_text="unset: the system clock",
)

# --- monitoring ------------------------------------------------------------------------------------------

ALERT_WEBHOOK: Setting[str | None] = Setting(
    "TRADING_DATA_ALERT_WEBHOOK",
    None,
    parse_text,
    "Slack-compatible webhook the run-failure sensor posts to.",
    default_text="unset: failures are logged",
    secret=True,
)
BURST_VOLATILITY = Setting(
    "TRADING_DATA_BURST_VOLATILITY",
    1.0,
    number(positive=True),
    "Annualized 15-minute realized volatility at which a ticker bursts (extra quotes/trades runs).",
)
BURST_VOLUME_RATIO = Setting(
    "TRADING_DATA_BURST_VOLUME_RATIO",
    3.0,
    number(positive=True),
    "Window volume per minute / session volume per minute at which a ticker bursts.",
)
BURST_MAX_PER_HOUR = Setting(
    "TRADING_DATA_BURST_MAX_PER_HOUR", 4, _per_hour, "Extra burst runs per job per hour (divides 60)."
)

PLATFORM_SETTINGS: dict[str, tuple[Setting[Any], ...]] = {
    "Data sources": (
        SOURCE,
        POLYGON_API_KEY,
        POLYGON_BASE_URL,
        POLYGON_RATE_LIMIT_PER_MINUTE,
        UNUSUAL_WHALES_API_TOKEN,
        UNUSUAL_WHALES_BASE_URL,
        UNUSUAL_WHALES_RATE_LIMIT_PER_MINUTE,
        MAX_CONCURRENCY,
        SIMULATOR_URL,
        RATE_LIMIT_STORE,
        RATE_LIMIT_PADDING,
        REDIS_URL,
    ),
    "Databases": (
        DATABASE_URL,
        DAGSTER_DATABASE_URL,
        DAGSTER_PG_URL,
        SCHEMA,
        STORAGE_MODE,
        PG_PORT,
        PGDATA,
        PG_SERVER_OPTIONS,
    ),
    "Runs and schedules": (STEP_RETRY_DELAY_SECONDS, POOL_POLYGON, POOL_UNUSUAL_WHALES, FORCE, NOW),
    "Monitoring": (ALERT_WEBHOOK, BURST_VOLATILITY, BURST_VOLUME_RATIO, BURST_MAX_PER_HOUR),
    "Execution": EXECUTION_SETTINGS,
    "History and retention": HISTORY_SETTINGS,
}
"""The platform settings by topic, in the README's order."""
SECRET_SETTINGS: tuple[Setting[Any], ...] = tuple(
    s for group in PLATFORM_SETTINGS.values() for s in group if s.secret
)
