"""PipelineSettings / PipelineSettingsResource: defaults, parsing, and one test per validation rule."""

from __future__ import annotations

import re

import dagster as dg
import pydantic
import pytest

from trading_data.settings import (
    DEFAULT_TICKERS,
    RUN_CONFIG,
    ConfigurationError,
    PipelineSettings,
    PipelineSettingsResource,
    SettingsError,
    env_var_name,
    resolve_settings,
)
from trading_data.sources.settings import check_environment


def test_documented_defaults() -> None:
    s = PipelineSettings()
    assert s.market_hours_only is False
    assert s.symbols == () and s.dynamic_selection
    assert s.lookback_days == 20
    assert s.strict_validation is False
    assert s.generate_report is True
    assert s.max_active_tickers == 10
    assert s.focus_universe_size == 50
    assert s.min_volume == 1_000_000
    assert s.min_volatility == 0.01
    assert s.opportunity_threshold == 0.5
    assert s.default_tickers == ("SPY", "QQQ", "AAPL", "MSFT", "NVDA") == DEFAULT_TICKERS


def test_symbols_from_string_or_list_are_normalized() -> None:
    assert PipelineSettings.from_values({"symbols": " aapl, msft ,,brk.b,AAPL"}).symbols == (
        "AAPL",
        "MSFT",
        "BRK.B",
    )
    assert PipelineSettings.from_values({"symbols": ["nvda", "bf-b, spy"]}).symbols == ("NVDA", "BF-B", "SPY")
    assert PipelineSettings.from_values({"symbols": ""}).dynamic_selection


def test_from_env_reads_every_option() -> None:
    env = {
        "TRADING_DATA_MARKET_HOURS_ONLY": "yes",
        "TRADING_DATA_SYMBOLS": "aapl,msft",
        "TRADING_DATA_LOOKBACK_DAYS": "30",
        "TRADING_DATA_STRICT_VALIDATION": "1",
        "TRADING_DATA_GENERATE_REPORT": "off",
        "TRADING_DATA_MAX_ACTIVE_TICKERS": "5",
        "TRADING_DATA_FOCUS_UNIVERSE_SIZE": "5",
        "TRADING_DATA_MIN_VOLUME": "250000",
        "TRADING_DATA_MIN_VOLATILITY": "0.02",
        "TRADING_DATA_OPPORTUNITY_THRESHOLD": "0.7",
    }
    s = PipelineSettings.from_env(env)
    assert s == PipelineSettings(
        market_hours_only=True,
        symbols=("AAPL", "MSFT"),
        lookback_days=30,
        strict_validation=True,
        generate_report=False,
        max_active_tickers=5,
        focus_universe_size=5,
        min_volume=250_000.0,
        min_volatility=0.02,
        opportunity_threshold=0.7,
    )
    assert PipelineSettings.from_env({}) == PipelineSettings()


BAD_VALUES = [
    ("lookback_days", 1, "between 2 and 252"),
    ("lookback_days", 253, "between 2 and 252"),
    ("lookback_days", "twenty", "integer"),
    ("max_active_tickers", 0, "at least 1"),
    ("max_active_tickers", -3, "at least 1"),
    ("focus_universe_size", -1, "at least 1"),
    ("min_volume", -1, "at least 0"),
    ("min_volume", "nan", "finite"),
    ("min_volatility", -0.01, "between 0 and 1"),
    ("min_volatility", 1.5, "between 0 and 1"),
    ("opportunity_threshold", 1.01, "between 0 and 1"),
    ("opportunity_threshold", -0.5, "between 0 and 1"),
    ("market_hours_only", "sometimes", "boolean"),
    ("strict_validation", "2", "boolean"),
    ("generate_report", "maybe", "boolean"),
    ("symbols", "AAPL,MS FT", "malformed ticker"),
    ("symbols", ["AAPL", "1ABC"], "malformed ticker"),
    ("symbols", "TOOLONGTICKER", "malformed ticker"),
    ("symbols", "AAPL;MSFT", "malformed ticker"),
    ("default_tickers", "", "at least one ticker"),
    ("default_tickers", "SPY,$X", "malformed ticker"),
]


@pytest.mark.parametrize(("option", "value", "problem"), BAD_VALUES)
def test_each_rule_names_the_option(option: str, value: object, problem: str) -> None:
    with pytest.raises(SettingsError, match=problem) as err:
        PipelineSettings.from_values({option: value})
    assert err.value.option == option
    assert option in str(err.value)
    assert err.value.env_var is None


@pytest.mark.parametrize(
    ("option", "value", "problem"), [b for b in BAD_VALUES if isinstance(b[1], str) and b[1]]
)
def test_env_errors_name_the_variable(option: str, value: str, problem: str) -> None:
    name = env_var_name(option)
    with pytest.raises(SettingsError, match=problem) as err:
        PipelineSettings.from_env({name: value})
    assert err.value.env_var == name
    assert option in str(err.value) and name in str(err.value) and repr(value) in str(err.value)


def test_max_active_tickers_above_focus_universe_size() -> None:
    with pytest.raises(SettingsError, match="larger than focus_universe_size") as err:
        PipelineSettings(max_active_tickers=60)
    assert err.value.option == "max_active_tickers"
    with pytest.raises(
        SettingsError, match="TRADING_DATA_FOCUS_UNIVERSE_SIZE|TRADING_DATA_MAX_ACTIVE_TICKERS"
    ):
        PipelineSettings.from_env(
            {"TRADING_DATA_MAX_ACTIVE_TICKERS": "20", "TRADING_DATA_FOCUS_UNIVERSE_SIZE": "10"}
        )
    # Equal is fine.
    assert PipelineSettings(max_active_tickers=7, focus_universe_size=7).focus_universe_size == 7


def test_bool_is_not_an_integer() -> None:
    with pytest.raises(SettingsError, match="lookback_days"):
        PipelineSettings.from_values({"lookback_days": True})


def test_unknown_option() -> None:
    with pytest.raises(SettingsError, match="unknown option"):
        PipelineSettings.from_values({"lookback": 5})


# --- the Dagster resource ----------------------------------------------------------------------------


def test_resource_precedence_config_over_env_over_default(monkeypatch: pytest.MonkeyPatch) -> None:
    assert PipelineSettingsResource().to_settings() == PipelineSettings()
    monkeypatch.setenv("TRADING_DATA_LOOKBACK_DAYS", "40")
    monkeypatch.setenv("TRADING_DATA_SYMBOLS", "spy, qqq")
    s = PipelineSettingsResource().to_settings()
    assert (s.lookback_days, s.symbols) == (40, ("SPY", "QQQ"))
    s = PipelineSettingsResource(lookback_days=60, symbols=["aapl"]).to_settings()
    assert (s.lookback_days, s.symbols) == (60, ("AAPL",))


def test_resource_config_value_overrides_bad_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRADING_DATA_LOOKBACK_DAYS", "abc")
    assert PipelineSettingsResource(lookback_days=5).to_settings().lookback_days == 5
    with pytest.raises(SettingsError, match="TRADING_DATA_LOOKBACK_DAYS"):
        PipelineSettingsResource().to_settings()


def test_resource_field_validator_names_the_option() -> None:
    with pytest.raises(
        pydantic.ValidationError,
        match=re.escape("invalid setting min_volatility (from the run config: 2.0): must be between 0 and 1"),
    ):
        PipelineSettingsResource(min_volatility=2.0)
    with pytest.raises(
        pydantic.ValidationError, match=re.escape("invalid setting symbols (from the run config: ['AAPL', ")
    ):
        PipelineSettingsResource(symbols=["AAPL", "NOT A TICKER"])


@dg.asset
def _uses_settings(settings: PipelineSettingsResource) -> int:
    return settings.to_settings().lookback_days


def _run(run_config: dict | None = None) -> dg.ExecuteInProcessResult:
    defs = dg.Definitions(assets=[_uses_settings], resources={"settings": PipelineSettingsResource()})
    job = defs.resolve_implicit_global_asset_job_def()
    return job.execute_in_process(run_config=run_config or {}, raise_on_error=False)


def _failure_text(result: dg.ExecuteInProcessResult) -> str:
    texts = []
    for event in result.all_events:
        error = getattr(event.event_specific_data, "error", None)
        if error is not None:
            texts.append(error.to_string())
    return "\n".join(texts)


def test_launchpad_config_reaches_the_asset() -> None:
    result = _run({"resources": {"settings": {"config": {"lookback_days": 15}}}})
    assert result.success
    assert result.output_for_node("_uses_settings") == 15


@pytest.mark.parametrize(
    ("config", "message"),
    [
        (
            {"lookback_days": 1},
            "invalid setting lookback_days (from the run config: 1): must be between 2 and 252",
        ),
        ({"symbols": ["AAPL", "BAD TICKER"]}, "malformed ticker symbol 'BAD TICKER'"),
        (
            {"max_active_tickers": 80},
            "invalid setting max_active_tickers (from the run config: 80): 80 is larger than "
            "focus_universe_size (50, the default)",
        ),
    ],
)
def test_bad_launchpad_config_fails_the_run_at_resource_init(config: dict, message: str) -> None:
    result = _run({"resources": {"settings": {"config": config}}})
    assert not result.success
    assert message in _failure_text(result)
    assert not any(e.is_step_success for e in result.all_events)


def test_bad_env_fails_the_run_naming_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRADING_DATA_MIN_VOLUME", "-5")
    result = _run()
    assert not result.success
    assert (
        "invalid setting min_volume (from TRADING_DATA_MIN_VOLUME='-5'): must be at least 0"
        in _failure_text(result)
    )


# --- the configuration gaps of issue 9.10 and the combination rules of issue 8 ------------------------


def test_blank_variables_mean_unset() -> None:
    # TRADING_DATA_GENERATE_REPORT="" (a compose file's `VAR: ${VAR:-}`) used to turn the report off.
    assert PipelineSettings.from_env({"TRADING_DATA_GENERATE_REPORT": ""}).generate_report is True
    blank = {env_var_name(option): " " for option in PipelineSettings.option_names()}
    assert PipelineSettings.from_env(blank) == PipelineSettings()


@pytest.mark.parametrize("option", ["min_volatility", "min_volume", "opportunity_threshold", "lookback_days"])
def test_a_boolean_in_the_run_config_is_not_a_number(option: str) -> None:
    # Dagster's config layer turns `true` into 1.0 before the resource sees it; the platform's executor
    # checks the value as typed (trading_data_tests/test_config_failures_fail_fast.py runs it).
    with pytest.raises(
        SettingsError, match=re.escape(f"invalid setting {option} (from the run config: True)")
    ):
        resolve_settings({option: True}, {})
    with pytest.raises(pydantic.ValidationError, match=re.escape(f"{option} (from the run config: True)")):
        PipelineSettingsResource(**{option: True})


def test_a_bad_focus_universe_size_from_the_environment_is_named() -> None:
    with pytest.raises(SettingsError) as err:
        PipelineSettings.from_env({"TRADING_DATA_FOCUS_UNIVERSE_SIZE": "5"})
    assert (
        err.value.option == "focus_universe_size" and err.value.env_var == "TRADING_DATA_FOCUS_UNIVERSE_SIZE"
    )
    assert str(err.value) == (
        "invalid setting focus_universe_size (from TRADING_DATA_FOCUS_UNIVERSE_SIZE='5'): must be at least "
        "max_active_tickers (10, the default): the active tickers are chosen from the focus universe"
    )


def test_both_sides_of_a_combination_are_named() -> None:
    with pytest.raises(SettingsError) as err:
        resolve_settings({"max_active_tickers": 20}, {"TRADING_DATA_FOCUS_UNIVERSE_SIZE": "10"})
    assert str(err.value) == (
        "invalid setting max_active_tickers (from the run config: 20): 20 is larger than focus_universe_size "
        "(10 from TRADING_DATA_FOCUS_UNIVERSE_SIZE): the active tickers are chosen from the focus universe"
    )


def test_max_active_tickers_below_the_number_of_symbols_is_rejected() -> None:
    with pytest.raises(SettingsError) as err:
        resolve_settings({"symbols": ["AAPL", "MSFT", "KO"]}, {"TRADING_DATA_MAX_ACTIVE_TICKERS": "2"})
    assert err.value.option == "max_active_tickers" and err.value.env_var == "TRADING_DATA_MAX_ACTIVE_TICKERS"
    assert "fewer than the 3 tickers of symbols (from the run config), and every symbol is active" in str(
        err.value
    )
    # Consistent: a cap the list respects, or no cap at all (the default does not count against symbols).
    assert resolve_settings({"symbols": ["AAPL", "MSFT"], "max_active_tickers": 2}, {}).symbols == (
        "AAPL",
        "MSFT",
    )
    many = [f"T{i}" for i in range(12)]
    assert len(resolve_settings({"symbols": many}, {}).symbols) == 12


def test_market_hours_only_cannot_be_set_in_a_run() -> None:
    # The schedules decide it at tick time from the environment; a run's config used to be silently ignored.
    with pytest.raises(SettingsError) as err:
        resolve_settings({"market_hours_only": True}, {})
    assert err.value.source == RUN_CONFIG
    assert "the schedules read TRADING_DATA_MARKET_HOURS_ONLY at tick time" in str(err.value)
    assert resolve_settings({}, {"TRADING_DATA_MARKET_HOURS_ONLY": "yes"}).market_hours_only is True
    result = _run({"resources": {"settings": {"config": {"market_hours_only": True}}}})
    assert not result.success and "TRADING_DATA_MARKET_HOURS_ONLY at tick time" in _failure_text(result)


def test_every_settings_error_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError):
        check_environment({"TRADING_DATA_LOOKBACK_DAYS": "abc"})
    with pytest.raises(ConfigurationError, match="POLYGON_RATE_LIMIT_PER_MINUTE='0'"):
        check_environment({"POLYGON_RATE_LIMIT_PER_MINUTE": "0"})
    check_environment({})
