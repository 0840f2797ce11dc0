"""A closed session is recomputed, not extended; strict validation stores the healthy tickers only.

Against a real PostgreSQL server and the simulator over loopback HTTP (through a rewriting proxy where
the test needs vendor data the simulator never produces).
"""

from __future__ import annotations

import psycopg
import pytest

from trading_data.sources.simulator.server import SimulatorServer
from trading_data_tests.factories import materialize_session, small_tickers
from trading_data_tests.rewriting_proxy import RewritingProxy

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("end_to_end")]

SESSION = "2026-11-25"
AFTER_THE_CLOSE = "2026-11-25T18:00:00-05:00"


def _checksum(url: str, table: str) -> tuple[int, str]:
    """Row count and an md5 over every row, in key order: equal iff the stored rows are equal."""
    with psycopg.connect(url) as conn:
        row = conn.execute(
            f"SELECT count(*), md5(string_agg(t::text, '|' ORDER BY t::text)) FROM market.{table} t"
        ).fetchone()
    assert row is not None
    return int(row[0]), str(row[1])


@pytest.fixture
def after_the_close(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRADING_DATA_NOW", AFTER_THE_CLOSE)


def test_rematerializing_a_closed_session_restores_a_deleted_hour(
    clean_market: str, after_the_close: None
) -> None:
    tickers = small_tickers(2)
    with SimulatorServer() as sim:
        assert materialize_session(
            clean_market, sim.base_url, SESSION, ["selected_tickers"], tickers=tickers
        ).success
        first = materialize_session(clean_market, sim.base_url, SESSION, ["quotes", "trades"])
        assert first.success
        original = {t: _checksum(clean_market, t) for t in ("quotes", "trades")}
        assert all(n > 0 for n, _ in original.values())

        with psycopg.connect(clean_market, autocommit=True) as conn:
            for table in ("quotes", "trades"):
                conn.execute(
                    f"DELETE FROM market.{table} WHERE ticker = %s AND ts >= '2026-11-25T11:00:00-05:00' "
                    "AND ts < '2026-11-25T12:00:00-05:00'",
                    (tickers[0],),
                )
        assert all(_checksum(clean_market, t)[0] < original[t][0] for t in original)

        again = materialize_session(clean_market, sim.base_url, SESSION, ["quotes", "trades"])
        assert again.success
        assert {t: _checksum(clean_market, t) for t in original} == original
        metadata = again.asset_materializations_for_node("quotes")[0].metadata
        assert "whole session" in metadata["fetch_mode"].value

        # Re-running it leaves the same rows.
        assert materialize_session(clean_market, sim.base_url, SESSION, ["quotes", "trades"]).success
        assert {t: _checksum(clean_market, t) for t in original} == original


def test_a_closed_session_replaces_rows_the_vendor_no_longer_serves(
    clean_market: str, after_the_close: None
) -> None:
    """A stored row the vendor does not serve (a correction) is gone after the recompute."""
    tickers = small_tickers(2)
    with SimulatorServer() as sim:
        assert materialize_session(
            clean_market, sim.base_url, SESSION, ["selected_tickers"], tickers=tickers
        ).success
        assert materialize_session(clean_market, sim.base_url, SESSION, ["trades"]).success
        original = _checksum(clean_market, "trades")
        with psycopg.connect(clean_market, autocommit=True) as conn:
            conn.execute(
                "INSERT INTO market.trades SELECT ts + interval '1 microsecond', ticker, sequence_number + 1, "
                "exchange, trade_id || '-bad', sip_ns, participant_ns, price * 2, size, conditions, tape "
                "FROM market.trades WHERE ticker = %s LIMIT 5",
                (tickers[0],),
            )
        assert _checksum(clean_market, "trades") != original
        assert materialize_session(clean_market, sim.base_url, SESSION, ["trades"]).success
        assert _checksum(clean_market, "trades") == original


def _corrupt_third_page(broken: str):  # type: ignore[no-untyped-def]
    """Small pages for ``broken``'s quotes, and a negative bid (impossible) on its third page."""
    pages = {"n": 0}

    def rewrite_query(path: str, query: dict[str, str]) -> dict[str, str]:
        if path == f"/v3/quotes/{broken}":
            query["limit"] = "500"
        return query

    def rewrite(path: str, query: dict[str, str], payload: dict) -> dict:  # type: ignore[type-arg]
        if path == f"/v3/quotes/{broken}" and payload.get("results"):
            pages["n"] += 1
            if pages["n"] == 3:
                payload["results"][0]["bid_price"] = -1.0
        return payload

    return rewrite, rewrite_query, pages


def test_strict_validation_stores_the_healthy_tickers_and_fails_naming_the_broken_one(
    clean_market: str, after_the_close: None
) -> None:
    tickers = small_tickers(2)
    healthy, broken = tickers
    rewrite, rewrite_query, pages = _corrupt_third_page(broken)
    with SimulatorServer() as sim, RewritingProxy(sim.base_url, rewrite, rewrite_query) as proxy:
        assert materialize_session(
            clean_market, proxy.base_url, SESSION, ["selected_tickers"], tickers=tickers
        ).success
        result = materialize_session(clean_market, proxy.base_url, SESSION, ["quotes"], strict=True)
    assert pages["n"] >= 3, "the broken ticker's quotes must span several pages for this test"
    assert not result.success
    failure = result.failure_data_for_node("quotes")
    assert failure is not None
    message = str(failure.error)
    assert broken in message and "the others were stored" in message and "bid_price" in message
    with psycopg.connect(clean_market) as conn:
        stored = dict(conn.execute("SELECT ticker, count(*) FROM market.quotes GROUP BY ticker").fetchall())
    # The healthy ticker's quotes are stored; none of the broken one's, not even its two good pages.
    assert set(stored) == {healthy} and stored[healthy] > 0


def test_lenient_validation_sets_the_bad_row_aside_and_stores_the_rest(
    clean_market: str, after_the_close: None
) -> None:
    tickers = small_tickers(2)
    broken = tickers[1]
    rewrite, rewrite_query, _ = _corrupt_third_page(broken)
    with SimulatorServer() as sim, RewritingProxy(sim.base_url, rewrite, rewrite_query) as proxy:
        assert materialize_session(
            clean_market, proxy.base_url, SESSION, ["selected_tickers"], tickers=tickers
        ).success
        result = materialize_session(clean_market, proxy.base_url, SESSION, ["quotes"])
        clean = materialize_session(clean_market, sim.base_url, SESSION, ["quotes"])
    assert result.success and clean.success
    with psycopg.connect(clean_market) as conn:
        rejects = conn.execute(
            "SELECT count(*) FROM market.rejects WHERE table_name = 'quotes' AND record->>'ticker' = %s",
            (broken,),
        ).fetchone()
    assert rejects is not None and rejects[0] == 1
    assert result.asset_materializations_for_node("quotes")[0].metadata["validation_failures"].value == 1
