"""Polygon JSON rows → validated DataFrames (aggregates, trades, quotes, option chains and contracts, tickers).

Units and the column builders are described in :mod:`trading_data.sources.columns`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

import pandas as pd

from trading_data import schemas
from trading_data.domain.option_symbols import parse_option_symbol
from trading_data.sources import columns, models
from trading_data.sources.columns import Row


def _ohlcv(rows: Sequence[Row], *, required: bool) -> dict[str, Any]:
    """The bar columns of an aggregate (``o h l c`` required in a ticker's bars, not in grouped daily)."""

    def price(name: str) -> Any:
        return columns.column(rows, name) if required else columns.optional(rows, name)

    return {
        "open": columns.float_column(price("o")),
        "high": columns.float_column(price("h")),
        "low": columns.float_column(price("l")),
        "close": columns.float_column(price("c")),
        "volume": columns.float_column(columns.optional(rows, "v", 0)),
        "vwap": columns.float_column(columns.optional(rows, "vw")),
        "transactions": columns.nullable_int_column(columns.optional(rows, "n")),
    }


def bars_frame(rows: Sequence[Row], ticker: str, timespan: str, *, validate: bool = True) -> pd.DataFrame:
    """Aggregates (``/v2/aggs/ticker/...``) → ``schemas.Prices`` (see :func:`quotes_frame` for ``validate``)."""
    n = len(rows)
    df = pd.DataFrame(
        {
            "ts": columns.ms_to_utc(columns.int_column(columns.column(rows, "t"))),
            "ticker": [ticker] * n,
            "timespan": [timespan] * n,
            **_ohlcv(rows, required=True),
        }
    )
    return columns.finish(df, schemas.Prices, validate)


def grouped_daily_frame(rows: Sequence[Row], *, validate: bool = True) -> pd.DataFrame:
    """Whole-market daily bars (``/v2/aggs/grouped/...``; ``T`` = ticker) → ``models.GroupedDaily``."""
    df = pd.DataFrame(
        {
            "ticker": [str(v) for v in columns.column(rows, "T")],
            "ts": columns.ms_to_utc(columns.int_column(columns.column(rows, "t"))),
            **_ohlcv(rows, required=False),
        }
    )
    return columns.finish(df, models.GroupedDaily, validate)


def trades_frame(rows: Sequence[Row], ticker: str, *, validate: bool = True) -> pd.DataFrame:
    """v3 trades → ``schemas.Trades`` (``trade_id`` = Polygon ``id``; conditions as ``"12,37"``).

    See :func:`quotes_frame` for ``validate``.
    """
    n = len(rows)
    sip = columns.int_field(rows, "sip_timestamp")
    df = pd.DataFrame(
        {
            "ts": columns.ns_to_utc(sip),
            "ticker": columns.repeated(ticker, n),
            "sequence_number": columns.int_field(rows, "sequence_number"),
            "exchange": columns.int_field(rows, "exchange"),
            "trade_id": [str(v) for v in columns.column(rows, "id")],
            "sip_ns": sip,
            "participant_ns": columns.nullable_int_field(rows, "participant_timestamp"),
            "price": columns.float_field(rows, "price"),
            "size": columns.float_field(rows, "size"),
            "conditions": [
                ",".join([str(c) for c in cs]) if cs else None for cs in columns.optional(rows, "conditions")
            ],
            "tape": columns.nullable_int_field(rows, "tape"),
        },
        copy=False,  # the columns are new arrays of their own: no copy into consolidated blocks
    )
    return columns.finish(df, schemas.Trades, validate)


def quotes_frame(rows: Sequence[Row], ticker: str, *, validate: bool = True) -> pd.DataFrame:
    """v3 quotes (NBBO) → ``schemas.Quotes``.

    ``validate=False`` skips the pandera checks (about 16 ms a frame, whatever its size) but gives the
    same columns and dtypes: for callers whose frames are validated later anyway, such as the streamed
    pages of :meth:`PolygonClient.iter_quotes`, which the IO manager validates chunk by chunk.
    """
    n = len(rows)
    sip = columns.int_field(rows, "sip_timestamp")
    df = pd.DataFrame(
        {
            "ts": columns.ns_to_utc(sip),
            "ticker": columns.repeated(ticker, n),
            "sequence_number": columns.int_field(rows, "sequence_number"),
            "sip_ns": sip,
            "participant_ns": columns.nullable_int_field(rows, "participant_timestamp"),
            "bid_price": columns.float_field(rows, "bid_price", 0),
            "bid_size": columns.float_field(rows, "bid_size", 0),
            "bid_exchange": columns.nullable_int_field(rows, "bid_exchange"),
            "ask_price": columns.float_field(rows, "ask_price", 0),
            "ask_size": columns.float_field(rows, "ask_size", 0),
            "ask_exchange": columns.nullable_int_field(rows, "ask_exchange"),
            "tape": columns.nullable_int_field(rows, "tape"),
        },
        copy=False,  # the columns are new arrays of their own: no copy into consolidated blocks
    )
    return columns.finish(df, schemas.Quotes, validate)


def chain_snapshot_frame(rows: Sequence[Row], underlying: str, polled_at: dt.datetime) -> pd.DataFrame:
    """``/v3/snapshot/options/{underlying}`` → ``schemas.OptionsFlow`` rows of type ``chain_snapshot``.

    ``ts`` is the poll time, ``record_id`` the option symbol. ``price`` is the last trade's price (else
    the quote midpoint), ``volume`` the day's volume.
    """
    records = []
    for r in rows:
        details = r.get("details") or {}
        osi = parse_option_symbol(details["ticker"])
        greeks = r.get("greeks") or {}
        last_trade = r.get("last_trade") or {}
        last_quote = r.get("last_quote") or {}
        day = r.get("day") or {}
        records.append(
            {
                "record_id": osi.symbol,
                "option_symbol": osi.symbol,
                "expiry": osi.expiry,
                "strike": columns.to_float(details.get("strike_price")) or osi.strike,
                "option_type": details.get("contract_type") or osi.option_type,
                "price": columns.to_float(last_trade.get("price", last_quote.get("midpoint"))),
                "size": columns.to_int(last_trade.get("size")),
                "premium": None,
                "volume": columns.to_float(day.get("volume")),
                "open_interest": columns.to_int(r.get("open_interest")),
                "implied_volatility": columns.to_float(r.get("implied_volatility")),
                "delta": columns.to_float(greeks.get("delta")),
                "gamma": columns.to_float(greeks.get("gamma")),
                "theta": columns.to_float(greeks.get("theta")),
                "vega": columns.to_float(greeks.get("vega")),
                "underlying_price": columns.to_float((r.get("underlying_asset") or {}).get("price")),
                "alert_rule": None,
            }
        )
    ts = pd.Timestamp(polled_at)
    ts = ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")
    return columns.options_flow_frame(
        records, ticker=underlying, record_type="chain_snapshot", ts=[ts] * len(records)
    )


def option_contracts_frame(rows: Sequence[Row]) -> pd.DataFrame:
    """``/v3/reference/options/contracts`` → ``models.OptionContracts``."""
    records = []
    for r in rows:
        osi = parse_option_symbol(r["ticker"])
        records.append(
            {
                "option_symbol": osi.symbol,
                "underlying": r.get("underlying_ticker") or osi.root,
                "expiry": columns.to_date(r["expiration_date"]) if r.get("expiration_date") else osi.expiry,
                "option_type": r.get("contract_type") or osi.option_type,
                "strike": columns.to_float(r.get("strike_price")) or osi.strike,
                "exercise_style": r.get("exercise_style"),
                "shares_per_contract": columns.to_int(r.get("shares_per_contract")),
                "primary_exchange": r.get("primary_exchange"),
            }
        )
    return columns.records_frame(records, models.OptionContracts, int_columns=("shares_per_contract",))


def tickers_frame(rows: Sequence[Row]) -> pd.DataFrame:
    """``/v3/reference/tickers`` → ``models.TickerUniverse``."""
    cols = [
        "ticker",
        "name",
        "market",
        "locale",
        "primary_exchange",
        "type",
        "currency_name",
        "cik",
        "composite_figi",
    ]
    records = [
        {c: r.get(c) for c in cols}
        | {
            "active": bool(r.get("active", True)),
            "last_updated_utc": pd.Timestamp(r["last_updated_utc"]) if r.get("last_updated_utc") else pd.NaT,
        }
        for r in rows
    ]
    df = columns.records_frame(records, models.TickerUniverse, validate=False)
    df["last_updated_utc"] = pd.to_datetime(df["last_updated_utc"], utc=True)
    return models.TickerUniverse.validate(df)
