"""One ticker's failure keeps the others' data; the circuit breaker fails runs fast during an outage."""

import dagster as dg
import psycopg
import pytest

from trading_data.db.io_manager import PostgresPandasIOManager
from trading_data.db.resources import MarketDatabase
from trading_data.definitions import ASSETS
from trading_data.settings import PipelineSettingsResource
from trading_data.sources.breaker import CircuitBreaker
from trading_data.sources.resources import PolygonResource, UnusualWhalesResource
from trading_data.sources.simulator.faults import Fault
from trading_data.sources.simulator.market import SimulatedMarket
from trading_data.sources.simulator.server import SimulatorServer

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("end_to_end")]

SESSION = "2026-11-25"


@pytest.fixture(scope="module")
def tickers() -> list[str]:
    profiles = sorted(
        (p for p in SimulatedMarket().universe() if p.avg_volume >= 400_000), key=lambda p: p.avg_volume
    )
    return sorted(p.ticker for p in profiles[:3])


def _run(
    url: str, sim_url: str, tickers: list[str], selection: list[str], strict: bool = False
) -> dg.ExecuteInProcessResult:
    resources = {
        "io_manager": PostgresPandasIOManager(database_url=url),
        "database": MarketDatabase(database_url=url),
        "settings": PipelineSettingsResource(symbols=tickers, strict_validation=strict),
        "polygon": PolygonResource(
            source="simulated",
            simulator_url=sim_url,
            retry_attempts=2,
            retry_initial_wait_seconds=0.01,
            retry_min_wait_after_429_seconds=0.01,
        ),
        "unusual_whales": UnusualWhalesResource(
            source="simulated", simulator_url=sim_url, retry_initial_wait_seconds=0.01
        ),
    }
    return dg.materialize(
        ASSETS, partition_key=SESSION, resources=resources, selection=selection, raise_on_error=False
    )


def _tickers_stored(url: str) -> set[str]:
    with psycopg.connect(url) as conn:
        return {r[0] for r in conn.execute("SELECT DISTINCT ticker FROM market.trades")}


@pytest.mark.parametrize("strict", [False, True])
def test_one_ticker_failing_keeps_the_others(clean_market: str, tickers: list[str], strict: bool) -> None:
    broken = tickers[1]
    with SimulatorServer() as sim:
        assert _run(clean_market, sim.base_url, tickers, ["selected_tickers"]).success
        sim.faults.replace([Fault(kind="http_403", path_prefix=f"/v3/trades/{broken}", count=None)])
        result = _run(clean_market, sim.base_url, tickers, ["trades"], strict=strict)
    assert _tickers_stored(clean_market) == set(tickers) - {broken}
    if strict:
        assert not result.success
        failure = result.failure_data_for_node("trades")
        assert failure is not None
        assert broken in str(failure.error) and "the others were stored" in str(failure.error)
    else:
        assert result.success
        metadata = result.asset_materializations_for_node("trades")[0].metadata
        assert metadata["tickers_failed"].value == 1
        assert "403" in str(metadata["failed_tickers"].value[broken])


def test_outage_opens_the_breaker_and_runs_fail_fast(clean_market: str, tickers: list[str]) -> None:
    database = MarketDatabase(database_url=clean_market)
    CircuitBreaker(database.url, database.schema_name, vendor="polygon").reset()
    with SimulatorServer() as sim:
        assert _run(clean_market, sim.base_url, tickers, ["selected_tickers"]).success
        sim.faults.replace([Fault(kind="http_5xx_html", path_prefix="/v3/quotes", count=None)])
        for _ in range(5):  # the default threshold: five failed runs in a row
            assert not _run(clean_market, sim.base_url, tickers, ["quotes"]).success
        requests_before = sim.stats.snapshot()["total"]
        fast = _run(clean_market, sim.base_url, tickers, ["quotes"])
        assert sim.stats.snapshot()["total"] == requests_before  # failed without calling the vendor
    assert not fast.success
    failure = fast.failure_data_for_node("quotes")
    assert failure is not None and "polygon circuit open since" in str(failure.error)
    assert CircuitBreaker(database.url, database.schema_name, vendor="polygon").state().state == "open"
    CircuitBreaker(database.url, database.schema_name, vendor="polygon").reset()


def test_an_outage_counts_only_against_the_vendor_that_is_down(clean_market: str, tickers: list[str]) -> None:
    database = MarketDatabase(database_url=clean_market)
    for vendor in ("polygon", "unusual_whales"):
        CircuitBreaker(database.url, database.schema_name, vendor=vendor).reset()
    with SimulatorServer() as sim:
        assert _run(clean_market, sim.base_url, tickers, ["selected_tickers"]).success
        sim.faults.replace([Fault(kind="http_5xx_html", path_prefix="/api/option-trades", count=None)])
        assert not _run(clean_market, sim.base_url, tickers, ["options_flow"]).success
    assert (
        CircuitBreaker(database.url, database.schema_name, vendor="unusual_whales")
        .state()
        .consecutive_failures
        > 0
    )
    assert (
        CircuitBreaker(database.url, database.schema_name, vendor="polygon").state().consecutive_failures == 0
    )
    for vendor in ("polygon", "unusual_whales"):
        CircuitBreaker(database.url, database.schema_name, vendor=vendor).reset()


def _retries(result: dg.ExecuteInProcessResult) -> int:
    return sum(e.event_type == dg.DagsterEventType.STEP_UP_FOR_RETRY for e in result.all_events)


def test_a_rejected_key_fails_the_feed_once(clean_market: str, tickers: list[str]) -> None:
    """401 on every ticker: no retry can help, so the step fails at once (README: 401 is not retried)."""
    with SimulatorServer() as sim:
        assert _run(clean_market, sim.base_url, tickers, ["selected_tickers"]).success
        sim.faults.replace([Fault(kind="http_401", path_prefix="/v3/trades", count=None)])
        result = _run(clean_market, sim.base_url, tickers, ["trades"])
    assert not result.success and _retries(result) == 0
    failure = result.failure_data_for_node("trades")
    assert failure is not None and "401" in str(failure.error)


def test_a_rejected_key_fails_selection_instead_of_falling_back(
    clean_market: str, tickers: list[str]
) -> None:
    with SimulatorServer() as sim:
        sim.faults.replace([Fault(kind="http_401", path_prefix="/v2/aggs/grouped", count=None)])
        result = _run(clean_market, sim.base_url, [], ["selected_tickers"])
    assert not result.success and _retries(result) == 0
    failure = result.failure_data_for_node("selected_tickers")
    assert failure is not None and "401" in str(failure.error)
