"""Pipeline settings: the seed's ten configuration options (seed section 7) plus the fallback tickers.

Two faces of the same options:

- :class:`PipelineSettings` is a plain frozen dataclass with the documented defaults; every value is
  validated when it is built. Pure code (selection, sizing, schedules) takes this.
- :class:`PipelineSettingsResource` is the Dagster resource. Each field is optional: a value set in the
  launchpad (``resources: {settings: {config: {...}}}``) wins, else the field's environment variable
  (``TRADING_DATA_<OPTION>``, read when the run starts), else the documented default.
  :meth:`PipelineSettingsResource.to_settings` merges and validates.

A bad value raises :class:`SettingsError`, whose message names the option and, when the value came from
the environment, the environment variable. In a run, values typed in the launchpad are checked by
pydantic field validators when the resource is built; the merged settings (environment included, and
the rules that relate two options) are checked in ``setup_for_execution``. Either way the run fails
while its resources initialise, before any asset code runs, with the ``SettingsError`` message.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields
from typing import Any

import dagster as dg
from pydantic import Field, field_validator

ENV_PREFIX = "TRADING_DATA_"
TICKER_PATTERN = re.compile(r"^[A-Z][A-Z0-9.\-]{0,9}$")
DEFAULT_TICKERS: tuple[str, ...] = ("SPY", "QQQ", "AAPL", "MSFT", "NVDA")
LOOKBACK_DAYS_MIN = 2
LOOKBACK_DAYS_MAX = 252  # one trading year
_TRUE = {"1", "true", "t", "yes", "y", "on"}
_FALSE = {"0", "false", "f", "no", "n", "off", ""}


class SettingsError(ValueError):
    """A configuration value is invalid; ``option`` names it, ``env_var`` is set when it came from the
    environment."""

    def __init__(self, option: str, problem: str, env_var: str | None = None, raw: object = None):
        self.option = option
        self.problem = problem
        self.env_var = env_var
        where = f"{option} (from {env_var}={raw!r})" if env_var else option
        super().__init__(f"invalid setting {where}: {problem}")


def env_var_name(option: str) -> str:
    """``lookback_days`` -> ``TRADING_DATA_LOOKBACK_DAYS``."""
    return f"{ENV_PREFIX}{option.upper()}"


# --- parsing and per-option rules (shared by the dataclass, the resource and the schedules) ---------


def parse_bool(option: str, value: object) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
        return value.strip().lower() in _TRUE
    raise SettingsError(option, f"must be a boolean (true/false, 1/0, yes/no, on/off), got {value!r}")


def parse_int(option: str, value: object) -> int:
    if isinstance(value, bool):
        raise SettingsError(option, f"must be an integer, got {value!r}")
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        try:
            return int(value.strip().replace("_", ""))
        except ValueError:
            pass
    raise SettingsError(option, f"must be an integer, got {value!r}")


def parse_float(option: str, value: object) -> float:
    if isinstance(value, bool):
        raise SettingsError(option, f"must be a number, got {value!r}")
    number: float | None = None
    if isinstance(value, int | float):
        number = float(value)
    elif isinstance(value, str):
        try:
            number = float(value.strip().replace("_", ""))
        except ValueError:
            number = None
    if number is None or not math.isfinite(number):
        raise SettingsError(option, f"must be a finite number, got {value!r}")
    return number


def parse_tickers(option: str, value: object) -> tuple[str, ...]:
    """A comma-separated string or a list of tickers (items may themselves hold commas).

    Symbols are stripped and upper-cased, blanks dropped, duplicates removed (first wins); each must
    match ``^[A-Z][A-Z0-9.\\-]{0,9}$`` (``BRK.B`` and ``BF-B`` are fine).
    """
    if value is None:
        return ()
    if isinstance(value, str):
        items: Iterable[object] = value.split(",")
    elif isinstance(value, Iterable):
        items = [part for item in value for part in (item.split(",") if isinstance(item, str) else [item])]
    else:
        raise SettingsError(option, f"must be a comma-separated string or a list of tickers, got {value!r}")
    tickers: list[str] = []
    for item in items:
        if not isinstance(item, str):
            raise SettingsError(option, f"tickers must be strings, got {item!r}")
        ticker = item.strip().upper()
        if not ticker:
            continue
        if not TICKER_PATTERN.match(ticker):
            raise SettingsError(
                option,
                f"malformed ticker symbol {item.strip()!r} (expected a letter then up to 9 letters, "
                "digits, '.' or '-')",
            )
        if ticker not in tickers:
            tickers.append(ticker)
    return tuple(tickers)


def _check_range(option: str, value: float, low: float | None, high: float | None) -> None:
    if low is not None and high is not None and not low <= value <= high:
        raise SettingsError(option, f"must be between {low:g} and {high:g}, got {value:g}")
    if low is not None and value < low:
        raise SettingsError(option, f"must be at least {low:g}, got {value:g}")
    if high is not None and value > high:
        raise SettingsError(option, f"must be at most {high:g}, got {value:g}")


# Per-option parse + range rule: option -> (parser, low, high). Cross-option rules are in _validate.
_NUMERIC_RULES: dict[str, tuple[Any, float | None, float | None]] = {
    "lookback_days": (parse_int, LOOKBACK_DAYS_MIN, LOOKBACK_DAYS_MAX),
    "max_active_tickers": (parse_int, 1, None),
    "focus_universe_size": (parse_int, 1, None),
    "min_volume": (parse_float, 0, None),
    "min_volatility": (parse_float, 0, 1),
    "opportunity_threshold": (parse_float, 0, 1),
}
_BOOL_OPTIONS = ("market_hours_only", "strict_validation", "generate_report")
_TICKER_OPTIONS = ("symbols", "default_tickers")


def parse_option(option: str, value: object) -> Any:
    """Parse and check one option on its own (no cross-option rules)."""
    if option in _BOOL_OPTIONS:
        return parse_bool(option, value)
    if option in _TICKER_OPTIONS:
        tickers = parse_tickers(option, value)
        if option == "default_tickers" and not tickers:
            raise SettingsError(option, "needs at least one ticker (it is the fallback when selection fails)")
        return tickers
    if option in _NUMERIC_RULES:
        parser, low, high = _NUMERIC_RULES[option]
        number = parser(option, value)
        _check_range(option, number, low, high)
        return number
    raise SettingsError(option, "unknown option")


@dataclass(frozen=True)
class PipelineSettings:
    """The pipeline's options with their documented defaults; invalid values raise SettingsError."""

    market_hours_only: bool = False
    """Collection schedules skip ticks outside the regular session (09:30 to the close)."""
    symbols: tuple[str, ...] = ()
    """Fixed tickers to collect; empty means dynamic selection (``selected_tickers``)."""
    lookback_days: int = 20
    """Sessions of history loaded for indicators and selection, 2..252."""
    strict_validation: bool = False
    """Fail an asset on any schema violation instead of dropping and counting bad rows."""
    generate_report: bool = True
    """Materialize ``daily_report`` after the close."""
    max_active_tickers: int = 10
    """Tickers selected for active trading each session, at least 1."""
    focus_universe_size: int = 50
    """Tickers scored by selection, at least ``max_active_tickers``."""
    min_volume: float = 1_000_000.0
    """Minimum average daily volume (shares) for selection, at least 0."""
    min_volatility: float = 0.01
    """Minimum volatility as ATR / price for selection, 0..1."""
    opportunity_threshold: float = 0.5
    """Minimum opportunity score for selection, 0..1."""
    default_tickers: tuple[str, ...] = field(default=DEFAULT_TICKERS)
    """Fallback tickers when dynamic selection fails or finds nothing."""

    def __post_init__(self) -> None:
        for f in fields(self):
            object.__setattr__(self, f.name, parse_option(f.name, getattr(self, f.name)))
        if self.max_active_tickers > self.focus_universe_size:
            raise SettingsError(
                "max_active_tickers",
                f"{self.max_active_tickers} is larger than focus_universe_size ({self.focus_universe_size}); "
                "the active tickers are chosen from the focus universe",
            )

    @property
    def dynamic_selection(self) -> bool:
        return not self.symbols

    @classmethod
    def option_names(cls) -> tuple[str, ...]:
        return tuple(f.name for f in fields(cls))

    @classmethod
    def from_values(
        cls, values: Mapping[str, object], env_sources: Mapping[str, str] | None = None
    ) -> PipelineSettings:
        """Build from raw values (strings allowed); ``env_sources`` maps option -> env var it came from,
        so an error can name the variable."""
        env_sources = env_sources or {}
        unknown = set(values) - set(cls.option_names())
        if unknown:
            raise SettingsError(sorted(unknown)[0], "unknown option")
        parsed: dict[str, Any] = {}
        for option, raw in values.items():
            try:
                parsed[option] = parse_option(option, raw)
            except SettingsError as err:
                raise _with_env(err, env_sources, values) from None
        try:
            return cls(**parsed)
        except SettingsError as err:
            raise _with_env(err, env_sources, values) from None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> PipelineSettings:
        """Defaults overridden by any ``TRADING_DATA_<OPTION>`` variable that is set."""
        values, sources = _env_values(os.environ if environ is None else environ)
        return cls.from_values(values, sources)


def _env_values(environ: Mapping[str, str]) -> tuple[dict[str, object], dict[str, str]]:
    values: dict[str, object] = {}
    sources: dict[str, str] = {}
    for option in PipelineSettings.option_names():
        name = env_var_name(option)
        if name in environ:
            values[option] = environ[name]
            sources[option] = name
    return values, sources


def _with_env(
    err: SettingsError, env_sources: Mapping[str, str], values: Mapping[str, object]
) -> SettingsError:
    if err.env_var or err.option not in env_sources:
        return err
    return SettingsError(err.option, err.problem, env_sources[err.option], values.get(err.option))


def _describe(option: str, default: str, text: str) -> str:
    return f"{text} Unset: ${env_var_name(option)} if set, else {default}."


class PipelineSettingsResource(dg.ConfigurableResource):
    """Pipeline options. Each field left unset falls back to its ``TRADING_DATA_<OPTION>`` environment
    variable (read when the run starts), then to the documented default."""

    market_hours_only: bool | None = Field(
        default=None,
        description=_describe("market_hours_only", "false", "Collection ticks outside 09:30-close skip."),
    )
    symbols: list[str] | None = Field(
        default=None,
        description=_describe(
            "symbols", "empty (dynamic selection)", "Fixed tickers (a list, or comma-separated items)."
        ),
    )
    lookback_days: int | None = Field(
        default=None, description=_describe("lookback_days", "20", "Sessions of history, 2..252.")
    )
    strict_validation: bool | None = Field(
        default=None,
        description=_describe("strict_validation", "false", "Fail on any schema violation."),
    )
    generate_report: bool | None = Field(
        default=None, description=_describe("generate_report", "true", "Materialize the daily report.")
    )
    max_active_tickers: int | None = Field(
        default=None,
        description=_describe("max_active_tickers", "10", "Active tickers per session, >= 1."),
    )
    focus_universe_size: int | None = Field(
        default=None,
        description=_describe("focus_universe_size", "50", "Tickers scored, >= max_active_tickers."),
    )
    min_volume: float | None = Field(
        default=None, description=_describe("min_volume", "1000000", "Minimum average volume, >= 0.")
    )
    min_volatility: float | None = Field(
        default=None, description=_describe("min_volatility", "0.01", "Minimum ATR / price, 0..1.")
    )
    opportunity_threshold: float | None = Field(
        default=None,
        description=_describe("opportunity_threshold", "0.5", "Minimum opportunity score, 0..1."),
    )
    default_tickers: list[str] | None = Field(
        default=None,
        description=_describe(
            "default_tickers", ", ".join(DEFAULT_TICKERS), "Fallback tickers when selection fails."
        ),
    )

    @field_validator("*", mode="after")
    @classmethod
    def _check_launchpad_value(cls, value: Any, info: Any) -> Any:
        # Per-option rules on values set in config; env fallbacks and cross-option rules are checked
        # in setup_for_execution / to_settings. Raising ValueError makes pydantic report the message.
        if value is not None and info.field_name in PipelineSettings.option_names():
            parse_option(info.field_name, value)
        return value

    def to_settings(self, environ: Mapping[str, str] | None = None) -> PipelineSettings:
        """Merge config > environment > defaults and validate (raises SettingsError)."""
        env_values, env_sources = _env_values(os.environ if environ is None else environ)
        values: dict[str, object] = dict(env_values)
        for option in PipelineSettings.option_names():
            configured = getattr(self, option)
            if configured is not None:
                values[option] = configured
                env_sources.pop(option, None)
        return PipelineSettings.from_values(values, env_sources)

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        # Fails resource initialisation (so the run, before any asset code) with the SettingsError.
        self.to_settings()
