"""trading_data.read against what the assets stored (read back independently with psycopg): values,
the models' dtypes, inclusive/exclusive bounds, New York time across the DST change of 2026-11-01 and
the Thanksgiving holiday, Arrow tables and bounded chunks."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pyarrow as pa
import pytest

from trading_data import read
from trading_data.calendar import session_window
from trading_data.db.aggregate_sql import AGGREGATE_COLUMNS
from trading_data.read.api import current_session
from trading_data.schemas import TABLES
from trading_data_tests.read.conftest import NOW, Stored

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("read")]
NY = "America/New_York"


def stored_frame(stored: Stored, table: str, where: str = "", params: tuple = ()) -> pd.DataFrame:
    """The table's rows as psycopg returns them, coerced by the model, in the read API's order."""
    spec = TABLES[table]
    rows = stored.rows(f"SELECT {', '.join(spec.columns)} FROM market.{table} {where}", params)
    frame = spec.model.validate(pd.DataFrame(rows, columns=spec.columns))
    order = [spec.time_column, *(c for c in spec.primary_key if c != spec.time_column)]
    return frame.sort_values(order, ignore_index=True)


def assert_model_dtypes(table: str, frame: pd.DataFrame) -> None:
    """Validating with the model (coerce=True) changes no dtype: the frame already has the model's."""
    validated = TABLES[table].model.validate(frame.copy())
    assert dict(frame.dtypes) == dict(validated.dtypes)
    assert list(frame.columns) == TABLES[table].columns


def window(first: str, last: str) -> tuple[dt.datetime, dt.datetime]:
    return session_window(first)[0], session_window(last)[1]


@pytest.mark.parametrize(
    ("function", "table", "extra"),
    [
        (read.quotes, "quotes", ""),
        (read.trades, "trades", ""),
        (read.options_flow, "options_flow", ""),
        (read.indicators, "indicators", ""),
        (lambda *a, **k: read.bars(*a, **k), "prices", "AND timespan = 'minute'"),
        (lambda *a, **k: read.bars(*a, timespan="day", **k), "prices", "AND timespan = 'day'"),
    ],
    ids=["quotes", "trades", "options_flow", "indicators", "minute_bars", "day_bars"],
)
def test_each_time_table_reads_what_the_assets_stored(stored: Stored, function, table, extra) -> None:
    ticker = stored.tickers[0]
    got = function([ticker], sessions=("2026-10-30", "2026-11-02"), database_url=stored.url)
    expected = stored_frame(
        stored,
        table,
        f"WHERE ticker = %s AND ts >= %s AND ts < %s {extra}",
        (ticker, *window("2026-10-30", "2026-11-02")),
    )
    assert len(expected) > 0
    assert_model_dtypes(table, got)
    pd.testing.assert_frame_equal(got, expected)


@pytest.mark.parametrize(
    ("function", "table"), [(read.selections, "selected_tickers"), (read.positions, "position_sizes")]
)
def test_session_tables_read_what_the_assets_stored(stored: Stored, function, table) -> None:
    got = function(start="2026-11-02", end="2026-11-27", database_url=stored.url)  # end exclusive
    expected = stored_frame(stored, table, "WHERE session IN ('2026-11-02', '2026-11-25')")
    assert set(got["session"]) == {dt.date(2026, 11, 2), dt.date(2026, 11, 25)}
    assert_model_dtypes(table, got)
    pd.testing.assert_frame_equal(got, expected)
    one = function(stored.tickers[1], sessions="2026-11-27", database_url=stored.url)
    assert set(one["ticker"]) == {stored.tickers[1]} and set(one["session"]) == {dt.date(2026, 11, 27)}


def test_start_is_inclusive_end_exclusive_in_new_york_time_across_the_dst_change(stored: Stored) -> None:
    ticker = stored.tickers[0]
    for day, utc_open in (("2026-10-30", "13:30"), ("2026-11-02", "14:30")):  # EDT, then EST
        got = read.bars(ticker, f"{day} 09:30", f"{day} 09:35", tz=NY, database_url=stored.url)
        assert len(got) == 5, day
        assert str(got["ts"].dtype) == "datetime64[ns, America/New_York]"
        assert got["ts"].iloc[0] == pd.Timestamp(f"{day} 09:30", tz=NY)
        assert got["ts"].iloc[-1] == pd.Timestamp(f"{day} 09:34", tz=NY)
        in_utc = read.bars(ticker, f"{day} {utc_open}", f"{day} {utc_open[:3]}35", database_url=stored.url)
        assert str(in_utc["ts"].dtype) == "datetime64[ns, UTC]"
        pd.testing.assert_series_equal(in_utc["ts"], got["ts"].dt.tz_convert("UTC"))
        pd.testing.assert_frame_equal(in_utc.drop(columns="ts"), got.drop(columns="ts"))


def test_day_bars_sit_at_new_york_midnight_on_both_sides_of_the_dst_change(stored: Stored) -> None:
    got = read.bars(
        stored.tickers, sessions=("2026-10-30", "2026-11-02"), timespan="day", database_url=stored.url
    )
    stamps = sorted(set(got["ts"]))
    assert stamps == [pd.Timestamp("2026-10-30 04:00", tz="UTC"), pd.Timestamp("2026-11-02 05:00", tz="UTC")]
    assert len(got) == 2 * len(stored.tickers)


def test_a_range_over_thanksgiving_holds_the_two_sessions_and_the_holiday_is_refused(stored: Stored) -> None:
    got = read.bars(
        stored.tickers, sessions=("2026-11-25", "2026-11-27"), timespan="day", database_url=stored.url
    )
    sessions = sorted({ts.tz_convert(NY).date() for ts in got["ts"]})
    assert sessions == [dt.date(2026, 11, 25), dt.date(2026, 11, 27)]
    with pytest.raises(ValueError, match="2026-11-26 is not an NYSE session.*Thanksgiving"):
        read.bars(stored.tickers, sessions="2026-11-26", database_url=stored.url)
    # Bounds by date in New York time: [Nov 26 00:00, Nov 27 00:00) holds nothing, the holiday.
    assert read.bars(stored.tickers, "2026-11-26", "2026-11-27", tz=NY, database_url=stored.url).empty


def test_arrow_tables_and_chunks_hold_the_same_rows(stored: Stored) -> None:
    whole = read.quotes(stored.tickers, sessions="2026-11-27", database_url=stored.url)
    table = read.quotes(stored.tickers, sessions="2026-11-27", arrow=True, database_url=stored.url)
    assert isinstance(table, pa.Table) and table.num_rows == len(whole)
    assert table.schema.field("ts").type == pa.timestamp("us", tz="UTC")
    chunks = list(
        read.quotes(stored.tickers, sessions="2026-11-27", chunk_rows=1000, database_url=stored.url)
    )
    assert len(chunks) == -(-len(whole) // 1000) > 1
    assert all(len(c) == 1000 for c in chunks[:-1])
    for chunk in chunks:
        assert_model_dtypes("quotes", chunk)
    pd.testing.assert_frame_equal(pd.concat(chunks, ignore_index=True), whole)
    ny = list(
        read.quotes(
            stored.tickers, sessions="2026-11-27", chunk_rows=5000, arrow=True, tz=NY, database_url=stored.url
        )
    )
    assert ny[0].schema.field("ts").type == pa.timestamp("us", tz=NY)
    assert sum(t.num_rows for t in ny) == len(whole)


def test_latest_nbbo_is_the_last_quote_of_the_session_per_active_ticker(stored: Stored) -> None:
    got = read.latest_nbbo("2026-11-25", database_url=stored.url)
    assert_model_dtypes("quotes", got)
    start, end = session_window("2026-11-25")
    expected = stored.rows(
        "SELECT DISTINCT ON (q.ticker) q.ticker, q.ts, q.sequence_number, q.bid_price, q.ask_price "
        "FROM market.quotes q JOIN market.selected_tickers s ON s.ticker = q.ticker AND s.session = %s "
        "AND s.is_active WHERE q.ts >= %s AND q.ts < %s ORDER BY q.ticker, q.ts DESC, q.sequence_number DESC",
        (dt.date(2026, 11, 25), start, end),
    )
    assert len(expected) == len(stored.tickers)
    assert [
        tuple(r) for r in got[["ticker", "sequence_number", "bid_price", "ask_price"]].itertuples(index=False)
    ] == [(t, s, b, a) for t, _, s, b, a in expected]
    assert list(got["ts"]) == [pd.Timestamp(ts) for _, ts, *_ in expected]


def test_bars_so_far_default_to_the_clocks_session(stored: Stored, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRADING_DATA_NOW", NOW.isoformat())
    assert current_session() == dt.date(2026, 11, 27)
    assert current_session(dt.datetime(2026, 11, 26, 12, tzinfo=dt.UTC)) == dt.date(2026, 11, 25)  # holiday
    got = read.bars_so_far(database_url=stored.url)
    assert_model_dtypes("prices", got)
    expected = read.bars(stored.tickers, sessions="2026-11-27", database_url=stored.url)
    pd.testing.assert_frame_equal(got, expected)
    assert set(got["timespan"]) == {"minute"}
    nbbo = read.latest_nbbo(database_url=stored.url)
    assert list(nbbo["ticker"]) == sorted(stored.tickers)
    assert all(ts.tz_convert(NY).date() == dt.date(2026, 11, 27) for ts in nbbo["ts"])


def test_symbols_are_read_in_any_case(stored: Stored) -> None:
    ticker = stored.tickers[0]
    expected = read.quotes([ticker], sessions="2026-11-27", database_url=stored.url)
    assert len(expected) and set(expected["ticker"]) == {ticker}
    for typed in (ticker.lower(), [f" {ticker.lower()} ", ticker], f"{ticker.lower()},{ticker}"):
        pd.testing.assert_frame_equal(
            read.quotes(typed, sessions="2026-11-27", database_url=stored.url), expected
        )


def test_bad_arguments_fail_naming_the_problem(stored: Stored) -> None:
    with pytest.raises(ValueError, match='not a ticker symbol: "A\'; DROP"'):
        read.quotes(["A'; DROP"], sessions="2026-11-27", database_url=stored.url)
    with pytest.raises(ValueError, match="either sessions or start/end"):
        read.quotes(None, "2026-11-27", sessions="2026-11-27", database_url=stored.url)
    with pytest.raises(ValueError, match="unknown time zone 'Mars/Olympus'"):
        read.quotes(None, sessions="2026-11-27", tz="Mars/Olympus", database_url=stored.url)
    with pytest.raises(ValueError, match="timespan must be 'minute' or 'day'"):
        read.bars(None, sessions="2026-11-27", timespan="hour", database_url=stored.url)


@pytest.mark.parametrize("aggregate", ["bars_5m", "bars_1h"])
def test_bar_aggregates_read_what_bar_aggregates_stored(stored: Stored, aggregate: str) -> None:
    ticker = stored.tickers[0]
    got = read.read_table(aggregate, ticker, sessions=("2026-10-30", "2026-11-02"), database_url=stored.url)
    columns = list(AGGREGATE_COLUMNS)
    rows = stored.rows(
        f"SELECT {', '.join(columns)} FROM market.{aggregate} WHERE ticker = %s AND ts >= %s AND ts < %s "
        "ORDER BY ts",
        (ticker, *window("2026-10-30", "2026-11-02")),
    )
    assert len(rows) > 0
    assert list(got.columns) == columns
    # BIGINT columns: transactions may hold nulls (Int64, not float64), minute_bars may not (int64).
    assert str(got["transactions"].dtype) == "Int64" and str(got["minute_bars"].dtype) == "int64"
    assert str(got["ts"].dtype) == "datetime64[ns, UTC]"
    assert [tuple(r) for r in got.astype(object).where(got.notna(), None).itertuples(index=False)] == [
        (pd.Timestamp(r[0]), *r[1:]) for r in rows
    ]
    assert set(got["ts"].dt.tz_convert(NY).dt.date) == {dt.date(2026, 10, 30), dt.date(2026, 11, 2)}
    with pytest.raises(ValueError, match=f"timespan applies to prices only, not to {aggregate}"):
        read.read_table(aggregate, timespan="minute", sessions="2026-11-02", database_url=stored.url)
