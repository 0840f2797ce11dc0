"""Settings from the environment, the Dagster resources and the per-ticker concurrency helper."""

from __future__ import annotations

import asyncio
import logging
import re

import dagster as dg
import pytest

from trading_data.settings import ConfigurationError, SettingsError
from trading_data.sources import settings as settings_module
from trading_data.sources.rate_limit import RateLimit
from trading_data.sources.resources import PolygonResource, UnusualWhalesResource, polygon_resource
from trading_data.sources.settings import SIMULATED_RATE_LIMIT, SourceSettings


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch):
    for name in [
        "POLYGON_API_KEY",
        "UNUSUAL_WHALES_API_TOKEN",
        "TRADING_DATA_SOURCE",
        "POLYGON_BASE_URL",
        "UNUSUAL_WHALES_BASE_URL",
        "POLYGON_RATE_LIMIT_PER_MINUTE",
        "UNUSUAL_WHALES_RATE_LIMIT_PER_MINUTE",
        "TRADING_DATA_MAX_CONCURRENCY",
        "TRADING_DATA_SIMULATOR_URL",
    ]:
        monkeypatch.delenv(name, raising=False)
    settings_module._logged_simulated.clear()


def test_no_keys_means_simulated_logged_once(caplog):
    caplog.set_level(logging.WARNING, logger="trading_data.sources.settings")
    first = SourceSettings.from_env({})
    SourceSettings.from_env({})
    assert first.polygon.mode == first.unusual_whales.mode == "simulated"
    assert first.polygon.rate_limit == SIMULATED_RATE_LIMIT
    messages = [r.getMessage() for r in caplog.records]
    assert messages == ["no POLYGON_API_KEY/UNUSUAL_WHALES_API_TOKEN set: using the offline market simulator"]


def test_default_concurrency_keeps_enough_requests_in_flight():
    # ~100 ms a request: 8 in flight reach ~80 requests/s (the old 4 capped a run near 40/s)
    assert SourceSettings.from_env({}).max_concurrency == 8


def test_keys_mean_live_with_plan_rate_limits():
    s = SourceSettings.from_env(
        {
            "POLYGON_API_KEY": "pk",
            "UNUSUAL_WHALES_API_TOKEN": "uw",
            "UNUSUAL_WHALES_RATE_LIMIT_PER_MINUTE": "240",
            "TRADING_DATA_MAX_CONCURRENCY": "12",
        }
    )
    assert s.polygon.mode == "live" and s.polygon.rate_limit == RateLimit(5, 60)
    assert s.unusual_whales.rate_limit == RateLimit(240, 60) and s.max_concurrency == 12
    assert s.polygon.base_url == "https://api.polygon.io"
    assert s.unusual_whales.base_url == "https://api.unusualwhales.com"
    assert "pk" not in repr(s) and "'uw'" not in repr(s)


def test_forced_live_without_key_names_the_variable():
    s = SourceSettings.from_env({"TRADING_DATA_SOURCE": "live"})
    with pytest.raises(ValueError, match="POLYGON_API_KEY"):
        s.polygon.require_key()


def test_invalid_settings_are_named():
    with pytest.raises(ConfigurationError) as err:
        SourceSettings.from_env({"TRADING_DATA_SOURCE": "prod"})
    assert str(err.value) == "invalid setting TRADING_DATA_SOURCE='prod': must be 'live' or 'simulated'"
    with pytest.raises(ConfigurationError) as err:
        SourceSettings.from_env({"POLYGON_RATE_LIMIT_PER_MINUTE": "0"})
    assert str(err.value) == "invalid setting POLYGON_RATE_LIMIT_PER_MINUTE='0': must be at least 1, got 0"


@pytest.mark.parametrize(
    ("name", "raw", "problem"),
    [
        ("TRADING_DATA_MAX_CONCURRENCY", "eight", "must be an integer, got 'eight'"),
        ("TRADING_DATA_MAX_CONCURRENCY", "-2", "must be at least 1, got -2"),
        ("UNUSUAL_WHALES_RATE_LIMIT_PER_MINUTE", "true", "must be an integer, got 'true'"),
        ("POLYGON_RATE_LIMIT_PER_MINUTE", "2.5", "must be an integer, got '2.5'"),
    ],
)
def test_vendor_numbers_use_the_one_set_of_parsers(name, raw, problem):
    with pytest.raises(SettingsError) as err:
        SourceSettings.from_env({name: raw})
    assert err.value.env_var == name
    assert str(err.value) == f"invalid setting {name}={raw!r}: {problem}"


def test_blank_vendor_variables_mean_the_default():
    s = SourceSettings.from_env({"POLYGON_RATE_LIMIT_PER_MINUTE": "", "TRADING_DATA_MAX_CONCURRENCY": " "})
    assert s.polygon.live_rate_limit == RateLimit.per_minute(5) and s.max_concurrency == 8


def test_resource_config_errors_name_the_run_config():
    with pytest.raises(SettingsError, match=re.escape("rate_limit_per_minute (from the run config: 0)")):
        PolygonResource(rate_limit_per_minute=0).vendor_settings()
    with pytest.raises(SettingsError, match=re.escape("max_concurrency (from the run config: -1)")):
        PolygonResource(max_concurrency=-1).concurrency()
    with pytest.raises(SettingsError, match=re.escape("source (from the run config: 'prod')")):
        PolygonResource(source="prod").vendor_settings()


def test_check_configuration_refuses_live_mode_without_a_key(monkeypatch):
    monkeypatch.setenv("TRADING_DATA_SOURCE", "live")
    with pytest.raises(ConfigurationError, match="TRADING_DATA_SOURCE=live but POLYGON_API_KEY is not set"):
        PolygonResource.check_configuration({"api_key": None})
    PolygonResource.check_configuration({"api_key": "pk_live"})
    UnusualWhalesResource.check_configuration({"api_token": "uw", "max_concurrency": 4})


def test_resource_settings_override_env():
    resource = PolygonResource(api_key="pk_live", base_url="https://example.test", rate_limit_per_minute=100)
    s = resource.vendor_settings()
    assert s.mode == "live" and s.base_url == "https://example.test" and s.rate_limit == RateLimit(100, 60)
    assert UnusualWhalesResource().vendor_settings().mode == "simulated"


def test_polygon_resource_uses_env_var_only_when_set(monkeypatch):
    assert polygon_resource().api_key is None
    monkeypatch.setenv("POLYGON_API_KEY", "pk_from_env")

    @dg.asset
    def probe(polygon: PolygonResource) -> str:
        return polygon.vendor_settings().mode

    result = dg.materialize([probe], resources={"polygon": polygon_resource()})
    assert result.output_for_node("probe") == "live"


def test_live_resource_client_uses_key_and_base_url(monkeypatch):
    monkeypatch.setenv("TRADING_DATA_RATE_LIMIT_STORE", "process")  # no database needed here
    resource = PolygonResource(api_key="pk_live", source="live", base_url="https://example.test")

    async def go() -> tuple[str, str]:
        async with resource.client() as client:
            return client.http.base_url, client.http._client.headers["authorization"]

    base_url, auth = asyncio.run(go())
    assert base_url.startswith("https://example.test") and auth == "Bearer pk_live"


def test_a_live_resource_shares_its_window_through_the_market_database(monkeypatch, database_url):
    from trading_data.sources.rate_limit import reset_rate_limiters

    monkeypatch.setenv("TRADING_DATA_DATABASE_URL", database_url)
    monkeypatch.delenv("TRADING_DATA_RATE_LIMIT_STORE", raising=False)
    monkeypatch.delenv("TRADING_DATA_REDIS_URL", raising=False)
    resource = PolygonResource(api_key="pk_live_shared", source="live", base_url="https://example.test")

    async def go() -> str:
        async with resource.client() as client:
            return client.http.limiter.store.kind

    try:
        assert asyncio.run(go()) == "postgres"
        simulated = PolygonResource(source="simulated")
        assert simulated.limiter_store(simulated.vendor_settings()).kind == "process"
    finally:
        reset_rate_limiters()


def test_feeds_bound_concurrency_and_isolate_failures():
    """The one per-ticker engine (the feeds' TickerFeed): at most max_concurrency tickers at once, one
    ticker's failure recorded while the others' pages flow."""
    from contextlib import asynccontextmanager

    import pandas as pd

    from trading_data.orchestration.feeds import TickerFeed

    active = {"now": 0, "max": 0}

    @asynccontextmanager
    async def clients():
        yield None

    async def fetch(_clients, ticker: str):
        active["now"] += 1
        active["max"] = max(active["max"], active["now"])
        await asyncio.sleep(0.01)
        active["now"] -= 1
        if ticker == "BAD":
            raise RuntimeError("vendor exploded")
        yield pd.DataFrame({"ticker": [ticker] * len(ticker)})

    tickers = ["AAPL", "BAD", "MSFT", "NVDA", "SPY", "QQQ"]
    feed = TickerFeed(feed="test", tickers=tickers, open_clients=clients, fetch=fetch, max_concurrency=2)
    pages = list(feed)
    assert sorted(len(p) for p in pages) == [3, 3, 4, 4, 4]
    assert feed.rows_by_ticker == {"AAPL": 4, "BAD": 0, "MSFT": 4, "NVDA": 4, "SPY": 3, "QQQ": 3}
    assert feed.failures == {"BAD": "RuntimeError: vendor exploded"}
    assert active["max"] == 2
