"""The vendor sources' settings, read from the settings declared in :mod:`trading_data.settings.platform`
(the vendor keys and base URLs, ``TRADING_DATA_SOURCE``, the plans' rate limits,
``TRADING_DATA_MAX_CONCURRENCY``, ``TRADING_DATA_SIMULATOR_URL``; the README lists them).

Keys are held in fields excluded from ``repr`` and are never logged.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal, cast

from trading_data.settings import (
    RUN_CONFIG,
    ConfigurationError,
    PipelineSettings,
    SettingsError,
    parse_int,
)
from trading_data.settings import platform as settings
from trading_data.sources.rate_limit import RateLimit

log = logging.getLogger(__name__)

SOURCE_ENV = settings.SOURCE.env_var
MAX_CONCURRENCY_ENV = settings.MAX_CONCURRENCY.env_var
Mode = Literal["live", "simulated"]
MODES: tuple[Mode, ...] = cast(tuple[Mode, ...], settings.SOURCE_MODES)
SIMULATED_RATE_LIMIT = RateLimit(100_000, 60.0)
SIMULATOR_BASE_URL = "http://simulator.invalid"
DEFAULT_MAX_CONCURRENCY = settings.MAX_CONCURRENCY.default
_logged_simulated: set[str] = set()


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
    option = SOURCE_ENV if source == SOURCE_ENV else "source"
    try:
        mode = settings.SOURCE.parse(option, value)
    except SettingsError as err:
        raise err.located(source, value) from None
    return "live" if mode == "live" else "simulated"


def env_mode(has_key: bool, environ: Mapping[str, str] | None = None) -> Mode:
    """``TRADING_DATA_SOURCE`` from the environment; unset or blank: live iff the vendor's key is set."""
    return parse_mode(settings.SOURCE.raw(environ), has_key=has_key)


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
        # The vendors' modules import their HTTP clients: here, not at module level, so that a definitions
        # load does without them (issue 11).
        from trading_data.sources import polygon, unusual_whales

        poly_key = settings.POLYGON_API_KEY.raw(env)
        uw_key = settings.UNUSUAL_WHALES_API_TOKEN.raw(env)
        result = cls(
            polygon=VendorSettings(
                vendor=polygon.VENDOR,
                env_var=settings.POLYGON_API_KEY.env_var,
                mode=env_mode(bool(poly_key), env),
                api_key=poly_key,
                base_url=settings.POLYGON_BASE_URL.get(env),
                live_rate_limit=RateLimit.per_minute(settings.POLYGON_RATE_LIMIT_PER_MINUTE.get(env)),
            ),
            unusual_whales=VendorSettings(
                vendor=unusual_whales.VENDOR,
                env_var=settings.UNUSUAL_WHALES_API_TOKEN.env_var,
                mode=env_mode(bool(uw_key), env),
                api_key=uw_key,
                base_url=settings.UNUSUAL_WHALES_BASE_URL.get(env),
                live_rate_limit=RateLimit.per_minute(settings.UNUSUAL_WHALES_RATE_LIMIT_PER_MINUTE.get(env)),
            ),
            max_concurrency=settings.MAX_CONCURRENCY.get(env),
            simulator_url=settings.SIMULATOR_URL.get(env),
        )
        missing = [
            v.env_var
            for v in (result.polygon, result.unusual_whales)
            if v.mode == "simulated" and not v.api_key
        ]
        log_simulated_once(missing)
        return result


def check_environment(environ: Mapping[str, str] | None = None) -> None:
    """Validate the pipeline options and the vendor sources' settings in the environment; raises the
    first ConfigurationError."""
    PipelineSettings.from_env(environ)
    SourceSettings.from_env(environ)
