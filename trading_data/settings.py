"""Pipeline settings: the seed's ten configuration options (seed section 7) plus the fallback tickers.

Two faces of the same options:

- :class:`PipelineSettings` is a plain frozen dataclass with the documented defaults; every value is
  validated when it is built. Pure code (selection, sizing, schedules) takes this.
- :class:`PipelineSettingsResource` is the Dagster resource. Each field is optional: a value set in the
  run config (the launchpad's ``resources: {settings: {config: {...}}}``) wins, else the field's
  environment variable (``TRADING_DATA_<OPTION>``, read when the run starts; blank means unset), else
  the documented default. :func:`resolve_settings` merges and validates.

A bad value raises :class:`SettingsError` (a :class:`ConfigurationError`), one sentence naming the
option, its value and where it came from (the variable, or the run config). In a run, the platform's
executor (``trading_data.defs.executor``) checks the merged settings before any step runs, so the run
fails at once with that sentence and is retried neither by the step's RetryPolicy nor as a run. This
module also holds the platform's one set of value parsers (``parse_int``, ``parse_float``,
``parse_bool``, ``parse_tickers``, ``env_setting``); the vendor settings use them too.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, fields
from typing import Any, TypeVar

import dagster as dg
from pydantic import Field, field_validator

from trading_data.errors import ConfigurationError

ENV_PREFIX = "TRADING_DATA_"
TICKER_PATTERN = re.compile(r"\A[A-Z][A-Z0-9.\-]{0,9}\Z")  # \Z: "AAPL\n" is no symbol
DEFAULT_TICKERS: tuple[str, ...] = ("SPY", "QQQ", "AAPL", "MSFT", "NVDA")
LOOKBACK_DAYS_MIN = 2
LOOKBACK_DAYS_MAX = 252  # one trading year
_TRUE = {"1", "true", "t", "yes", "y", "on"}
_FALSE = {"0", "false", "f", "no", "n", "off", ""}


RUN_CONFIG = "run config"  # a value's source when it was set in the launchpad / run config


class SettingsError(ConfigurationError):
    """An option is invalid; ``option`` names it, ``env_var`` is set when it came from the environment
    and ``source`` names where it came from (the variable, or ``"run config"``)."""

    def __init__(
        self,
        option: str,
        problem: str,
        env_var: str | None = None,
        raw: object = None,
        *,
        source: str | None = None,
    ):
        self.option = option
        self.problem = problem
        self.env_var = env_var
        self.source = env_var or source
        self.raw = raw
        if env_var and env_var == option:
            where = f"{env_var}={raw!r}"
        elif env_var:
            where = f"{option} (from {env_var}={raw!r})"
        elif source:
            where = f"{option} (from the {source}: {raw!r})"
        else:
            where = option
        super().__init__(f"invalid setting {where}: {problem}")

    def located(self, source: str | None, raw: object) -> SettingsError:
        """The same problem, naming where the value came from (an environment variable or the run
        config); unchanged when it already names a source or ``source`` is None."""
        if self.source or not source:
            return self
        if source == RUN_CONFIG:
            return SettingsError(self.option, self.problem, raw=raw, source=RUN_CONFIG)
        return SettingsError(self.option, self.problem, source, raw)


def env_var_name(option: str) -> str:
    """``lookback_days`` -> ``TRADING_DATA_LOOKBACK_DAYS``."""
    return f"{ENV_PREFIX}{option.upper()}"


# --- parsing and per-option rules: the platform's one set of parsers ---------------------------------
# Each parser takes the option's name (for the message) and a raw value (a string from the environment
# or a typed value from the run config) and raises SettingsError naming the option.


def parse_bool(option: str, value: object) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
        return value.strip().lower() in _TRUE
    raise SettingsError(option, f"must be a boolean (true/false, 1/0, yes/no, on/off), got {value!r}")


def parse_int(option: str, value: object, low: int | None = None, high: int | None = None) -> int:
    """An integer (``"1_000"`` and ``5.0`` are fine, a boolean is not), within ``low..high``."""
    number: int | None = None
    if isinstance(value, bool):
        number = None
    elif isinstance(value, int):
        number = value
    elif isinstance(value, float) and value.is_integer():
        number = int(value)
    elif isinstance(value, str):
        try:
            number = int(value.strip().replace("_", ""))
        except ValueError:
            number = None
    if number is None:
        raise SettingsError(option, f"must be an integer, got {value!r}")
    _check_range(option, number, low, high)
    return number


def parse_float(option: str, value: object, low: float | None = None, high: float | None = None) -> float:
    """A finite number (a boolean is not one), within ``low..high``."""
    number: float | None = None
    if isinstance(value, bool):
        number = None
    elif isinstance(value, int | float):
        number = float(value)
    elif isinstance(value, str):
        try:
            number = float(value.strip().replace("_", ""))
        except ValueError:
            number = None
    if number is None:
        raise SettingsError(option, f"must be a number, got {value!r}")
    if not math.isfinite(number):
        raise SettingsError(option, f"must be a finite number, got {value!r}")
    _check_range(option, number, low, high)
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


T = TypeVar("T")


def env_setting(environ: Mapping[str, str], env_var: str, default: T, parse: Callable[[str, object], T]) -> T:
    """``parse(env_var, value)`` of a variable, or ``default`` when it is unset or blank (so
    ``VAR=`` in a compose file means "use the default"); errors name the variable and its value."""
    raw = environ.get(env_var)
    if raw is None or not raw.strip():
        return default
    try:
        return parse(env_var, raw)
    except SettingsError as err:
        raise err.located(env_var, raw) from None


# Per-option parse + range rule: option -> (parser, low, high). Cross-option rules: _combination_error.
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
# Read by the schedules and freshness checks at tick time, outside any run: a run's config cannot
# change it, so setting it there is an error rather than a silent no-op.
SCHEDULE_ONLY_OPTIONS = ("market_hours_only",)


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
        return parser(option, value, low, high)
    raise SettingsError(option, "unknown option")


@dataclass(frozen=True)
class PipelineSettings:
    """The pipeline's options with their documented defaults; invalid values raise SettingsError."""

    market_hours_only: bool = False
    """Collection schedules skip ticks outside the regular session (09:30 to the close)."""
    symbols: tuple[str, ...] = ()
    """Fixed tickers to collect, all active; empty means dynamic selection (``selected_tickers``)."""
    lookback_days: int = 20
    """Sessions of history loaded for indicators and selection, 2..252."""
    strict_validation: bool = False
    """Fail an asset on any schema violation instead of dropping and counting bad rows."""
    generate_report: bool = True
    """Materialize ``daily_report`` after the close."""
    max_active_tickers: int = 10
    """Tickers selected for active trading each session, at least 1 (with ``symbols``: at least their
    number, when set)."""
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
        error = _combination_error(self, {})
        if error is not None:
            raise error

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
        """Build from raw values (strings allowed). ``env_sources`` maps option -> where its value came
        from (its environment variable, or ``RUN_CONFIG``), so an error can name it."""
        sources = dict(env_sources or {})
        unknown = set(values) - set(cls.option_names())
        if unknown:
            option = sorted(unknown)[0]
            raise SettingsError(option, "unknown option").located(sources.get(option), values[option])
        parsed: dict[str, Any] = {}
        for option, raw in values.items():
            try:
                parsed[option] = parse_option(option, raw)
            except SettingsError as err:
                raise err.located(sources.get(option), raw) from None
        defaults = cls.__new__(cls)
        for f in fields(cls):
            object.__setattr__(defaults, f.name, parsed.get(f.name, f.default))
        error = _combination_error(defaults, {o: sources[o] for o in parsed if o in sources}, values)
        if error is not None:
            raise error
        return cls(**parsed)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> PipelineSettings:
        """Defaults overridden by any ``TRADING_DATA_<OPTION>`` variable that is set and not blank."""
        values, sources = _env_values(os.environ if environ is None else environ)
        return cls.from_values(values, sources)


def _origin(option: str, sources: Mapping[str, str]) -> str:
    source = sources.get(option)
    return f"from the {source}" if source == RUN_CONFIG else f"from {source}" if source else "the default"


def _where(option: str, value: object, sources: Mapping[str, str]) -> str:
    """``10 from TRADING_DATA_FOCUS_UNIVERSE_SIZE`` / ``50, the default``."""
    return f"{value}{' ' if option in sources else ', '}{_origin(option, sources)}"


def _combination_error(
    s: PipelineSettings, sources: Mapping[str, str], raw: Mapping[str, object] | None = None
) -> SettingsError | None:
    """The first rule relating two options that ``s`` breaks, blaming the option that was set (its
    source in ``sources``; an option absent there has its default)."""
    raw = raw or {}

    def error(option: str, problem: str) -> SettingsError:
        return SettingsError(option, problem).located(
            sources.get(option), raw.get(option, getattr(s, option))
        )

    if s.max_active_tickers > s.focus_universe_size:
        why = "the active tickers are chosen from the focus universe"
        if "focus_universe_size" in sources and "max_active_tickers" not in sources:
            return error(
                "focus_universe_size",
                f"must be at least max_active_tickers "
                f"({_where('max_active_tickers', s.max_active_tickers, sources)}): {why}",
            )
        return error(
            "max_active_tickers",
            f"{s.max_active_tickers} is larger than focus_universe_size "
            f"({_where('focus_universe_size', s.focus_universe_size, sources)}): {why}",
        )
    if s.symbols and "max_active_tickers" in sources and len(s.symbols) > s.max_active_tickers:
        return error(
            "max_active_tickers",
            f"{s.max_active_tickers} is fewer than the {len(s.symbols)} tickers of symbols "
            f"({_origin('symbols', sources)}), and every symbol is active: raise it or unset it",
        )
    return None


def _env_values(environ: Mapping[str, str]) -> tuple[dict[str, object], dict[str, str]]:
    """The options set (not blank) in ``environ``, and the variable each came from."""
    values: dict[str, object] = {}
    sources: dict[str, str] = {}
    for option in PipelineSettings.option_names():
        name = env_var_name(option)
        raw = environ.get(name)
        if raw is not None and raw.strip():
            values[option] = raw
            sources[option] = name
    return values, sources


def resolve_settings(
    config: Mapping[str, object], environ: Mapping[str, str] | None = None
) -> PipelineSettings:
    """Run config values (None means unset) over the environment (blank means unset) over the defaults,
    validated; a SettingsError names the option, its value and where it came from."""
    values, sources = _env_values(os.environ if environ is None else environ)
    for option, value in config.items():
        if value is None:
            continue
        if option in SCHEDULE_ONLY_OPTIONS:
            raise SettingsError(
                option,
                f"has no effect in a run's config: the schedules read {env_var_name(option)} at tick time; "
                "set that variable in the code location's environment instead",
                raw=value,
                source=RUN_CONFIG,
            )
        values[option] = value
        sources[option] = RUN_CONFIG
    return PipelineSettings.from_values(values, sources)


def check_environment(environ: Mapping[str, str] | None = None) -> None:
    """Validate every setting the platform reads from the environment (pipeline options and vendor
    sources); raises the first ConfigurationError. For ``trading-data health`` and the CLI."""
    from trading_data.sources.settings import SourceSettings

    PipelineSettings.from_env(environ)
    SourceSettings.from_env(environ)


def _describe(option: str, default: str, text: str) -> str:
    return f"{text} Unset: ${env_var_name(option)} if set, else {default}."


class PipelineSettingsResource(dg.ConfigurableResource):
    """Pipeline options. Each field left unset falls back to its ``TRADING_DATA_<OPTION>`` environment
    variable (read when the run starts), then to the documented default."""

    market_hours_only: bool | None = Field(
        default=None,
        description=(
            "Not settable here: the schedules and freshness checks read $TRADING_DATA_MARKET_HOURS_ONLY "
            "at tick time (default false); a value set in the run config fails the run saying so."
        ),
    )
    symbols: list[str] | None = Field(
        default=None,
        description=_describe(
            "symbols",
            "empty (dynamic selection)",
            "Fixed tickers (a list, or comma-separated items), every one active; selection's filters "
            "do not apply.",
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
        description=_describe(
            "max_active_tickers",
            "10",
            "Active tickers per session, 1..focus_universe_size; with symbols, at least their number.",
        ),
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

    @field_validator("*", mode="before")
    @classmethod
    def _check_config_value(cls, value: Any, info: Any) -> Any:
        # Before pydantic's coercion, which would turn `min_volatility: true` into 1.0. Only plain
        # values: an EnvVar is resolved (and checked) when the run starts. Raising a ValueError makes
        # pydantic report the message.
        if type(value) in (bool, int, float, str, list, tuple) and info.field_name in _OPTIONS:
            try:
                parse_option(info.field_name, value)
            except SettingsError as err:
                raise err.located(RUN_CONFIG, value) from None
        return value

    def config_values(self) -> dict[str, object]:
        """The options set on this resource (None: unset)."""
        return {option: getattr(self, option) for option in PipelineSettings.option_names()}

    def to_settings(self, environ: Mapping[str, str] | None = None) -> PipelineSettings:
        """Merge config > environment > defaults and validate (raises SettingsError)."""
        return resolve_settings(self.config_values(), environ)

    @classmethod
    def check_configuration(cls, config: Mapping[str, Any]) -> None:
        """Validate a run's config for this resource with the environment; called before any step runs
        (see trading_data.defs.executor). ``config`` holds the values as typed in the run config."""
        resolve_settings({k: v for k, v in config.items() if k in _OPTIONS})

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        # The second line of defence, for executors that do not check settings first (in-process
        # test runs): fails resource initialisation with the SettingsError.
        self.to_settings()


_OPTIONS = frozenset(PipelineSettings.option_names())
