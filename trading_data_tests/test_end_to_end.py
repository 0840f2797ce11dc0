"""Whole sessions end to end: every asset from the in-process simulator into a real PostgreSQL."""

import datetime as dt

import dagster as dg
import psycopg
import pytest

from trading_data.db.io_manager import PostgresPandasIOManager
from trading_data.db.resources import MarketDatabase
from trading_data.definitions import ASSET_CHECKS, ASSETS
from trading_data.schemas import TABLES
from trading_data.settings import PipelineSettingsResource
from trading_data.sources.resources import PolygonResource, UnusualWhalesResource
from trading_data.sources.simulator.market import SimulatedMarket

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("end_to_end")]

SESSION = "2026-11-25"


@pytest.fixture(scope="module")
def quiet_tickers() -> list[str]:
    """Three thinly traded tickers with flow alerts on the test sessions: whole sessions stay small."""
    market = SimulatedMarket()
    days = [dt.date(2026, 11, 25), dt.date(2026, 11, 27)]
    profiles = sorted((p for p in market.universe() if p.avg_volume >= 300_000), key=lambda p: p.avg_volume)
    chosen = [p.ticker for p in profiles if all(market.flow_alerts(p.ticker, d) for d in days)][:3]
    assert len(chosen) == 3
    return sorted(chosen)


def _resources(url: str, **settings: object) -> dict:
    return {
        "io_manager": PostgresPandasIOManager(database_url=url),
        "database": MarketDatabase(database_url=url),
        "settings": PipelineSettingsResource(**settings),
        "polygon": PolygonResource(source="simulated", retry_initial_wait_seconds=0.01),
        "unusual_whales": UnusualWhalesResource(source="simulated", retry_initial_wait_seconds=0.01),
    }


def _materialize(url: str, partition: str, **settings: object) -> dg.ExecuteInProcessResult:
    return dg.materialize(
        [*ASSETS, *ASSET_CHECKS], partition_key=partition, resources=_resources(url, **settings)
    )


def _snapshot(url: str) -> dict[str, tuple[int, str]]:
    """Row count and an order-independent checksum of every market table."""
    out = {}
    with psycopg.connect(url) as conn:
        for name, spec in TABLES.items():
            volatile = {"selected_at", "computed_at", "freshness_minutes"}
            columns = ", ".join(c for c in spec.columns if c not in volatile)
            key = ", ".join(spec.primary_key)
            row = conn.execute(
                f"SELECT count(*), md5(coalesce(string_agg(r::text, '|' ORDER BY r::text), '')) "
                f"FROM (SELECT {columns} FROM market.{name} ORDER BY {key}) r"
            ).fetchone()
            assert row is not None
            out[name] = (int(row[0]), row[1])
    return out


def test_whole_session_then_again_changes_nothing(clean_market: str, quiet_tickers: list[str]) -> None:
    result = _materialize(clean_market, SESSION, symbols=quiet_tickers)
    assert result.success
    first = _snapshot(clean_market)
    for table in (
        "selected_tickers",
        "position_sizes",
        "prices",
        "quotes",
        "trades",
        "options_flow",
        "indicators",
        "daily_report",
    ):
        assert first[table][0] > 0, f"{table} is empty"
    assert first["selected_tickers"][0] == len(quiet_tickers)

    with psycopg.connect(clean_market) as conn:
        tickers = {r[0] for r in conn.execute("SELECT DISTINCT ticker FROM market.quotes")}
        minutes = conn.execute(
            "SELECT count(DISTINCT ts) FROM market.prices WHERE timespan = 'day'"
        ).fetchone()
        bad_time = conn.execute(
            "SELECT count(*) FROM market.trades WHERE (ts AT TIME ZONE 'America/New_York')::date <> %s",
            (SESSION,),
        ).fetchone()
        report_tables = {r[0] for r in conn.execute("SELECT DISTINCT table_name FROM market.daily_report")}
    assert tickers == set(quiet_tickers)
    assert minutes == (1,)
    assert bad_time == (0,)
    assert {"prices", "quotes", "trades", "indicators"} <= report_tables

    materialization = result.asset_materializations_for_node("quotes")[0]
    assert materialization.metadata["polygon/requests"].value >= len(quiet_tickers)
    assert materialization.metadata["tickers_failed"].value == 0
    report_md = result.asset_materializations_for_node("daily_report")[0].metadata["report"].value
    assert "data:image/png;base64," in report_md

    again = _materialize(clean_market, SESSION, symbols=quiet_tickers)
    assert again.success
    assert _snapshot(clean_market) == first


def test_backfill_over_a_holiday(clean_market: str, quiet_tickers: list[str]) -> None:
    # 2026-11-25, (Thanksgiving 11-26 is no partition), 2026-11-27 early close.
    from trading_data.partitions import session_partitions

    keys = session_partitions.get_partition_keys_in_range(dg.PartitionKeyRange("2026-11-25", "2026-11-27"))
    assert keys == ["2026-11-25", "2026-11-27"]
    for key in keys:
        assert _materialize(clean_market, key, symbols=quiet_tickers).success
    with psycopg.connect(clean_market) as conn:
        days = [
            r[0].isoformat()
            for r in conn.execute(
                "SELECT DISTINCT (ts AT TIME ZONE 'America/New_York')::date FROM market.prices ORDER BY 1"
            )
        ]
        late = conn.execute(
            "SELECT count(*) FROM market.prices WHERE timespan = 'minute' AND "
            "(ts AT TIME ZONE 'America/New_York')::time >= '13:00' AND "
            "(ts AT TIME ZONE 'America/New_York')::date = '2026-11-27'"
        ).fetchone()
        warm = conn.execute(
            "SELECT count(*) FROM market.indicators WHERE "
            "(ts AT TIME ZONE 'America/New_York')::date = '2026-11-27' AND ema_26 IS NULL"
        ).fetchone()
    assert days == keys
    assert late == (0,)
    # The 11-25 bars warm the 11-27 indicators up: no leading NaNs on the second session.
    assert warm == (0,)


def test_strict_validation_off_sends_bad_rows_to_rejects(clean_market: str) -> None:
    from trading_data.orchestration.steps import ChunkValidator
    from trading_data_tests.factories import sample_frame

    stored: list = []
    validator = ChunkValidator("quotes", strict=False, on_rejects=stored.append)
    frame = sample_frame("quotes", SESSION, 6)
    frame.loc[1, "bid_price"] = -5.0
    kept = validator(frame)
    assert len(kept) == 5 and validator.failures == 1
    assert stored[0]["reject_reason"].iloc[0] == "bid_price: greater_than_or_equal_to(0) failed (value -5.0)"
    database = MarketDatabase(database_url=clean_market)
    assert database.record_rejects("quotes", SESSION, "run-1", stored[0]) == 1
    assert database.reject_counts(SESSION) == {("quotes", frame.loc[1, "ticker"]): 1}


def test_bad_setting_fails_at_launch_naming_the_option(clean_market: str) -> None:
    with pytest.raises(Exception, match="max_active_tickers"):
        _materialize(clean_market, SESSION, max_active_tickers=-3)
