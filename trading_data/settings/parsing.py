"""The platform's one error format for settings, its value parsers, and :class:`Setting`, one declared
setting (variable, default, parser with its range, meaning) that reads itself from the environment.

Every parser takes the option's name (for the message) and a raw value (a string from the environment
or a typed value from the run config) and raises :class:`SettingsError` naming the option.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from trading_data.domain.tickers import TICKER_PATTERN
from trading_data.errors import ConfigurationError

ENV_PREFIX = "TRADING_DATA_"
RUN_CONFIG = "run config"  # a value's source when it was set in the launchpad / run config
_TRUE = {"1", "true", "t", "yes", "y", "on"}
_FALSE = {"0", "false", "f", "no", "n", "off", ""}

T = TypeVar("T")


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
        """The same problem (and error class), naming where the value came from (an environment
        variable or the run config); unchanged when it already names a source or ``source`` is None."""
        if self.source or not source:
            return self
        if source == RUN_CONFIG:
            return type(self)(self.option, self.problem, raw=raw, source=RUN_CONFIG)
        return type(self)(self.option, self.problem, source, raw)


def env_var_name(option: str) -> str:
    """``lookback_days`` -> ``TRADING_DATA_LOOKBACK_DAYS``."""
    return f"{ENV_PREFIX}{option.upper()}"


# --- parsers -------------------------------------------------------------------------------------------


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


def parse_text(option: str, value: object) -> str:
    """A string, surrounding whitespace dropped."""
    if not isinstance(value, str):
        raise SettingsError(option, f"must be a string, got {value!r}")
    return value.strip()


def _check_range(option: str, value: float, low: float | None, high: float | None) -> None:
    if low is not None and high is not None and not low <= value <= high:
        raise SettingsError(option, f"must be between {low:g} and {high:g}, got {value:g}")
    if low is not None and value < low:
        raise SettingsError(option, f"must be at least {low:g}, got {value:g}")
    if high is not None and value > high:
        raise SettingsError(option, f"must be at most {high:g}, got {value:g}")


@dataclass(frozen=True)
class Bounded:
    """A parser for a number within ``low..high`` (either may be open); its text is the range."""

    kind: type[int] | type[float]
    low: float | None = None
    high: float | None = None
    positive: bool = False
    """``> 0`` (``low`` is then None)."""

    def __call__(self, option: str, value: object) -> Any:
        if self.kind is int:
            number: float = parse_int(option, value, _int(self.low), _int(self.high))
        else:
            number = parse_float(option, value, self.low, self.high)
        if self.positive and number <= 0:
            raise SettingsError(option, f"must be greater than 0, got {number:g}")
        return number

    def __str__(self) -> str:
        if self.positive:
            return "> 0"
        if self.low is not None and self.high is not None:
            return f"{self.low:g}..{self.high:g}"
        if self.low is not None:
            return f">= {self.low:g}"
        return f"<= {self.high:g}" if self.high is not None else ""


def _int(bound: float | None) -> int | None:
    return None if bound is None else int(bound)


def integer(low: int | None = None, high: int | None = None) -> Bounded:
    return Bounded(int, low, high)


def number(low: float | None = None, high: float | None = None, *, positive: bool = False) -> Bounded:
    return Bounded(float, low, high, positive)


@dataclass(frozen=True)
class Choice:
    """A parser for one of a few words (any case, surrounding blanks ignored)."""

    choices: tuple[str, ...]

    def __call__(self, option: str, value: object) -> str:
        word = value.strip().lower() if isinstance(value, str) else value
        if word not in self.choices:
            if len(self.choices) == 2:
                expected = f"{self.choices[0]!r} or {self.choices[1]!r}"
            else:
                expected = f"one of {', '.join(self.choices)}"
            raise SettingsError(option, f"must be {expected}")
        return str(word)

    def __str__(self) -> str:
        return " | ".join(self.choices)


# --- one setting -----------------------------------------------------------------------------------------


def _read(environ: Mapping[str, str] | None, env_var: str, option: str, default: T, parse: Any) -> T:
    raw = (os.environ if environ is None else environ).get(env_var)
    if raw is None or not raw.strip():
        return default
    try:
        value: T = parse(option, raw)
    except SettingsError as err:
        raise err.located(env_var, raw) from None
    return value


def env_setting(environ: Mapping[str, str], env_var: str, default: T, parse: Callable[[str, object], T]) -> T:
    """``parse(env_var, value)`` of a variable, or ``default`` when it is unset or blank (so
    ``VAR=`` in a compose file means "use the default"); errors name the variable and its value."""
    return _read(environ, env_var, env_var, default, parse)


@dataclass(frozen=True)
class Setting(Generic[T]):
    """One setting of the platform, declared once: its variable, default, parser (with its range) and
    meaning. :meth:`get` reads the environment at call time (blank means unset), so a change of the
    variable is seen at once; an invalid value raises a SettingsError naming the variable and value."""

    env_var: str
    default: T
    parse: Callable[[str, object], T]
    description: str
    option: str = ""
    """The name errors use (``storage_mode``); blank: the variable itself."""
    default_text: str = ""
    """The default as the README states it; blank: the default itself."""
    secret: bool = False
    """A key or token: never logged, replaced by ``***`` in alerts."""

    @property
    def name(self) -> str:
        return self.option or self.env_var

    def raw(self, environ: Mapping[str, str] | None = None) -> str | None:
        """The variable's value, or None when it is unset or blank."""
        value = (os.environ if environ is None else environ).get(self.env_var)
        return value if value is not None and value.strip() else None

    def is_set(self, environ: Mapping[str, str] | None = None) -> bool:
        return self.raw(environ) is not None

    def get(self, environ: Mapping[str, str] | None = None) -> T:
        """The parsed value from ``environ`` (default: the process environment), else the default."""
        return _read(environ, self.env_var, self.name, self.default, self.parse)

    def parse_value(self, value: object, source: str | None = None) -> T:
        """``value`` parsed and checked, an error naming ``source`` (e.g. ``RUN_CONFIG``)."""
        try:
            return self.parse(self.name, value)
        except SettingsError as err:
            raise err.located(source, value) from None

    def shown_default(self) -> str:
        """The default as the README states it (``1,000,000``, ``false``, ``unset``)."""
        if self.default_text:
            return self.default_text
        if self.default is None:
            return "unset"
        if isinstance(self.default, bool):
            return str(self.default).lower()
        if isinstance(self.default, tuple):
            return ", ".join(map(str, self.default)) or "empty"
        if isinstance(self.default, float) and self.default.is_integer():
            return f"{self.default:,.0f}" if self.default >= 10_000 else f"{self.default:.0f}"
        return str(self.default)

    def rule(self) -> str:
        """The parser's range or choices (``2..252``, ``> 0``, ``live | simulated``), or blank."""
        if self.parse is parse_bool:
            return "true/false, 1/0, yes/no, on/off"
        return str(self.parse) if isinstance(self.parse, Bounded | Choice) else ""
