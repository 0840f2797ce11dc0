"""5-minute and hourly bars equal a pandas resample of the minute bars: the plain-PostgreSQL tables the
asset fills, and the TimescaleDB continuous aggregates' own SELECT (run here on PostgreSQL with stand-ins
for time_bucket/first/last; on a server with the extension, the continuous aggregates themselves)."""

from __future__ import annotations

import datetime as dt

import dagster as dg
import pandas as pd
import psycopg
import pytest

from trading_data.calendar import session_window
from trading_data.db import aggregate_sql, aggregates
from trading_data.db.migrate import migrate, timescale_available
from trading_data.db.queries import read_frame
from trading_data.definitions import ASSETS
from trading_data.sources.simulator.server import SimulatorServer
from trading_data_tests.factories import simulator_resources, small_tickers

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("end_to_end")]

NOW = dt.datetime(2026, 11, 27, 18, tzinfo=dt.timezone(dt.timedelta(hours=-5)))
SESSION = "2026-11-25"
COLUMNS = ["open", "high", "low", "close", "volume", "vwap", "transactions", "minute_bars"]
# Stand-ins for TimescaleDB's time_bucket, first and last on plain PostgreSQL, in a schema of their own.
STAND_INS = """
CREATE SCHEMA IF NOT EXISTS tsdb_stand_in;
CREATE OR REPLACE FUNCTION tsdb_stand_in.time_bucket(interval, timestamptz) RETURNS timestamptz
    LANGUAGE sql IMMUTABLE AS $$ SELECT date_bin($1, $2, TIMESTAMPTZ '2000-01-03 00:00+00') $$;
CREATE OR REPLACE FUNCTION tsdb_stand_in.first_step(s float8[], v float8, t timestamptz) RETURNS float8[]
    LANGUAGE sql IMMUTABLE AS $$ SELECT CASE WHEN s IS NULL OR extract(epoch FROM t) < s[2]
    THEN ARRAY[v, extract(epoch FROM t)::float8] ELSE s END $$;
CREATE OR REPLACE FUNCTION tsdb_stand_in.last_step(s float8[], v float8, t timestamptz) RETURNS float8[]
    LANGUAGE sql IMMUTABLE AS $$ SELECT CASE WHEN s IS NULL OR extract(epoch FROM t) >= s[2]
    THEN ARRAY[v, extract(epoch FROM t)::float8] ELSE s END $$;
CREATE OR REPLACE FUNCTION tsdb_stand_in.value_of(s float8[]) RETURNS float8
    LANGUAGE sql IMMUTABLE AS $$ SELECT s[1] $$;
CREATE OR REPLACE AGGREGATE tsdb_stand_in.first(float8, timestamptz)
    (sfunc = tsdb_stand_in.first_step, stype = float8[], finalfunc = tsdb_stand_in.value_of);
CREATE OR REPLACE AGGREGATE tsdb_stand_in.last(float8, timestamptz)
    (sfunc = tsdb_stand_in.last_step, stype = float8[], finalfunc = tsdb_stand_in.value_of);
"""


def resampled(minutes: pd.DataFrame, rule: str) -> pd.DataFrame:
    """The expected bars: pandas' resample of each ticker's minute bars (UTC-aligned buckets)."""
    frames = []
    for ticker, bars in minutes.groupby("ticker"):
        bars = bars.set_index("ts").sort_index()
        bars["pv"] = bars["vwap"] * bars["volume"]
        grouped = bars.resample(rule, label="left", closed="left")
        out = grouped.agg(
            {"open": "first", "high": "max", "low": "min", "close": "last", "volume": "sum", "pv": "sum"}
        )
        out["transactions"] = grouped["transactions"].sum()
        out["minute_bars"] = grouped["close"].count()
        out = out[out["minute_bars"] > 0]
        out["vwap"] = out["pv"] / out["volume"]
        frames.append(out.drop(columns="pv").assign(ticker=ticker).reset_index())
    return pd.concat(frames).sort_values(["ticker", "ts"]).reset_index(drop=True)


def _normalised(frame: pd.DataFrame) -> pd.DataFrame:
    frame = frame.assign(ts=pd.to_datetime(frame["ts"], utc=True)).sort_values(["ticker", "ts"])
    frame = frame.reset_index(drop=True)[["ts", "ticker", *COLUMNS]]
    return frame.astype({c: "float64" for c in COLUMNS})


@pytest.fixture(scope="module")
def session_prices(database_url: str) -> pd.DataFrame:
    """One session of two tickers' minute bars from the simulator, stored by the real assets, and the
    bar_aggregates asset materialized after them; returns the stored minute bars."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("TRUNCATE market.prices, market.selected_tickers, market.bars_5m, market.bars_1h")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TRADING_DATA_NOW", NOW.isoformat())
        with SimulatorServer(now=lambda: NOW) as sim:
            resources = simulator_resources(database_url, sim.base_url, tickers=small_tickers(2))
            result = dg.materialize(
                ASSETS,
                partition_key=SESSION,
                resources=resources,
                selection=["selected_tickers", "prices", "bar_aggregates"],
            )
    assert result.success
    with psycopg.connect(database_url) as conn:
        return read_frame(
            conn,
            "SELECT ts, ticker, open, high, low, close, volume, vwap, transactions FROM market.prices "
            "WHERE timespan = 'minute'",
        ).assign(ts=lambda f: pd.to_datetime(f["ts"], utc=True))


@pytest.mark.parametrize(("table", "rule"), [("bars_5m", "5min"), ("bars_1h", "1h")])
def test_the_asset_stores_a_resample_of_the_minute_bars(
    database_url: str, session_prices: pd.DataFrame, table: str, rule: str
) -> None:
    assert len(session_prices) > 500
    with psycopg.connect(database_url) as conn:
        stored = read_frame(conn, f"SELECT * FROM market.{table}")
    expected = resampled(session_prices, rule)
    pd.testing.assert_frame_equal(_normalised(stored), _normalised(expected), check_exact=False, rtol=1e-9)


def test_refreshing_again_replaces_the_window_without_duplicates(
    database_url: str, session_prices: pd.DataFrame
) -> None:
    start, end = session_window(SESSION)
    first = aggregates.refresh(database_url, "market", start, end)
    again = aggregates.refresh(database_url, "market", start, end)
    assert (
        first
        == again
        == {
            "bars_5m": len(resampled(session_prices, "5min")),
            "bars_1h": len(resampled(session_prices, "1h")),
        }
    )


@pytest.mark.parametrize(("name", "rule"), [("bars_5m", "5min"), ("bars_1h", "1h")])
def test_the_continuous_aggregates_select_is_the_same_resample(
    database_url: str, session_prices: pd.DataFrame, name: str, rule: str
) -> None:
    select = aggregate_sql.aggregate_select("market", aggregate_sql.AGGREGATES[name], "timescaledb")
    with psycopg.connect(database_url) as conn:
        conn.execute(STAND_INS)
        conn.execute("SET LOCAL search_path = tsdb_stand_in, public")
        got = read_frame(conn, select)
        conn.rollback()
    pd.testing.assert_frame_equal(
        _normalised(got), _normalised(resampled(session_prices, rule)), check_exact=False, rtol=1e-9
    )


def test_one_run_refreshes_a_range_of_sessions(database_url: str, session_prices: pd.DataFrame) -> None:
    """bar_aggregates has a single-run BackfillPolicy: a run over a partition range refreshes every
    session of it in one step."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("TRUNCATE market.bars_5m, market.bars_1h")
    result = dg.materialize(
        ASSETS,
        resources=simulator_resources(database_url, "http://127.0.0.1:9"),  # no vendor is called
        selection=["bar_aggregates"],
        tags={
            "dagster/asset_partition_range_start": "2026-11-24",
            "dagster/asset_partition_range_end": SESSION,
        },
    )
    assert result.success
    # One step, one materialization per session of the range.
    materializations = result.asset_materializations_for_node("bar_aggregates")
    assert sorted(m.partition for m in materializations) == ["2026-11-24", SESSION]
    assert materializations[0].metadata["bars_5m/rows"].value == len(resampled(session_prices, "5min"))
    with psycopg.connect(database_url) as conn:
        assert conn.execute("SELECT count(*) FROM market.bars_1h").fetchone() == (
            len(resampled(session_prices, "1h")),
        )


def test_retention_ddl_follows_the_settings() -> None:
    assert aggregate_sql.retention_ddl("market", {"quotes": 90, "prices": 0}) == [
        "SELECT remove_retention_policy('market.quotes', if_exists => TRUE)",
        "SELECT add_retention_policy('market.quotes', drop_after => INTERVAL '90 days')",
        "SELECT remove_retention_policy('market.prices', if_exists => TRUE)",
    ]


def test_status_of_a_plain_schema_says_retention_is_not_enforced(database_url: str) -> None:
    """Plain mode is per schema: on a server with TimescaleDB too, a schema migrated in plain mode has
    tables, keeps every row and compresses nothing."""
    migrate(database_url, "market_plain", mode="postgres")
    state = aggregates.status(database_url, "market_plain")
    assert state["aggregates"] == {"bars_5m": "table", "bars_1h": "table"}
    assert state["retention"] == {
        "configured": {
            "quotes": "90 days",
            "trades": "365 days",
            "prices": "forever",
            "options_flow": "forever",
        },
        "enforced": "no: plain PostgreSQL keeps every row",
    }
    assert state["compression"] == "not available: plain PostgreSQL"


def _require_timescale(url: str) -> None:
    with psycopg.connect(url) as conn:
        if not timescale_available(conn):
            pytest.skip("the timescaledb extension is not installed on this server")


def test_timescaledb_continuous_aggregates_and_policies(database_url: str) -> None:
    _require_timescale(database_url)
    migrate(database_url, "market", mode="timescaledb")
    state = aggregates.status(database_url, "market")
    assert state["aggregates"] == {"bars_5m": "continuous aggregate", "bars_1h": "continuous aggregate"}
    assert state["retention"]["policies"]["quotes"] == "90 days"  # type: ignore[index]
    assert state["retention"]["enforced"].startswith("yes")  # type: ignore[index]


def test_timescaledb_retention_follows_the_setting_and_drops_old_chunks(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Live TimescaleDB: the configured retention is the policy; running it drops the chunks past it and
    keeps the rest; `db status` counts the compressed chunks; 0 days removes the policy. Times are relative
    to the server's clock, so this holds on any day."""
    _require_timescale(database_url)
    schema = "market_retention"
    monkeypatch.setenv("TRADING_DATA_RETENTION_QUOTES_DAYS", "30")
    migrate(database_url, schema, mode="timescaledb")
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(f"TRUNCATE {schema}.quotes")
        for days_ago in (60, 1):
            conn.execute(
                f"INSERT INTO {schema}.quotes (ts, ticker, sequence_number, sip_ns, bid_price, bid_size, "
                "ask_price, ask_size) VALUES (now() - make_interval(days => %s), 'AAPL', 1, 1, 1, 1, 2, 1)",
                (days_ago,),
            )
        conn.execute(
            f"SELECT compress_chunk(c) FROM show_chunks('{schema}.quotes', older_than => INTERVAL '45 days') c"
        )
        state = aggregates.status(database_url, schema)
        assert state["retention"]["policies"] == {"quotes": "30 days", "trades": "365 days"}  # type: ignore[index]
        assert state["compression"]["quotes"] == {  # type: ignore[index]
            "compress_after": "45 days",
            "chunks": 2,
            "compressed_chunks": 1,
        }
        [(job,)] = conn.execute(
            "SELECT job_id FROM timescaledb_information.jobs WHERE proc_name = 'policy_retention' "
            "AND hypertable_schema = %s AND hypertable_name = 'quotes'",
            (schema,),
        ).fetchall()
        conn.execute("CALL run_job(%s)", (job,))
        remaining = conn.execute(f"SELECT now() - ts < INTERVAL '30 days' FROM {schema}.quotes").fetchall()
        assert remaining == [(True,)]
    monkeypatch.setenv("TRADING_DATA_RETENTION_QUOTES_DAYS", "0")
    migrate(database_url, schema, mode="timescaledb")
    state = aggregates.status(database_url, schema)
    assert state["retention"]["policies"] == {"trades": "365 days"}  # type: ignore[index]
