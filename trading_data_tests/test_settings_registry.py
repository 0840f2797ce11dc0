"""The one configuration model: every setting declared once in ``trading_data.settings``, read through
it (no module reads the environment itself), one error format, and the README's table generated from it."""

from __future__ import annotations

import dataclasses
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import trading_data
from trading_data.db.url import embedded_port
from trading_data.defs.resources import build_resources
from trading_data.monitoring.bursts import BurstThresholds
from trading_data.orchestration.steps import asset_metadata
from trading_data.settings import (
    OPTIONS,
    ConfigurationError,
    PipelineSettings,
    PipelineSettingsResource,
    SettingsError,
    all_settings,
    configuration_problems,
    secret_values,
    settings_table,
)

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = Path(trading_data.__file__).resolve().parent
BIN = Path(sys.executable).parent


def test_the_readme_table_is_the_registry() -> None:
    readme = (ROOT / "README.md").read_text()
    match = re.search(r"<!-- settings table: [^\n]*-->\n(.*?)\n<!-- end of settings table -->", readme, re.S)
    assert match, "README.md lost its generated settings table"
    assert match.group(1) == settings_table(), "regenerate it: python -m trading_data.settings"


def test_each_variable_is_declared_once() -> None:
    variables = [s.env_var for _, s in all_settings()]
    assert len(variables) == len(set(variables))
    # The two faces of the pipeline options are the table's options, in its order.
    assert PipelineSettings.option_names() == tuple(OPTIONS)
    assert tuple(PipelineSettingsResource.model_fields) == tuple(OPTIONS)
    assert PipelineSettings() == PipelineSettings(**{o: s.default for o, s in OPTIONS.items()})
    for f in dataclasses.fields(PipelineSettings):
        assert f.default == OPTIONS[f.name].default


# `environ.get(...)`, `os.getenv(...)`, `os.environ[...]` reads (writes and copies are not reads).
_ENV_READ = re.compile(r"environ\.get\(|getenv\(|environ\[[^\]]+\](?!\s*=)")


def test_no_module_reads_the_environment_itself() -> None:
    """Only the registry reads its variables (and the clock, below it, reads TRADING_DATA_NOW);
    Dagster's own DAGSTER_HOME is Dagster's setting, not ours."""
    readers = []
    for path in sorted(PACKAGE.rglob("*.py")):
        relative = path.relative_to(PACKAGE).as_posix()
        if relative.startswith("settings/") or relative == "clock.py":
            continue
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if _ENV_READ.search(line) and "DAGSTER_HOME" not in line:
                readers.append(f"{relative}:{number}: {line.strip()}")
    assert readers == []


def test_burst_runs_per_hour_must_be_a_whole_number() -> None:
    # It was read as int(float(raw)): 2.5 silently became 2 runs an hour.
    with pytest.raises(SettingsError) as err:
        BurstThresholds.from_env({"TRADING_DATA_BURST_MAX_PER_HOUR": "2.5"})
    assert (
        str(err.value)
        == "invalid setting TRADING_DATA_BURST_MAX_PER_HOUR='2.5': must be an integer, got '2.5'"
    )


@pytest.mark.parametrize(
    ("variable", "raw", "problem"),
    [
        ("TRADING_DATA_BURST_VOLATILITY", "lots", "must be a number, got 'lots'"),
        ("TRADING_DATA_BURST_VOLUME_RATIO", "0", "must be greater than 0, got 0"),
        ("TRADING_DATA_BURST_MAX_PER_HOUR", "7", "must divide 60 (1, 2, 3, 4, 5, 6, 10, 12, …), got 7"),
    ],
)
def test_burst_thresholds_speak_the_settings_format(variable: str, raw: str, problem: str) -> None:
    with pytest.raises(ConfigurationError) as err:
        BurstThresholds.from_env({variable: raw})
    assert str(err.value) == f"invalid setting {variable}={raw!r}: {problem}"


def test_a_blank_schema_means_the_default(monkeypatch: pytest.MonkeyPatch) -> None:
    # Blank means unset for every setting (compose's `VAR: ${VAR:-}`); the schema was read as "".
    monkeypatch.setenv("TRADING_DATA_SCHEMA", "")
    resources = build_resources()
    assert resources["io_manager"].schema_ == resources["database"].schema_ == "market"  # type: ignore[attr-defined]
    assert asset_metadata("prices")["dagster/table_name"] == "market.prices"


def test_a_blank_port_means_the_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRADING_DATA_PG_PORT", " ")
    assert embedded_port() == 54329
    monkeypatch.setenv("TRADING_DATA_PG_PORT", "70000")
    with pytest.raises(ConfigurationError, match=r"TRADING_DATA_PG_PORT='70000': must be a port number"):
        embedded_port()


def test_a_bad_pool_limit_stops_dev_before_it_starts_anything(tmp_path: Path) -> None:
    """`trading-data dev` read TRADING_DATA_POOL_<NAME> with int() after starting the database: a typo
    crashed it with a traceback; now it is one sentence, before anything is started."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TRADING_DATA_", "DAGSTER_"))}
    env.update(
        TRADING_DATA_POOL_POLYGON="three",
        # Nothing listens here: reaching the database first fails differently.
        TRADING_DATA_DATABASE_URL="postgresql://postgres@127.0.0.1:9/none",
    )
    done = subprocess.run(
        [str(BIN / "trading-data"), "dev"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip().splitlines() == [
        "trading-data: invalid setting TRADING_DATA_POOL_POLYGON='three': must be an integer, got 'three'"
    ]


def test_configuration_problems_names_each_bad_setting_once() -> None:
    environ = {
        "TRADING_DATA_LOOKBACK_DAYS": "abc",
        "TRADING_DATA_STORAGE_MODE": "fast",
        "TRADING_DATA_NOW": "2026-12-01T14:09:00",
    }
    assert configuration_problems(environ) == [
        "invalid setting lookback_days (from TRADING_DATA_LOOKBACK_DAYS='abc'): must be an integer, got 'abc'",
        "invalid setting storage_mode (from TRADING_DATA_STORAGE_MODE='fast'): "
        "must be one of auto, postgres, timescaledb",
        "invalid setting TRADING_DATA_NOW='2026-12-01T14:09:00': has no UTC offset (e.g. 2026-12-01T14:09:00-05:00)",
    ]
    assert configuration_problems({}) == []
    # A combination is judged once every option is valid on its own.
    assert configuration_problems({"TRADING_DATA_MAX_ACTIVE_TICKERS": "60"}) == [
        "invalid setting max_active_tickers (from TRADING_DATA_MAX_ACTIVE_TICKERS='60'): 60 is larger than "
        "focus_universe_size (50, the default): the active tickers are chosen from the focus universe"
    ]


def test_secret_values_are_the_keys_tokens_and_webhook() -> None:
    environ = {
        "POLYGON_API_KEY": "pk-123456",
        "UNUSUAL_WHALES_API_TOKEN": " ",
        "TRADING_DATA_ALERT_WEBHOOK": "https://hooks.example/T0/B0/secret",
        "TRADING_DATA_SCHEMA": "market",
    }
    assert secret_values(environ) == ["pk-123456", "https://hooks.example/T0/B0/secret"]
