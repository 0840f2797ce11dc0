"""pandera models for vendor frames that are inputs rather than stored tables.

The stored tables' models (Prices, Quotes, Trades, OptionsFlow) live in ``trading_data.schemas``;
these describe the frames ticker selection and option lookups read: whole-market daily bars, the
ticker universe and option contract listings.
"""

from __future__ import annotations

import pandas as pd
import pandera.pandas as pa
from pandera.engines import pandas_engine
from pandera.typing import Series

from trading_data.domain.option_symbols import OSI_PATTERN
from trading_data.schemas import UTC


class _Base(pa.DataFrameModel):
    class Config:
        strict = True
        coerce = True
        ordered = False


class GroupedDaily(_Base):
    """One daily bar per ticker for the whole market (``ts`` = 16:00 New York of the session)."""

    ticker: Series[str]
    ts: Series[UTC]  # type: ignore[valid-type]
    open: Series[float] = pa.Field(ge=0)
    high: Series[float] = pa.Field(ge=0)
    low: Series[float] = pa.Field(ge=0)
    close: Series[float] = pa.Field(ge=0)
    volume: Series[float] = pa.Field(ge=0)
    vwap: Series[float] = pa.Field(ge=0, nullable=True)
    transactions: Series[pd.Int64Dtype] = pa.Field(ge=0, nullable=True)


class TickerUniverse(_Base):
    """Reference data for every listed ticker (Polygon ``/v3/reference/tickers``)."""

    ticker: Series[str]
    name: Series[str] = pa.Field(nullable=True)
    market: Series[str] = pa.Field(nullable=True)
    locale: Series[str] = pa.Field(nullable=True)
    primary_exchange: Series[str] = pa.Field(nullable=True)
    type: Series[str] = pa.Field(nullable=True)
    active: Series[bool]
    currency_name: Series[str] = pa.Field(nullable=True)
    cik: Series[str] = pa.Field(nullable=True)
    composite_figi: Series[str] = pa.Field(nullable=True)
    last_updated_utc: Series[UTC] = pa.Field(nullable=True)  # type: ignore[valid-type]


class OptionContracts(_Base):
    """Option contracts listed for an underlying (Polygon ``/v3/reference/options/contracts``)."""

    option_symbol: Series[str] = pa.Field(str_matches=OSI_PATTERN.pattern)
    underlying: Series[str]
    expiry: Series[pandas_engine.Date]
    option_type: Series[str] = pa.Field(isin=["call", "put"])
    strike: Series[float] = pa.Field(gt=0)
    exercise_style: Series[str] = pa.Field(nullable=True)
    shares_per_contract: Series[pd.Int64Dtype] = pa.Field(ge=0, nullable=True)
    primary_exchange: Series[str] = pa.Field(nullable=True)


class OptionContractStats(_Base):
    """Per-contract volume, open interest and prices (Unusual Whales ``/api/stock/{t}/option-contracts``)."""

    option_symbol: Series[str] = pa.Field(str_matches=OSI_PATTERN.pattern)
    underlying: Series[str]
    expiry: Series[pandas_engine.Date]
    option_type: Series[str] = pa.Field(isin=["call", "put"])
    strike: Series[float] = pa.Field(gt=0)
    volume: Series[pd.Int64Dtype] = pa.Field(ge=0, nullable=True)
    open_interest: Series[pd.Int64Dtype] = pa.Field(ge=0, nullable=True)
    prev_open_interest: Series[pd.Int64Dtype] = pa.Field(ge=0, nullable=True)
    implied_volatility: Series[float] = pa.Field(ge=0, nullable=True)
    last_price: Series[float] = pa.Field(ge=0, nullable=True)
    avg_price: Series[float] = pa.Field(ge=0, nullable=True)
    high_price: Series[float] = pa.Field(ge=0, nullable=True)
    low_price: Series[float] = pa.Field(ge=0, nullable=True)
    nbbo_bid: Series[float] = pa.Field(ge=0, nullable=True)
    nbbo_ask: Series[float] = pa.Field(ge=0, nullable=True)
    total_premium: Series[float] = pa.Field(ge=0, nullable=True)
    ask_volume: Series[pd.Int64Dtype] = pa.Field(ge=0, nullable=True)
    bid_volume: Series[pd.Int64Dtype] = pa.Field(ge=0, nullable=True)
    sweep_volume: Series[pd.Int64Dtype] = pa.Field(ge=0, nullable=True)
