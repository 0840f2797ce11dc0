"""Recorded Polygon responses and Unusual Whales spec examples parse to the expected frames."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from trading_data import schemas
from trading_data.domain import option_symbols
from trading_data.sources import columns, models, polygon_parsing, unusual_whales_parsing
from trading_data_tests.sources.fakes import recorded, uw_example

UTC = dt.UTC


def test_daily_bars_ms_epoch_is_new_york_midnight():
    body = recorded("v2/aggs/ticker/AAPL/range/1/day/2005-04-01/2005-04-04.json")
    df = polygon_parsing.bars_frame(body["results"], "AAPL", "day")
    schemas.Prices.validate(df)
    assert len(df) == 2
    first = df.iloc[0]
    assert first["ts"] == pd.Timestamp("2005-04-01 05:00", tz="UTC")  # 00:00 New York (EST)
    assert first["ts"].tz_convert("America/New_York").hour == 0
    assert first["open"] == 1.5032 and first["close"] == 1.4604 and first["transactions"] == 82132
    assert first["volume"] == 642646396.0 and first["vwap"] == 1.469
    assert str(df["ts"].dtype) == "datetime64[ns, UTC]"


def test_fractional_volume_is_kept():
    rows = [{"v": 12.5, "vw": 10.0, "o": 10, "c": 10, "h": 10, "l": 10, "t": 1700000000000}]
    assert polygon_parsing.bars_frame(rows, "AAPL", "minute")["volume"].iloc[0] == 12.5


def test_grouped_daily_ticker_from_T_at_16_new_york():
    body = recorded("v2/aggs/grouped/locale/us/market/stocks/2005-04-04&adjusted=true.json")
    df = polygon_parsing.grouped_daily_frame(body["results"])
    models.GroupedDaily.validate(df)
    row = df.iloc[0]
    assert row["ticker"] == "GIK"
    assert row["ts"] == pd.Timestamp("2020-10-14 16:00", tz="America/New_York")
    assert row["close"] == 10.02 and row["volume"] == 895345 and row["transactions"] == 96
    assert list(df.columns) == [
        "ticker",
        "ts",
        "open",
        "high",
        "low",
        "close",
        "volume",
        "vwap",
        "transactions",
    ]


def test_trades_ns_kept_raw_and_ts_in_microseconds():
    body = recorded("v3/trades/AAPL&limit=2.json")
    df = polygon_parsing.trades_frame(body["results"], "AAPL")
    schemas.Trades.validate(df)
    row = df.iloc[0]
    assert row["sip_ns"] == 1651181822461979400
    assert row["participant_ns"] == 1651181822461636600
    assert row["ts"] == pd.Timestamp("2022-04-28 21:37:02.461979", tz="UTC")
    assert row["ts"].nanosecond == 0
    assert row["trade_id"] == "183276" and row["exchange"] == 11 and row["price"] == 156.43
    assert row["conditions"] == "12,37" and row["tape"] == 3 and row["sequence_number"] == 7179341
    assert df.iloc[1]["exchange"] == 12  # same id and sequence, other exchange: a distinct key


def test_trades_without_conditions_or_participant_timestamp():
    rows = [
        {
            "exchange": 4,
            "id": "1",
            "price": 10.5,
            "sequence_number": 1,
            "sip_timestamp": 1_700_000_000_123_456_789,
            "size": 0.5,
        }
    ]
    df = polygon_parsing.trades_frame(rows, "AAPL")
    assert pd.isna(df["conditions"].iloc[0]) and pd.isna(df["participant_ns"].iloc[0])
    assert df["size"].iloc[0] == 0.5


@pytest.mark.parametrize(
    "name",
    [
        "v3/quotes/AAPL.json",
        "v3/quotes/AAPL&cursor=YXA9MTkyODgxNjYmYXM9JmxpbWl0PTEwJm9yZGVyPWRlc2Mmc29ydD10aW1lc3RhbXAmdGltZXN0YW1wLmx0ZT0yMDIyLTA1LTEwVDE0JTNBMTElM0ExMi42OTA2NjExODla.json",
    ],
)
def test_quotes_recorded_pages(name):
    df = polygon_parsing.quotes_frame(recorded(name)["results"], "AAPL")
    schemas.Quotes.validate(df)
    assert len(df) == 10
    assert (df["ts"].dt.tz_convert("UTC").dt.date == dt.date(2022, 5, 10)).all()


def test_quotes_values():
    df = polygon_parsing.quotes_frame(recorded("v3/quotes/AAPL.json")["results"], "AAPL")
    row = df.iloc[0]
    assert row["sip_ns"] == 1652191872800638700
    assert row["ts"] == pd.Timestamp("2022-05-10 14:11:12.800638", tz="UTC")
    assert (row["bid_price"], row["ask_price"], row["bid_size"], row["ask_size"]) == (155.85, 155.87, 4, 3)
    assert row["bid_exchange"] == 19 and row["ask_exchange"] == 15 and row["sequence_number"] == 19288684


def test_option_chain_snapshot_to_options_flow():
    polled = dt.datetime(2024, 1, 2, 15, 0, tzinfo=UTC)
    df = polygon_parsing.chain_snapshot_frame(
        recorded("v3/snapshot/options/AAPL.json")["results"], "AAPL", polled
    )
    schemas.OptionsFlow.validate(df)
    row = df.iloc[0]
    assert row["record_type"] == "chain_snapshot"
    assert row["record_id"] == row["option_symbol"] == "AAPL230616C00150000"  # stored without O:
    assert row["ts"] == pd.Timestamp(polled)
    assert row["expiry"] == dt.date(2023, 6, 16) and row["strike"] == 150 and row["option_type"] == "call"
    assert row["open_interest"] == 8133 and row["price"] == 29.25
    assert row["delta"] == pytest.approx(0.6436614934293701)
    assert row["implied_volatility"] == pytest.approx(0.3570277203465058)
    assert row["underlying_price"] == 159.9606


@pytest.mark.parametrize(
    "name",
    [
        "v3/reference/options/contracts.json",
        "v3/reference/options/contracts&cursor=YXA9JTdCJTIySUQlMjIlM0ElMjIy.json",
    ],
)
def test_polygon_option_contracts(name):
    df = polygon_parsing.option_contracts_frame(recorded(name)["results"])
    models.OptionContracts.validate(df)
    assert len(df) == 10
    assert df["option_symbol"].str.startswith("A22052").all()
    assert not df["option_symbol"].str.startswith("O:").any()
    assert (df["expiry"] == dt.date(2022, 5, 20)).all()


def test_polygon_option_contract_values():
    df = polygon_parsing.option_contracts_frame(recorded("v3/reference/options/contracts.json")["results"])
    row = df.iloc[0]
    assert row["option_symbol"] == "A220520C00065000" and row["strike"] == 65 and row["underlying"] == "A"
    assert row["shares_per_contract"] == 100 and row["option_type"] == "call"


def test_ticker_universe_pages():
    first = polygon_parsing.tickers_frame(recorded("v3/reference/tickers.json")["results"])
    models.TickerUniverse.validate(first)
    assert list(first["ticker"]) == ["A", "AA"]
    assert first.iloc[0]["name"] == "Agilent Technologies Inc."
    assert first.iloc[0]["last_updated_utc"] == pd.Timestamp("2022-04-27", tz="UTC")
    name = (
        "v3/reference/tickers&cursor=YWN0aXZlPXRydWUmZGF0ZT0yMDIyLTA0LTI3JmxpbWl0PTImb3JkZXI9YXNjJnBhZ2Vf"
        "bWFya2VyPUFBJTdDZjEyMmJjYmY4YWQwNzRmZmJlMTZmNjkxOWQ0ZDc3NjZlMzA3MWNmNmU1Nzg3OGE0OGU1NjQ1YzQyM2U3NzJhOSZzb3J0PXRpY2tlcg.json"
    )
    second = polygon_parsing.tickers_frame(recorded(name)["results"])
    assert list(second["ticker"]) == ["AAA", "AAAU"] and pd.isna(second.iloc[0]["cik"])


def test_uw_flow_alert_spec_example():
    rows = uw_example("Flow Alert")["data"]
    df = unusual_whales_parsing.flow_alerts_frame(rows)
    schemas.OptionsFlow.validate(df)
    row = df.iloc[0]
    assert row["record_type"] == "flow_alert"
    assert row["ts"] == pd.Timestamp("2023-12-12 16:35:52.168490", tz="UTC")
    assert row["ticker"] == "MSFT" and row["option_symbol"] == "MSFT231222C00375000"
    assert row["expiry"] == dt.date(2023, 12, 22) and row["strike"] == 375.0 and row["option_type"] == "call"
    assert row["price"] == 4.05 and row["premium"] == 186705.0 and row["size"] == 461
    assert row["underlying_price"] == 372.99 and row["open_interest"] == 7913 and row["volume"] == 2442
    assert row["alert_rule"] == "RepeatedHits"
    # the REST example carries no id: a stable digest stands in, the same on every parse
    assert row["record_id"].startswith("sha1:")
    assert unusual_whales_parsing.flow_alerts_frame(rows).iloc[0]["record_id"] == row["record_id"]


def test_uw_flow_alert_with_id_and_z_timestamp():
    row = dict(
        uw_example("Flow Alert")["data"][0],
        id="29ed5829-e4ce-4934-876b-51985d2f9b70",
        created_at="2025-10-22T20:27:01.354429Z",
    )
    df = unusual_whales_parsing.flow_alerts_frame([row])
    assert df.iloc[0]["record_id"] == "29ed5829-e4ce-4934-876b-51985d2f9b70"
    assert df.iloc[0]["ts"] == pd.Timestamp("2025-10-22 20:27:01.354429", tz="UTC")


def test_uw_option_contracts_spec_example():
    df = unusual_whales_parsing.option_contracts_frame(uw_example("Option contracts")["data"], "AAPL")
    models.OptionContractStats.validate(df)
    put, call = df.iloc[0], df.iloc[1]
    assert put["option_symbol"] == "AAPL240202P00185000" and put["option_type"] == "put"
    assert put["strike"] == 185.0 and put["expiry"] == dt.date(2024, 2, 2)
    assert put["open_interest"] == 22868 and put["volume"] == 132276 and put["prev_open_interest"] == 20217
    assert put["implied_volatility"] == pytest.approx(0.542805337797143) and put["nbbo_bid"] == 0.0
    assert call["strike"] == 187.5 and call["total_premium"] == 2261577.0


@pytest.mark.parametrize(
    ("symbol", "expected"),
    [
        ("O:AAPL230616C00150000", ("AAPL230616C00150000", "AAPL", dt.date(2023, 6, 16), "call", 150.0)),
        ("AAPL230616C00150000", ("AAPL230616C00150000", "AAPL", dt.date(2023, 6, 16), "call", 150.0)),
        ("o:spy240119p00472500", ("SPY240119P00472500", "SPY", dt.date(2024, 1, 19), "put", 472.5)),
        ("BRK.B250620C00480000", ("BRK.B250620C00480000", "BRK.B", dt.date(2025, 6, 20), "call", 480.0)),
    ],
)
def test_option_symbols_normalised_between_vendors(symbol, expected):
    osi = option_symbols.parse_option_symbol(symbol)
    assert (osi.symbol, osi.root, osi.expiry, osi.option_type, osi.strike) == expected


def test_bad_option_symbol_is_named():
    with pytest.raises(ValueError, match="AAPL_BAD"):
        option_symbols.parse_option_symbol("AAPL_BAD")


def test_created_at_both_formats():
    a = columns.parse_created_at("2025-10-22T20:27:01.354429Z")
    b = columns.parse_created_at("2023-12-12 16:35:52.168490+00:00")
    assert a == pd.Timestamp("2025-10-22 20:27:01.354429", tz="UTC")
    assert b == pd.Timestamp("2023-12-12 16:35:52.168490", tz="UTC")


@pytest.mark.parametrize(
    "build",
    [
        lambda: polygon_parsing.bars_frame([], "AAPL", "minute"),
        lambda: polygon_parsing.trades_frame([], "AAPL"),
        lambda: polygon_parsing.quotes_frame([], "AAPL"),
        lambda: unusual_whales_parsing.flow_alerts_frame([]),
        lambda: polygon_parsing.chain_snapshot_frame([], "AAPL", dt.datetime(2024, 1, 2, tzinfo=UTC)),
        lambda: polygon_parsing.grouped_daily_frame([]),
    ],
)
def test_empty_frames_have_the_model_columns(build):
    df = build()
    assert len(df) == 0 and len(df.columns) > 5


# --------------------------------------------------------------------------------------------------
# The vectorised tick builders against the row-by-row implementation they replaced


def _floats(values):
    """The row-by-row float conversion: each value through ``columns.to_float``, None → NaN."""
    return np.array(
        [np.nan if v is None else float(v) for v in (columns.to_float(x) for x in values)], dtype="float64"
    )


def _int64(values):
    """The row-by-row nullable integer conversion: None → <NA>, else ``int()``."""
    return pd.array([None if v is None else int(v) for v in values], dtype="Int64")


def _legacy_quotes_frame(rows, ticker):
    sip = [int(r["sip_timestamp"]) for r in rows]
    df = pd.DataFrame(
        {
            "ts": columns.utc_index([columns.ns_to_timestamp(n) for n in sip]),
            "ticker": [ticker] * len(rows),
            "sequence_number": np.array([int(r["sequence_number"]) for r in rows], dtype="int64"),
            "sip_ns": np.array(sip, dtype="int64"),
            "participant_ns": _int64([r.get("participant_timestamp") for r in rows]),
            "bid_price": _floats(r.get("bid_price", 0) for r in rows),
            "bid_size": _floats(r.get("bid_size", 0) for r in rows),
            "bid_exchange": _int64([r.get("bid_exchange") for r in rows]),
            "ask_price": _floats(r.get("ask_price", 0) for r in rows),
            "ask_size": _floats(r.get("ask_size", 0) for r in rows),
            "ask_exchange": _int64([r.get("ask_exchange") for r in rows]),
            "tape": _int64([r.get("tape") for r in rows]),
        }
    )
    return schemas.Quotes.validate(df)


def _legacy_trades_frame(rows, ticker):
    sip = [int(r["sip_timestamp"]) for r in rows]
    df = pd.DataFrame(
        {
            "ts": columns.utc_index([columns.ns_to_timestamp(n) for n in sip]),
            "ticker": [ticker] * len(rows),
            "sequence_number": np.array([int(r["sequence_number"]) for r in rows], dtype="int64"),
            "exchange": np.array([int(r["exchange"]) for r in rows], dtype="int64"),
            "trade_id": [str(r["id"]) for r in rows],
            "sip_ns": np.array(sip, dtype="int64"),
            "participant_ns": _int64([r.get("participant_timestamp") for r in rows]),
            "price": _floats(r["price"] for r in rows),
            "size": _floats(r["size"] for r in rows),
            "conditions": [
                ",".join(str(c) for c in r["conditions"]) if r.get("conditions") else None for r in rows
            ],
            "tape": _int64([r.get("tape") for r in rows]),
        }
    )
    return schemas.Trades.validate(df)


def _legacy_bars_frame(rows, ticker, timespan):
    df = pd.DataFrame(
        {
            "ts": columns.utc_index([columns.ms_to_timestamp(r["t"]) for r in rows]),
            "ticker": [ticker] * len(rows),
            "timespan": [timespan] * len(rows),
            "open": _floats(r["o"] for r in rows),
            "high": _floats(r["h"] for r in rows),
            "low": _floats(r["l"] for r in rows),
            "close": _floats(r["c"] for r in rows),
            "volume": _floats(r.get("v", 0) for r in rows),
            "vwap": _floats(r.get("vw") for r in rows),
            "transactions": _int64([r.get("n") for r in rows]),
        }
    )
    return schemas.Prices.validate(df)


def _legacy_grouped_daily_frame(rows):
    df = pd.DataFrame(
        {
            "ticker": [str(r["T"]) for r in rows],
            "ts": columns.utc_index([columns.ms_to_timestamp(r["t"]) for r in rows]),
            "open": _floats(r.get("o") for r in rows),
            "high": _floats(r.get("h") for r in rows),
            "low": _floats(r.get("l") for r in rows),
            "close": _floats(r.get("c") for r in rows),
            "volume": _floats(r.get("v", 0) for r in rows),
            "vwap": _floats(r.get("vw") for r in rows),
            "transactions": _int64([r.get("n") for r in rows]),
        }
    )
    return models.GroupedDaily.validate(df)


QUOTE_PAGES = [
    "v3/quotes/AAPL.json",
    "v3/quotes/AAPL&cursor=YXA9MTkyODgxNjYmYXM9JmxpbWl0PTEwJm9yZGVyPWRlc2Mmc29ydD10aW1lc3RhbXAmdGltZXN0YW1wLmx0ZT0yMDIyLTA1LTEwVDE0JTNBMTElM0ExMi42OTA2NjExODla.json",
]
BAR_PAGES = [
    "v2/aggs/ticker/AAPL/range/1/day/2005-04-01/2005-04-04.json",
    "v2/aggs/ticker/AAPL/range/1/day/2005-04-02/2005-04-04.json",
]


def _same(new: pd.DataFrame, old: pd.DataFrame) -> None:
    assert list(new.columns) == list(old.columns)
    assert new.dtypes.equals(old.dtypes), (new.dtypes, old.dtypes)
    pd.testing.assert_frame_equal(new, old, check_exact=True)


def _as_strings(rows, keys):
    """The rows with ``keys`` sent as decimal strings (a vendor may quote numbers)."""
    return [{k: (str(v) if k in keys and v is not None else v) for k, v in r.items()} for r in rows]


@pytest.mark.parametrize("validate", [True, False])
@pytest.mark.parametrize("name", QUOTE_PAGES)
def test_quotes_frame_matches_the_row_by_row_builder(name, validate):
    rows = recorded(name)["results"]
    _same(polygon_parsing.quotes_frame(rows, "AAPL", validate=validate), _legacy_quotes_frame(rows, "AAPL"))


@pytest.mark.parametrize("validate", [True, False])
def test_trades_frame_matches_the_row_by_row_builder(validate):
    rows = recorded("v3/trades/AAPL&limit=2.json")["results"]
    _same(polygon_parsing.trades_frame(rows, "AAPL", validate=validate), _legacy_trades_frame(rows, "AAPL"))


@pytest.mark.parametrize("validate", [True, False])
@pytest.mark.parametrize("name", BAR_PAGES)
def test_bars_frame_matches_the_row_by_row_builder(name, validate):
    rows = recorded(name)["results"]
    _same(
        polygon_parsing.bars_frame(rows, "AAPL", "day", validate=validate),
        _legacy_bars_frame(rows, "AAPL", "day"),
    )


@pytest.mark.parametrize("validate", [True, False])
def test_grouped_daily_frame_matches_the_row_by_row_builder(validate):
    rows = recorded("v2/aggs/grouped/locale/us/market/stocks/2005-04-04&adjusted=true.json")["results"]
    _same(polygon_parsing.grouped_daily_frame(rows, validate=validate), _legacy_grouped_daily_frame(rows))


def _irregular_quotes():
    """Missing optional fields, nulls, floats where ints are usual, and pre-1970/odd ns."""
    base = recorded("v3/quotes/AAPL.json")["results"]
    rows = [dict(r) for r in base]
    del rows[0]["participant_timestamp"]
    rows[1]["tape"] = None
    rows[2]["bid_exchange"] = None
    del rows[3]["ask_size"]  # defaults to 0, as before
    rows[4]["bid_size"] = 2.5
    rows[5]["sip_timestamp"] = 1652191872800638799  # the last 3 ns digits are truncated, not rounded
    rows[6]["sequence_number"] = 0
    return rows


@pytest.mark.parametrize("validate", [True, False])
def test_irregular_quotes_match_the_row_by_row_builder(validate):
    rows = _irregular_quotes()
    _same(polygon_parsing.quotes_frame(rows, "AAPL", validate=validate), _legacy_quotes_frame(rows, "AAPL"))


@pytest.mark.parametrize("validate", [True, False])
def test_numbers_sent_as_strings_parse_as_before(validate):
    quotes = _as_strings(
        _irregular_quotes(),
        {
            "sip_timestamp",
            "sequence_number",
            "participant_timestamp",
            "bid_price",
            "bid_size",
            "ask_price",
            "ask_exchange",
            "tape",
        },
    )
    assert isinstance(quotes[0]["sip_timestamp"], str)
    got = polygon_parsing.quotes_frame(quotes, "AAPL", validate=validate)
    _same(got, _legacy_quotes_frame(quotes, "AAPL"))
    _same(got, polygon_parsing.quotes_frame(_irregular_quotes(), "AAPL"))  # as if they had been numbers
    trades = _as_strings(
        recorded("v3/trades/AAPL&limit=2.json")["results"],
        {"sip_timestamp", "sequence_number", "exchange", "participant_timestamp", "price", "size", "tape"},
    )
    _same(
        polygon_parsing.trades_frame(trades, "AAPL", validate=validate), _legacy_trades_frame(trades, "AAPL")
    )
    bars = _as_strings(recorded(BAR_PAGES[0])["results"], {"t", "o", "h", "l", "c", "v", "vw", "n"})
    bars[0]["vw"] = " "  # a blank decimal string is a missing value (NaN), as to_float says
    got_bars = polygon_parsing.bars_frame(bars, "AAPL", "day", validate=validate)
    assert np.isnan(got_bars["vwap"].iloc[0])
    _same(got_bars, _legacy_bars_frame(bars, "AAPL", "day"))


@pytest.mark.parametrize(
    ("field", "value", "error"),
    [
        ("sip_timestamp", None, TypeError),
        ("sequence_number", "1.5", ValueError),
        ("tape", "", ValueError),
        ("bid_price", "abc", ValueError),
    ],
)
def test_bad_numbers_still_raise(field, value, error):
    rows = [dict(r) for r in recorded("v3/quotes/AAPL.json")["results"]]
    rows[3][field] = value
    for build in (_legacy_quotes_frame, polygon_parsing.quotes_frame):
        with pytest.raises(error):
            build(rows, "AAPL")


def test_missing_required_field_raises_key_error():
    rows = [dict(r) for r in recorded("v3/trades/AAPL&limit=2.json")["results"]]
    del rows[1]["price"]
    with pytest.raises(KeyError):
        polygon_parsing.trades_frame(rows, "AAPL", validate=False)


@pytest.mark.parametrize(
    "build",
    [
        lambda v: polygon_parsing.bars_frame([], "AAPL", "minute", validate=v),
        lambda v: polygon_parsing.grouped_daily_frame([], validate=v),
        lambda v: polygon_parsing.trades_frame([], "AAPL", validate=v),
        lambda v: polygon_parsing.quotes_frame([], "AAPL", validate=v),
    ],
)
def test_unvalidated_empty_frames_have_the_validated_dtypes(build):
    assert build(False).dtypes.equals(build(True).dtypes)


def test_unvalidated_frames_skip_the_checks_but_not_the_dtypes():
    rows = [dict(r) for r in recorded("v3/quotes/AAPL.json")["results"]]
    rows[0]["bid_size"] = -100  # a negative size cannot be true: fails Quotes
    df = polygon_parsing.quotes_frame(rows, "AAPL", validate=False)
    assert df.dtypes.equals(polygon_parsing.quotes_frame([], "AAPL").dtypes)
    with pytest.raises(Exception, match="bid_size"):
        polygon_parsing.quotes_frame(rows, "AAPL")


def test_ns_to_utc_truncates_to_microseconds_like_the_scalar_helper() -> None:
    """The vectorised conversion gives what ``ns_to_timestamp`` gives value by value, tz-aware in ns."""
    ns = np.array([1_795_185_000_000_845_988, 1_795_185_000_000_000_999, 0, 1_795_185_000_123_456_000])
    index = columns.ns_to_utc(ns)
    assert str(index.dtype) == "datetime64[ns, UTC]"
    assert list(index) == [columns.ns_to_timestamp(int(v)) for v in ns]
    assert len(columns.ns_to_utc(np.array([], dtype=np.int64))) == 0
