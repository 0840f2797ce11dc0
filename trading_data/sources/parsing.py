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
    return np.array(
        [np.nan if v is None else float(v) for v in (to_float(x) for x in values)], dtype="float64"
    )


def _utc(values: Sequence[Any]) -> pd.DatetimeIndex:
    return pd.DatetimeIndex(list(values), tz="UTC") if len(values) else pd.DatetimeIndex([], tz="UTC")


# Column builders for the high-volume feeds (a page is up to 50,000 rows). ``np.fromiter`` converts
# each element with ``int()`` / ``float()``, so numbers sent as decimal strings (``"12"``, ``"1.5"``)
# parse exactly as the scalar helpers above parse them. The values it cannot take take an explicit,
# slower path with the scalar helpers' rules: None (a missing value) and, for floats, blank strings.


def _int_column(values: list[Any]) -> np.ndarray:
    """A required integer column (``int()`` of every value; None raises) as int64."""
    try:
        return np.fromiter(values, dtype=np.int64, count=len(values))
    except TypeError:
        return np.array([int(v) for v in values], dtype=np.int64)  # raises naming the bad value


def _nullable_int_column(values: list[Any]) -> pd.arrays.IntegerArray:
    """A nullable integer column (None → <NA>, else ``int()``) as ``Int64``."""
    n = len(values)
    try:
        data = np.fromiter(values, dtype=np.int64, count=n)
    except TypeError:  # None among the values (or a non-number, which raises again below)
        mask = np.fromiter((v is None for v in values), dtype=bool, count=n)
        data = np.fromiter((0 if v is None else v for v in values), dtype=np.int64, count=n)
        return pd.arrays.IntegerArray(data, mask)
    return pd.arrays.IntegerArray(data, np.zeros(n, dtype=bool))


def _float_column(values: list[Any]) -> np.ndarray:
    """A float64 column (None and blank strings → NaN, decimal strings parsed) as :func:`to_float`."""
    try:
        return np.fromiter(values, dtype=np.float64, count=len(values))  # None → NaN, as to_float
    except (TypeError, ValueError):  # a blank string (NaN for to_float) or a non-number (raises again)
        return _floats(values)


def _ns_to_utc(ns: np.ndarray) -> pd.DatetimeIndex:
    """ns epochs → UTC timestamps truncated to µs, as :func:`ns_to_timestamp` (floor division)."""
    return pd.to_datetime(ns // 1000 * 1000, unit="ns", utc=True)


def _ms_to_utc(ms: np.ndarray) -> pd.DatetimeIndex:
    """ms epochs → UTC timestamps (ns precision), as :func:`ms_to_timestamp`."""
    return pd.to_datetime(ms * 1_000_000, unit="ns", utc=True)


def _column(rows: Sequence[Row], key: str) -> list[Any]:
    """``row[key]`` of every row; a missing key raises KeyError."""
    return [r[key] for r in rows]


def _optional(rows: Sequence[Row], key: str, default: Any = None) -> list[Any]:
    return [r.get(key, default) for r in rows]


_DTYPES: dict[Any, pd.Series] = {}


def _finish(df: pd.DataFrame, model: Any, validate: bool) -> pd.DataFrame:
    """``model.validate(df)``, or when ``validate`` is False only the model's dtype coercion.

    The builders already produce the model's dtypes; a column that does not (a future model change)
    is cast to the dtype the model coerces to, learnt once by validating an empty frame.
    """
    if validate:
        return model.validate(df)
    expected = _DTYPES.get(model)
    if expected is None:
        empty = df.iloc[:0].copy()
        expected = _DTYPES[model] = model.validate(empty).dtypes
    if not df.dtypes.equals(expected):
        df = df.astype({c: t for c, t in expected.items() if df[c].dtype != t})
    return df


# --------------------------------------------------------------------------------------------------
# Polygon


def bars_frame(rows: Sequence[Row], ticker: str, timespan: str, *, validate: bool = True) -> pd.DataFrame:
    """Aggregates (``/v2/aggs/ticker/...``) → ``schemas.Prices`` (see :func:`quotes_frame` for ``validate``)."""
    n = len(rows)
    df = pd.DataFrame(
        {
            "ts": _ms_to_utc(_int_column(_column(rows, "t"))),
            "ticker": [ticker] * n,
            "timespan": [timespan] * n,
            "open": _float_column(_column(rows, "o")),
            "high": _float_column(_column(rows, "h")),
            "low": _float_column(_column(rows, "l")),
            "close": _float_column(_column(rows, "c")),
            "volume": _float_column(_optional(rows, "v", 0)),
            "vwap": _float_column(_optional(rows, "vw")),
            "transactions": _nullable_int_column(_optional(rows, "n")),
        }
    )
    return _finish(df, schemas.Prices, validate)


def grouped_daily_frame(rows: Sequence[Row], *, validate: bool = True) -> pd.DataFrame:
    """Whole-market daily bars (``/v2/aggs/grouped/...``; ``T`` = ticker) → ``models.GroupedDaily``."""
    df = pd.DataFrame(
        {
            "ticker": [str(v) for v in _column(rows, "T")],
            "ts": _ms_to_utc(_int_column(_column(rows, "t"))),
            "open": _float_column(_optional(rows, "o")),
            "high": _float_column(_optional(rows, "h")),
            "low": _float_column(_optional(rows, "l")),
            "close": _float_column(_optional(rows, "c")),
            "volume": _float_column(_optional(rows, "v", 0)),
            "vwap": _float_column(_optional(rows, "vw")),
            "transactions": _nullable_int_column(_optional(rows, "n")),
        }
    )
    return _finish(df, models.GroupedDaily, validate)


def trades_frame(rows: Sequence[Row], ticker: str, *, validate: bool = True) -> pd.DataFrame:
    """v3 trades → ``schemas.Trades`` (``trade_id`` = Polygon ``id``; conditions as ``"12,37"``).

    See :func:`quotes_frame` for ``validate``.
    """
    n = len(rows)
    sip = _int_column(_column(rows, "sip_timestamp"))
    df = pd.DataFrame(
        {
            "ts": _ns_to_utc(sip),
            "ticker": [ticker] * n,
            "sequence_number": _int_column(_column(rows, "sequence_number")),
            "exchange": _int_column(_column(rows, "exchange")),
            "trade_id": [str(v) for v in _column(rows, "id")],
            "sip_ns": sip,
            "participant_ns": _nullable_int_column(_optional(rows, "participant_timestamp")),
            "price": _float_column(_column(rows, "price")),
            "size": _float_column(_column(rows, "size")),
            "conditions": [
                ",".join([str(c) for c in cs]) if cs else None for cs in _optional(rows, "conditions")
            ],
            "tape": _nullable_int_column(_optional(rows, "tape")),
        }
    )
    return _finish(df, schemas.Trades, validate)


def quotes_frame(rows: Sequence[Row], ticker: str, *, validate: bool = True) -> pd.DataFrame:
    """v3 quotes (NBBO) → ``schemas.Quotes``.

    ``validate=False`` skips the pandera checks (about 16 ms a frame, whatever its size) but gives the
    same columns and dtypes: for callers whose frames are validated later anyway, such as the streamed
    pages of :meth:`PolygonClient.iter_quotes`, which the IO manager validates chunk by chunk.
    """
    n = len(rows)
    sip = _int_column(_column(rows, "sip_timestamp"))
    df = pd.DataFrame(
        {
            "ts": _ns_to_utc(sip),
            "ticker": [ticker] * n,
            "sequence_number": _int_column(_column(rows, "sequence_number")),
            "sip_ns": sip,
            "participant_ns": _nullable_int_column(_optional(rows, "participant_timestamp")),
            "bid_price": _float_column(_optional(rows, "bid_price", 0)),
            "bid_size": _float_column(_optional(rows, "bid_size", 0)),
            "bid_exchange": _nullable_int_column(_optional(rows, "bid_exchange")),
            "ask_price": _float_column(_optional(rows, "ask_price", 0)),
            "ask_size": _float_column(_optional(rows, "ask_size", 0)),
            "ask_exchange": _nullable_int_column(_optional(rows, "ask_exchange")),
            "tape": _nullable_int_column(_optional(rows, "tape")),
        }
    )
    return _finish(df, schemas.Quotes, validate)


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
            }
        )
    ts = pd.Timestamp(polled_at)
    ts = ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")
    return _options_flow(records, ticker=underlying, record_type="chain_snapshot", ts=[ts] * len(records))


def option_contracts_frame(rows: Sequence[Row]) -> pd.DataFrame:
    """``/v3/reference/options/contracts`` → ``models.OptionContracts``."""
    records = []
    for r in rows:
        osi = parse_option_symbol(r["ticker"])
        records.append(
            {
                "option_symbol": osi.symbol,
                "underlying": r.get("underlying_ticker") or osi.root,
                "expiry": to_date(r["expiration_date"]) if r.get("expiration_date") else osi.expiry,
                "option_type": r.get("contract_type") or osi.option_type,
                "strike": to_float(r.get("strike_price")) or osi.strike,
                "exercise_style": r.get("exercise_style"),
                "shares_per_contract": to_int(r.get("shares_per_contract")),
                "primary_exchange": r.get("primary_exchange"),
            }
        )
    return _frame(records, models.OptionContracts, int_columns=("shares_per_contract",))


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
    df = _frame(records, models.TickerUniverse, validate=False)
    df["last_updated_utc"] = pd.to_datetime(df["last_updated_utc"], utc=True)
    return models.TickerUniverse.validate(df)


def market_holidays_frame(rows: Sequence[Row]) -> pd.DataFrame:
    """``/v1/marketstatus/upcoming`` → exchange, name, date, status, open, close (UTC; NaT when closed)."""
    return pd.DataFrame(
        {
            "exchange": [r.get("exchange") for r in rows],
            "name": [r.get("name") for r in rows],
            "date": [to_date(r["date"]) for r in rows],
            "status": [r.get("status") for r in rows],
            "open": pd.to_datetime(pd.Series([r.get("open") for r in rows], dtype=object), utc=True),
            "close": pd.to_datetime(pd.Series([r.get("close") for r in rows], dtype=object), utc=True),
        }
    )


# --------------------------------------------------------------------------------------------------
# Unusual Whales


def flow_alert_id(row: Row) -> str:
    """The alert's ``id``; when absent (the spec's REST example has none) a stable digest of its content."""
    if row.get("id"):
        return str(row["id"])
    basis = "|".join(
        str(row.get(k, ""))
        for k in (
            "option_chain",
            "created_at",
            "alert_rule",
            "rule_name",
            "total_size",
            "total_premium",
            "start_time",
        )
    )
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
        records.append(
            {
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
                "delta": None,
                "gamma": None,
                "theta": None,
                "vega": None,
                "underlying_price": to_float(r.get("underlying_price")),
                "alert_rule": r.get("alert_rule") or r.get("rule_name"),
            }
        )
    return _options_flow(records, ticker=tickers, record_type="flow_alert", ts=times)


def uw_option_contracts_frame(rows: Sequence[Row], underlying: str) -> pd.DataFrame:
    """``/api/stock/{ticker}/option-contracts`` → ``models.OptionContractStats``."""
    records = []
    for r in rows:
        osi = parse_option_symbol(r["option_symbol"])
        records.append(
            {
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
            }
        )
    ints = ("volume", "open_interest", "prev_open_interest", "ask_volume", "bid_volume", "sweep_volume")
    return _frame(records, models.OptionContractStats, int_columns=ints)


# --------------------------------------------------------------------------------------------------
# Frame assembly

_FLOW_FLOATS = (
    "strike",
    "price",
    "premium",
    "volume",
    "implied_volatility",
    "delta",
    "gamma",
    "theta",
    "vega",
    "underlying_price",
)
_FLOW_INTS = ("size", "open_interest")


def _frame(
    records: list[dict[str, Any]], model: Any, *, int_columns: Iterable[str] = (), validate: bool = True
) -> pd.DataFrame:
    columns = list(model.to_schema().columns)
    df = pd.DataFrame.from_records(records, columns=columns)
    for col in int_columns:
        df[col] = _int64(list(df[col].astype(object).where(df[col].notna(), None)))
    return model.validate(df) if validate else df


def _options_flow(
    records: list[dict[str, Any]], *, ticker: str | list[str], record_type: str, ts: list[pd.Timestamp]
) -> pd.DataFrame:
    df = pd.DataFrame.from_records(
        records,
        columns=[
            c for c in schemas.TABLES["options_flow"].columns if c not in ("ts", "ticker", "record_type")
        ],
    )
    df.insert(0, "ts", _utc(ts))
    df.insert(1, "ticker", ticker if isinstance(ticker, list) else [ticker] * len(records))
    df.insert(2, "record_type", [record_type] * len(records))
    for col in _FLOW_FLOATS:
        df[col] = _floats(df[col].astype(object).where(df[col].notna(), None))
    for col in _FLOW_INTS:
        df[col] = _int64(list(df[col].astype(object).where(df[col].notna(), None)))
    return schemas.OptionsFlow.validate(df)
