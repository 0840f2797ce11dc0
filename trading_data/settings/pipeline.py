"""The pipeline's options: the seed's ten configuration options (seed section 7) plus the fallback tickers.

Each option is declared once, in :data:`OPTIONS` (variable ``TRADING_DATA_<OPTION>``, default, parser
with its range, meaning). Two faces read that table:

- :class:`PipelineSettings` is a plain frozen dataclass with the documented defaults; every value is
  validated when it is built. Pure code (selection, sizing, schedules) takes this.
- :class:`PipelineSettingsResource` is the Dagster resource. Each field is optional: a value set in the
  run config (the launchpad's ``resources: {settings: {config: {...}}}``) wins, else the field's
  environment variable (read when the run starts; blank means unset), else the documented default.
  :func:`resolve_settings` merges and validates.

A bad value raises :class:`SettingsError` (a :class:`ConfigurationError`), one sentence naming the
option, its value and where it came from (the variable, or the run config). In a run, the platform's
executor (``trading_data.orchestration.executor``) checks the merged settings before any step runs, so the run
fails at once with that sentence and is retried neither by the step's RetryPolicy nor as a run.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

import dagster as dg
from pydantic import Field, field_validator

from trading_data.domain.tickers import DEFAULT_TICKERS
from trading_data.settings.parsing import (
    RUN_CONFIG,
    Setting,
    SettingsError,
    env_var_name,
    integer,
    number,
    parse_bool,
    parse_tickers,
)

LOOKBACK_DAYS_MIN = 2
LOOKBACK_DAYS_MAX = 252  # one trading year


def _default_tickers(option: str, value: object) -> tuple[str, ...]:
    tickers = parse_tickers(option, value)
    if not tickers:
        raise SettingsError(option, "needs at least one ticker (it is the fallback when selection fails)")
    return tickers


def _option(option: str, default: Any, parse: Any, description: str, default_text: str = "") -> Setting[Any]:
    return Setting(env_var_name(option), default, parse, description, option, default_text)


OPTIONS: dict[str, Setting[Any]] = {
    s.name: s
    for s in (
        _option(
            "market_hours_only",
            False,
            parse_bool,
            "Collection schedules skip ticks outside the regular session (09:30 to the close). Read by "
            "the schedules and freshness checks at tick time, so only from the environment.",
            "false (pre-open ticks 09:00/09:05/09:15 run)",
        ),
        _option(
            "symbols",
            (),
            parse_tickers,
            "Fixed tickers to collect (comma-separated), all active; selection's filters do not apply.",
            "empty: dynamic selection (`selected_tickers`)",
        ),
        _option(
            "lookback_days",
            20,
            integer(LOOKBACK_DAYS_MIN, LOOKBACK_DAYS_MAX),
            "Sessions of history loaded for indicators and selection.",
        ),
        _option(
            "strict_validation",
            False,
            parse_bool,
            "Fail an asset on any schema violation instead of dropping and counting bad rows.",
            "false: failing rows go to `market.rejects`",
        ),
        _option("generate_report", True, parse_bool, "Materialize `daily_report` after the close."),
        _option(
            "max_active_tickers",
            10,
            integer(1),
            "Tickers selected for active trading each session, at most focus_universe_size; with "
            "symbols, at least their number when set.",
        ),
        _option(
            "focus_universe_size",
            50,
            integer(1),
            "Tickers scored by selection, at least max_active_tickers.",
        ),
        _option("min_volume", 1_000_000.0, number(0), "Minimum average daily volume (shares) for selection."),
        _option("min_volatility", 0.01, number(0, 1), "Minimum volatility (ATR / price) for selection."),
        _option("opportunity_threshold", 0.5, number(0, 1), "Minimum opportunity score for selection."),
        _option(
            "default_tickers",
            DEFAULT_TICKERS,
            _default_tickers,
            "Fallback tickers when dynamic selection fails or finds nothing (at least one).",
        ),
    )
}
# Read by the schedules and freshness checks at tick time, outside any run: a run's config cannot
# change it, so setting it there is an error rather than a silent no-op.
SCHEDULE_ONLY_OPTIONS = ("market_hours_only",)


def parse_option(option: str, value: object) -> Any:
    """Parse and check one option on its own (no cross-option rules)."""
    if option not in OPTIONS:
        raise SettingsError(option, "unknown option")
    return OPTIONS[option].parse(option, value)


def _default(option: str) -> Any:
    return OPTIONS[option].default


@dataclass(frozen=True)
class PipelineSettings:
    """The pipeline's options with their documented defaults (see :data:`OPTIONS` for each one's
    meaning and range); invalid values raise SettingsError."""

    market_hours_only: bool = _default("market_hours_only")
    symbols: tuple[str, ...] = _default("symbols")
    lookback_days: int = _default("lookback_days")
    strict_validation: bool = _default("strict_validation")
    generate_report: bool = _default("generate_report")
    max_active_tickers: int = _default("max_active_tickers")
    focus_universe_size: int = _default("focus_universe_size")
    min_volume: float = _default("min_volume")
    min_volatility: float = _default("min_volatility")
    opportunity_threshold: float = _default("opportunity_threshold")
    default_tickers: tuple[str, ...] = _default("default_tickers")

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
        values, sources = _env_values(environ)
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


def _env_values(environ: Mapping[str, str] | None) -> tuple[dict[str, object], dict[str, str]]:
    """The options set (not blank) in ``environ`` (default: the process environment), and the
    variable each came from."""
    values: dict[str, object] = {}
    sources: dict[str, str] = {}
    for option, setting in OPTIONS.items():
        raw = setting.raw(environ)
        if raw is not None:
            values[option] = raw
            sources[option] = setting.env_var
    return values, sources


def resolve_settings(
    config: Mapping[str, object], environ: Mapping[str, str] | None = None
) -> PipelineSettings:
    """Run config values (None means unset) over the environment (blank means unset) over the defaults,
    validated; a SettingsError names the option, its value and where it came from."""
    values, sources = _env_values(environ)
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


def _config_field(option: str) -> Any:
    """The resource's field for ``option``: unset (None) by default, described from :data:`OPTIONS`."""
    s = OPTIONS[option]
    if option in SCHEDULE_ONLY_OPTIONS:
        text = (
            f"Not settable here: the schedules and freshness checks read ${s.env_var} at tick time "
            f"(default {s.shown_default()}); a value set in the run config fails the run saying so."
        )
    else:
        rule = f" ({s.rule()})" if s.rule() else ""
        text = f"{s.description}{rule} Unset: ${s.env_var} if set, else {s.shown_default()}."
    return Field(default=None, description=text)


class PipelineSettingsResource(dg.ConfigurableResource):
    """Pipeline options. Each field left unset falls back to its ``TRADING_DATA_<OPTION>`` environment
    variable (read when the run starts), then to the documented default."""

    market_hours_only: bool | None = _config_field("market_hours_only")
    symbols: list[str] | None = _config_field("symbols")
    lookback_days: int | None = _config_field("lookback_days")
    strict_validation: bool | None = _config_field("strict_validation")
    generate_report: bool | None = _config_field("generate_report")
    max_active_tickers: int | None = _config_field("max_active_tickers")
    focus_universe_size: int | None = _config_field("focus_universe_size")
    min_volume: float | None = _config_field("min_volume")
    min_volatility: float | None = _config_field("min_volatility")
    opportunity_threshold: float | None = _config_field("opportunity_threshold")
    default_tickers: list[str] | None = _config_field("default_tickers")

    @field_validator("*", mode="before")
    @classmethod
    def _check_config_value(cls, value: Any, info: Any) -> Any:
        # Before pydantic's coercion, which would turn `min_volatility: true` into 1.0. Only plain
        # values: an EnvVar is resolved (and checked) when the run starts. Raising a ValueError makes
        # pydantic report the message.
        if type(value) in (bool, int, float, str, list, tuple) and info.field_name in OPTIONS:
            OPTIONS[info.field_name].parse_value(value, RUN_CONFIG)
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
        (see trading_data.orchestration.executor). ``config`` holds the values as typed in the run config."""
        resolve_settings({k: v for k, v in config.items() if k in OPTIONS})

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        # The second line of defence, for executors that do not check settings first (in-process
        # test runs): fails resource initialisation with the SettingsError.
        self.to_settings()
