"""Pure functions turning vendor JSON rows into validated DataFrames.

Units: Polygon aggregate ``t`` is ms epoch UTC (window start); v3 trade/quote timestamps are ns epoch
UTC, kept raw in ``sip_ns``/``participant_ns`` while ``ts`` is the µs-precision timestamp (vendors
round the last ns digits, so ns are never a key alone). Unusual Whales sends decimal strings for prices,
premiums, strikes, IV and greeks, and ``created_at`` in two formats. Option symbols are stored as OSI
without Polygon's ``O:`` prefix.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from trading_data import schemas
from trading_data.sources import models

Row = Mapping[str, Any]

_OSI = re.compile(r"^(?P<root>[A-Z][A-Z0-9.]{0,5})(?P<date>\d{6})(?P<cp>[CP])(?P<strike>\d{8})$")


# --------------------------------------------------------------------------------------------------
# Scalars


def to_float(value: Any) -> float | None:
    """A number or decimal string as float; None for missing or empty."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    return float(value)


def to_int(value: Any) -> int | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    return int(float(value)) if isinstance(value, str) else int(value)


def to_date(value: Any) -> dt.date:
    """``YYYY-MM-DD`` (or a date) as a date."""
    if isinstance(value, dt.datetime):
        return value.date()
    return value if isinstance(value, dt.date) else dt.date.fromisoformat(str(value)[:10])


def ms_to_timestamp(ms: int | float) -> pd.Timestamp:
    return pd.Timestamp(int(ms), unit="ms", tz="UTC")


def ns_to_timestamp(ns: int) -> pd.Timestamp:
    """ns epoch → UTC timestamp truncated to µs (the stored precision)."""
    return pd.Timestamp(int(ns) // 1000 * 1000, unit="ns", tz="UTC")


def parse_created_at(value: str) -> pd.Timestamp:
    """Unusual Whales ``created_at``: ``2025-10-22T20:27:01.354429Z`` or ``2023-12-12 16:35:52.168490+00:00``."""
    ts = pd.Timestamp(value)
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")


# --------------------------------------------------------------------------------------------------
# Option symbols


@dataclass(frozen=True)
class OptionSymbol:
    """A parsed OSI option symbol (``AAPL230616C00150000``)."""

    symbol: str
    root: str
    expiry: dt.date
    option_type: str  # "call" | "put"
    strike: float


def normalize_option_symbol(symbol: str) -> str:
    """The vendor-neutral form: upper case OSI without Polygon's ``O:`` prefix or padding spaces."""
    s = symbol.strip().upper()
    s = s.removeprefix("O:")
    return s.replace(" ", "")


def parse_option_symbol(symbol: str) -> OptionSymbol:
    """Parse an OSI symbol from either vendor; raises ValueError naming the symbol if it is not OSI."""
    s = normalize_option_symbol(symbol)
    m = _OSI.match(s)
    if not m:
        raise ValueError(f"not an OSI option symbol: {symbol!r}")
    d = m["date"]
    expiry = dt.date(2000 + int(d[:2]), int(d[2:4]), int(d[4:6]))
    return OptionSymbol(s, m["root"], expiry, "call" if m["cp"] == "C" else "put", int(m["strike"]) / 1000)


# --------------------------------------------------------------------------------------------------
# Helpers


def _int64(values: Sequence[Any]) -> pd.arrays.IntegerArray:
    return pd.array([None if v is None else int(v) for v in values], dtype="Int64")


def _floats(values: Iterable[Any]) -> np.ndarray:
    return np.array([np.nan if v is None else float(v) for v in (to_float(x) for x in values)], dtype="float64")


def _utc(values: Sequence[Any]) -> pd.DatetimeIndex:
    return pd.DatetimeIndex(list(values), tz="UTC") if len(values) else pd.DatetimeIndex([], tz="UTC")


# --------------------------------------------------------------------------------------------------
# Polygon


def bars_frame(rows: Sequence[Row], ticker: str, timespan: str) -> pd.DataFrame:
    """Aggregates (``/v2/aggs/ticker/...``) → ``schemas.Prices``."""
    df = pd.DataFrame({
        "ts": _utc([ms_to_timestamp(r["t"]) for r in rows]),
        "ticker": [ticker] * len(rows),
        "timespan": [timespan] * len(rows),
        "open": _floats(r["o"] for r in rows),
        "high": _floats(r["h"] for r in rows),
        "low": _floats(r["l"] for r in rows),
        "close": _floats(r["c"] for r in rows),
        "volume": _floats(r.get("v", 0) for r in rows),
        "vwap": _floats(r.get("vw") for r in rows),
        "transactions": _int64([r.get("n") for r in rows]),
    })
    return schemas.Prices.validate(df)


def grouped_daily_frame(rows: Sequence[Row]) -> pd.DataFrame:
    """Whole-market daily bars (``/v2/aggs/grouped/...``; ``T`` = ticker) → ``models.GroupedDaily``."""
    df = pd.DataFrame({
        "ticker": [str(r["T"]) for r in rows],
        "ts": _utc([ms_to_timestamp(r["t"]) for r in rows]),
        "open": _floats(r.get("o") for r in rows),
        "high": _floats(r.get("h") for r in rows),
        "low": _floats(r.get("l") for r in rows),
        "close": _floats(r.get("c") for r in rows),
        "volume": _floats(r.get("v", 0) for r in rows),
        "vwap": _floats(r.get("vw") for r in rows),
        "transactions": _int64([r.get("n") for r in rows]),
    })
    return models.GroupedDaily.validate(df)


def trades_frame(rows: Sequence[Row], ticker: str) -> pd.DataFrame:
    """v3 trades → ``schemas.Trades`` (``trade_id`` = Polygon ``id``; conditions as ``"12,37"``)."""
    sip = [int(r["sip_timestamp"]) for r in rows]
    df = pd.DataFrame({
        "ts": _utc([ns_to_timestamp(n) for n in sip]),
        "ticker": [ticker] * len(rows),
        "sequence_number": np.array([int(r["sequence_number"]) for r in rows], dtype="int64"),
        "exchange": np.array([int(r["exchange"]) for r in rows], dtype="int64"),
        "trade_id": [str(r["id"]) for r in rows],
        "sip_ns": np.array(sip, dtype="int64"),
        "participant_ns": _int64([r.get("participant_timestamp") for r in rows]),
        "price": _floats(r["price"] for r in rows),
        "size": _floats(r["size"] for r in rows),
        "conditions": [",".join(str(c) for c in r["conditions"]) if r.get("conditions") else None
                       for r in rows],
        "tape": _int64([r.get("tape") for r in rows]),
    })
    return schemas.Trades.validate(df)


def quotes_frame(rows: Sequence[Row], ticker: str) -> pd.DataFrame:
    """v3 quotes (NBBO) → ``schemas.Quotes``."""
    sip = [int(r["sip_timestamp"]) for r in rows]
    df = pd.DataFrame({
        "ts": _utc([ns_to_timestamp(n) for n in sip]),
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
    })
    return schemas.Quotes.validate(df)


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
        records.append({
            "record_id": osi.symbol,
            "option_symbol": osi.symbol,
            "expiry": osi.expiry,
            "strike": to_float(details.get("strike_price")) or osi.strike,
            "option_type": details.get("contract_type") or osi.option_type,
            "price": to_float(last_trade.get("price", last_quote.get("midpoint"))),
            "size": to_int(last_trade.get("size")),
            "premium": None,
            "volume": to_float(day.get("volume")),
            "open_interest": to_int(r.get("open_interest")),
            "implied_volatility": to_float(r.get("implied_volatility")),
            "delta": to_float(greeks.get("delta")),
            "gamma": to_float(greeks.get("gamma")),
            "theta": to_float(greeks.get("theta")),
            "vega": to_float(greeks.get("vega")),
            "underlying_price": to_float((r.get("underlying_asset") or {}).get("price")),
            "alert_rule": None,
        })
    ts = pd.Timestamp(polled_at)
    ts = ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")
    return _options_flow(records, ticker=underlying, record_type="chain_snapshot", ts=[ts] * len(records))


def option_contracts_frame(rows: Sequence[Row]) -> pd.DataFrame:
    """``/v3/reference/options/contracts`` → ``models.OptionContracts``."""
    records = []
    for r in rows:
        osi = parse_option_symbol(r["ticker"])
        records.append({
            "option_symbol": osi.symbol,
            "underlying": r.get("underlying_ticker") or osi.root,
            "expiry": to_date(r["expiration_date"]) if r.get("expiration_date") else osi.expiry,
            "option_type": r.get("contract_type") or osi.option_type,
            "strike": to_float(r.get("strike_price")) or osi.strike,
            "exercise_style": r.get("exercise_style"),
            "shares_per_contract": to_int(r.get("shares_per_contract")),
            "primary_exchange": r.get("primary_exchange"),
        })
    return _frame(records, models.OptionContracts, int_columns=("shares_per_contract",))


def tickers_frame(rows: Sequence[Row]) -> pd.DataFrame:
    """``/v3/reference/tickers`` → ``models.TickerUniverse``."""
    cols = ["ticker", "name", "market", "locale", "primary_exchange", "type", "currency_name", "cik",
            "composite_figi"]
    records = [{c: r.get(c) for c in cols} | {
        "active": bool(r.get("active", True)),
        "last_updated_utc": pd.Timestamp(r["last_updated_utc"]) if r.get("last_updated_utc") else pd.NaT,
    } for r in rows]
    df = _frame(records, models.TickerUniverse, validate=False)
    df["last_updated_utc"] = pd.to_datetime(df["last_updated_utc"], utc=True)
    return models.TickerUniverse.validate(df)


def market_holidays_frame(rows: Sequence[Row]) -> pd.DataFrame:
    """``/v1/marketstatus/upcoming`` → exchange, name, date, status, open, close (UTC; NaT when closed)."""
    return pd.DataFrame({
        "exchange": [r.get("exchange") for r in rows],
        "name": [r.get("name") for r in rows],
        "date": [to_date(r["date"]) for r in rows],
        "status": [r.get("status") for r in rows],
        "open": pd.to_datetime(pd.Series([r.get("open") for r in rows], dtype=object), utc=True),
        "close": pd.to_datetime(pd.Series([r.get("close") for r in rows], dtype=object), utc=True),
    })


# --------------------------------------------------------------------------------------------------
# Unusual Whales


def flow_alert_id(row: Row) -> str:
    """The alert's ``id``; when absent (the spec's REST example has none) a stable digest of its content."""
    if row.get("id"):
        return str(row["id"])
    basis = "|".join(str(row.get(k, "")) for k in ("option_chain", "created_at", "alert_rule", "rule_name",
                                                    "total_size", "total_premium", "start_time"))
    return "sha1:" + hashlib.sha1(basis.encode()).hexdigest()[:20]


def flow_alert_time(row: Row) -> pd.Timestamp:
    """When the alert happened: ``created_at``, else ``executed_at``/``start_time`` (ms)."""
    if row.get("created_at"):
        return parse_created_at(str(row["created_at"]))
    for key in ("executed_at", "end_time", "start_time"):
        if row.get(key) is not None:
            return ms_to_timestamp(row[key])
    raise ValueError(f"flow alert {flow_alert_id(row)} has no created_at")


def flow_alerts_frame(rows: Sequence[Row]) -> pd.DataFrame:
    """``/api/option-trades/flow-alerts`` → ``schemas.OptionsFlow`` rows of type ``flow_alert``."""
    records, tickers, times = [], [], []
    for r in rows:
        osi = parse_option_symbol(r["option_chain"])
        tickers.append(str(r.get("ticker") or osi.root).upper())
        times.append(flow_alert_time(r))
        records.append({
            "record_id": flow_alert_id(r),
            "option_symbol": osi.symbol,
            "expiry": to_date(r["expiry"]) if r.get("expiry") else osi.expiry,
            "strike": to_float(r.get("strike")) or osi.strike,
            "option_type": r.get("type") or osi.option_type,
            "price": to_float(r.get("price")),
            "size": to_int(r.get("total_size")),
            "premium": to_float(r.get("total_premium")),
            "volume": to_float(r.get("volume")),
            "open_interest": to_int(r.get("open_interest")),
            "implied_volatility": to_float(r.get("iv_end", r.get("implied_volatility"))),
            "delta": None, "gamma": None, "theta": None, "vega": None,
            "underlying_price": to_float(r.get("underlying_price")),
            "alert_rule": r.get("alert_rule") or r.get("rule_name"),
        })
    return _options_flow(records, ticker=tickers, record_type="flow_alert", ts=times)


def uw_option_contracts_frame(rows: Sequence[Row], underlying: str) -> pd.DataFrame:
    """``/api/stock/{ticker}/option-contracts`` → ``models.OptionContractStats``."""
    records = []
    for r in rows:
        osi = parse_option_symbol(r["option_symbol"])
        records.append({
            "option_symbol": osi.symbol,
            "underlying": underlying,
            "expiry": osi.expiry,
            "option_type": osi.option_type,
            "strike": osi.strike,
            "volume": to_int(r.get("volume")),
            "open_interest": to_int(r.get("open_interest")),
            "prev_open_interest": to_int(r.get("prev_oi")),
            "implied_volatility": to_float(r.get("implied_volatility")),
            "last_price": to_float(r.get("last_price")),
            "avg_price": to_float(r.get("avg_price")),
            "high_price": to_float(r.get("high_price")),
            "low_price": to_float(r.get("low_price")),
            "nbbo_bid": to_float(r.get("nbbo_bid")),
            "nbbo_ask": to_float(r.get("nbbo_ask")),
            "total_premium": to_float(r.get("total_premium")),
            "ask_volume": to_int(r.get("ask_volume")),
            "bid_volume": to_int(r.get("bid_volume")),
            "sweep_volume": to_int(r.get("sweep_volume")),
        })
    ints = ("volume", "open_interest", "prev_open_interest", "ask_volume", "bid_volume", "sweep_volume")
    return _frame(records, models.OptionContractStats, int_columns=ints)


# --------------------------------------------------------------------------------------------------
# Frame assembly

_FLOW_FLOATS = ("strike", "price", "premium", "volume", "implied_volatility", "delta", "gamma", "theta",
                "vega", "underlying_price")
_FLOW_INTS = ("size", "open_interest")


def _frame(records: list[dict[str, Any]], model: Any, *, int_columns: Iterable[str] = (),
           validate: bool = True) -> pd.DataFrame:
    columns = list(model.to_schema().columns)
    df = pd.DataFrame.from_records(records, columns=columns)
    for col in int_columns:
        df[col] = _int64(list(df[col].astype(object).where(df[col].notna(), None)))
    return model.validate(df) if validate else df


def _options_flow(records: list[dict[str, Any]], *, ticker: str | list[str], record_type: str,
                  ts: list[pd.Timestamp]) -> pd.DataFrame:
    df = pd.DataFrame.from_records(records, columns=[c for c in schemas.TABLES["options_flow"].columns
                                                     if c not in ("ts", "ticker", "record_type")])
    df.insert(0, "ts", _utc(ts))
    df.insert(1, "ticker", ticker if isinstance(ticker, list) else [ticker] * len(records))
    df.insert(2, "record_type", [record_type] * len(records))
    for col in _FLOW_FLOATS:
        df[col] = _floats(df[col].astype(object).where(df[col].notna(), None))
    for col in _FLOW_INTS:
        df[col] = _int64(list(df[col].astype(object).where(df[col].notna(), None)))
    return schemas.OptionsFlow.validate(df)
