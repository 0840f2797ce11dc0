"""Source configuration from the environment.

| variable | default |
|---|---|
| ``POLYGON_API_KEY`` / ``UNUSUAL_WHALES_API_TOKEN`` | unset |
| ``POLYGON_BASE_URL`` | ``https://api.polygon.io`` |
| ``UNUSUAL_WHALES_BASE_URL`` | ``https://api.unusualwhales.com`` |
| ``TRADING_DATA_SOURCE`` | ``live`` for a vendor whose key is set, else ``simulated`` |
| ``POLYGON_RATE_LIMIT_PER_MINUTE`` | 5 (free plan) |
| ``UNUSUAL_WHALES_RATE_LIMIT_PER_MINUTE`` | 120 (basic plan) |
| ``TRADING_DATA_MAX_CONCURRENCY`` | 8 (tickers fetched at once; see ``DEFAULT_MAX_CONCURRENCY``) |
| ``TRADING_DATA_SIMULATOR_URL`` | unset: the simulator runs in-process; set: an out-of-process simulator |

Keys are held in fields excluded from ``repr`` and are never logged.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from trading_data.settings import RUN_CONFIG, ConfigurationError, SettingsError, env_setting, parse_int
from trading_data.sources import polygon, unusual_whales
from trading_data.sources.rate_limit import RateLimit

log = logging.getLogger(__name__)

SOURCE_ENV = "TRADING_DATA_SOURCE"
MAX_CONCURRENCY_ENV = "TRADING_DATA_MAX_CONCURRENCY"
Mode = Literal["live", "simulated"]
MODES: tuple[Mode, ...] = ("live", "simulated")
SIMULATED_RATE_LIMIT = RateLimit(100_000, 60.0)
SIMULATOR_BASE_URL = "http://simulator.invalid"
_logged_simulated: set[str] = set()
# Tickers fetched at once (each streams its pages one request at a time). Requests in flight bound
# throughput at concurrency / latency: a vendor request takes ~100 ms end to end (network plus the
# vendor's time), so a plan's 100 requests/s needs ~10 in flight, where the old default of 4 capped a
# run near 40/s. 8 gives ~80/s at 100 ms and the full 100/s at up to 80 ms while bounding the pages
# held in memory (up to 50,000 rows each); the shared rate limiter, not this, keeps us within the plan.
DEFAULT_MAX_CONCURRENCY = 8


@dataclass(frozen=True)
class VendorSettings:
    vendor: str
    env_var: str
    mode: Mode
    api_key: str | None = field(repr=False)
    base_url: str
    live_rate_limit: RateLimit

    @property
    def rate_limit(self) -> RateLimit:
        """The plan's limit when live; a high limit against the simulator."""
        return self.live_rate_limit if self.mode == "live" else SIMULATED_RATE_LIMIT

    def require_key(self) -> str:
        """The key for live mode; raises naming the variable to set when it is missing."""
        if not self.api_key:
            raise ConfigurationError(
                f"{self.vendor}: {SOURCE_ENV}=live but {self.env_var} is not set; "
                f"set {self.env_var} or use {SOURCE_ENV}=simulated"
            )
        return self.api_key


def parse_mode(value: str | None, *, has_key: bool, source: str = SOURCE_ENV) -> Mode:
    """``live``/``simulated`` (any case); unset or blank: live iff the vendor's key is set.
    ``source`` names where ``value`` came from (the variable, or the run config) for the error."""
    if value is None or not value.strip():
        return "live" if has_key else "simulated"
    mode = value.strip().lower()
    if mode not in MODES:
        option = SOURCE_ENV if source == SOURCE_ENV else "source"
        raise SettingsError(option, "must be 'live' or 'simulated'").located(source, value)
    return "live" if mode == "live" else "simulated"


def positive_int(option: str, value: object) -> int:
    return parse_int(option, value, low=1)


def config_positive_int(option: str, value: int | None) -> int | None:
    """A resource field that must be >= 1 when set; errors name the run config as the source."""
    if value is None:
        return None
    try:
        return positive_int(option, value)
    except SettingsError as err:
        raise err.located(RUN_CONFIG, value) from None


def log_simulated_once(missing: list[str]) -> None:
    """Log, once per process and set of variables, that the simulator replaces the vendors."""
    key = "/".join(missing)
    if key and key not in _logged_simulated:
        _logged_simulated.add(key)
        log.warning("no %s set: using the offline market simulator", key)


@dataclass(frozen=True)
class SourceSettings:
    polygon: VendorSettings
    unusual_whales: VendorSettings
    max_concurrency: int = DEFAULT_MAX_CONCURRENCY
    simulator_url: str | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> SourceSettings:
        env = os.environ if env is None else env
        source = env.get(SOURCE_ENV)
        poly_key = env.get(polygon.ENV_VAR) or None
        uw_key = env.get(unusual_whales.ENV_VAR) or None
        poly_mode = parse_mode(source, has_key=bool(poly_key))
        uw_mode = parse_mode(source, has_key=bool(uw_key))
        settings = cls(
            polygon=VendorSettings(
                vendor=polygon.VENDOR,
                env_var=polygon.ENV_VAR,
                mode=poly_mode,
                api_key=poly_key,
                base_url=env.get("POLYGON_BASE_URL") or polygon.DEFAULT_BASE_URL,
                live_rate_limit=RateLimit.per_minute(
                    env_setting(env, "POLYGON_RATE_LIMIT_PER_MINUTE", 5, positive_int)
                ),
            ),
            unusual_whales=VendorSettings(
                vendor=unusual_whales.VENDOR,
                env_var=unusual_whales.ENV_VAR,
                mode=uw_mode,
                api_key=uw_key,
                base_url=env.get("UNUSUAL_WHALES_BASE_URL") or unusual_whales.DEFAULT_BASE_URL,
                live_rate_limit=RateLimit.per_minute(
                    env_setting(env, "UNUSUAL_WHALES_RATE_LIMIT_PER_MINUTE", 120, positive_int)
                ),
            ),
            max_concurrency=env_setting(env, MAX_CONCURRENCY_ENV, DEFAULT_MAX_CONCURRENCY, positive_int),
            simulator_url=env.get("TRADING_DATA_SIMULATOR_URL") or None,
        )
        missing = [
            v.env_var
            for v in (settings.polygon, settings.unusual_whales)
            if v.mode == "simulated" and not v.api_key
        ]
        log_simulated_once(missing)
        return settings
