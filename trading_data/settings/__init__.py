"""The platform's one configuration model: every setting declared once, validated once, one error format.

- :mod:`trading_data.settings.parsing`: :class:`SettingsError` (the one format: ``invalid setting
  <option> (from <VARIABLE>=<value>): <problem>``), the value parsers, and :class:`Setting`, one
  declared setting (variable, default, parser with its range, meaning) that reads itself at call time.
- :mod:`trading_data.settings.pipeline`: the seed's options (:data:`OPTIONS`), :class:`PipelineSettings`
  and the Dagster resource :class:`PipelineSettingsResource` (run config over environment over default).
- :mod:`trading_data.settings.platform`: everything else (vendors, databases, runs, monitoring).

Modules ask these (``SCHEMA.get()``, ``PipelineSettings.from_env()``) instead of reading ``os.environ``;
the one exception is :mod:`trading_data.clock`, below this layer, which reads ``TRADING_DATA_NOW``
itself (declared here as :data:`NOW`). ``python -m trading_data.settings`` prints the README's table.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from trading_data.domain.tickers import DEFAULT_TICKERS, TICKER_PATTERN
from trading_data.errors import ConfigurationError
from trading_data.settings.parsing import (
    ENV_PREFIX,
    RUN_CONFIG,
    Setting,
    SettingsError,
    env_setting,
    env_var_name,
    parse_bool,
    parse_float,
    parse_int,
    parse_text,
    parse_tickers,
)
from trading_data.settings.pipeline import (
    LOOKBACK_DAYS_MAX,
    LOOKBACK_DAYS_MIN,
    OPTIONS,
    SCHEDULE_ONLY_OPTIONS,
    PipelineSettings,
    PipelineSettingsResource,
    parse_option,
    resolve_settings,
)
from trading_data.settings.platform import PLATFORM_SETTINGS, SECRET_SETTINGS

__all__ = [
    "DEFAULT_TICKERS",
    "ENV_PREFIX",
    "LOOKBACK_DAYS_MAX",
    "LOOKBACK_DAYS_MIN",
    "OPTIONS",
    "PLATFORM_SETTINGS",
    "RUN_CONFIG",
    "SCHEDULE_ONLY_OPTIONS",
    "SECRET_SETTINGS",
    "TICKER_PATTERN",
    "ConfigurationError",
    "PipelineSettings",
    "PipelineSettingsResource",
    "Setting",
    "SettingsError",
    "all_settings",
    "configuration_problems",
    "env_setting",
    "env_var_name",
    "parse_bool",
    "parse_float",
    "parse_int",
    "parse_option",
    "parse_text",
    "parse_tickers",
    "resolve_settings",
    "secret_values",
    "settings_table",
]

PIPELINE_GROUP = "Pipeline options (also settable in a run's config, except market_hours_only)"


def all_settings() -> Iterator[tuple[str, Setting[Any]]]:
    """(topic, setting) for every setting of the platform, in the README's order."""
    for setting in OPTIONS.values():
        yield PIPELINE_GROUP, setting
    for group, settings in PLATFORM_SETTINGS.items():
        for setting in settings:
            yield group, setting


def configuration_problems(environ: Mapping[str, str] | None = None) -> list[str]:
    """One sentence per invalid setting in the environment (every setting of :func:`all_settings`,
    the pipeline options' combinations included); empty when all are valid."""
    problems: list[str] = []
    for _, setting in all_settings():
        try:
            setting.get(environ)
        except ConfigurationError as err:
            problems.append(str(err))
    if not problems:
        try:
            PipelineSettings.from_env(environ)
        except ConfigurationError as err:
            problems.append(str(err))
    return problems


def secret_values(environ: Mapping[str, str] | None = None) -> list[str]:
    """The values of the secret settings (keys, tokens, the webhook) that are set, for scrubbing."""
    return [value for s in SECRET_SETTINGS if (value := s.raw(environ))]


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def settings_table() -> str:
    """The README's settings table (markdown), generated from the declarations: the variable, the
    option's name in a run's config (pipeline options), the default, the allowed values, the meaning."""
    lines = ["| variable | run config | default | allowed | meaning |", "|---|---|---|---|---|"]
    group = None
    for topic, s in all_settings():
        if topic != group:
            group = topic
            lines.append(f"| **{topic}** | | | | |")
        in_run_config = s.option in OPTIONS and s.option not in SCHEDULE_ONLY_OPTIONS
        lines.append(
            f"| `{s.env_var}` | {s.option if in_run_config else ''} | {_cell(s.shown_default())} | "
            f"{_cell(s.rule())} | {_cell(s.description)} |"
        )
    return "\n".join(lines)
