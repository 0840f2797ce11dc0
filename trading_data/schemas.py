"""pandera models: the single source of every table's columns, dtypes and checks.

Each model names its table, its time column (the partition column the IO manager windows on) and its
primary key (which always includes the time column, a TimescaleDB rule, and never a nanosecond
timestamp alone, since vendors round them). The SQL migrations are checked against these models by
``trading_data_tests/test_migrations.py``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import pandera.pandas as pa
import pyarrow as pa_arrow
from pandera.engines import pandas_engine
from pandera.typing import Series

from trading_data.domain.option_symbols import OSI_PATTERN
from trading_data.domain.tickers import TICKER_PATTERN

UTC = pd.DatetimeTZDtype(unit="ns", tz="UTC")

# What pandera reports for the ticker check of the high-volume tables, as for ``str_matches`` elsewhere.
TICKER_CHECK: dict[str, Any] = {"name": "str_matches", "error": f"str_matches('{TICKER_PATTERN.pattern}')"}


def tickers_match(series: pd.Series) -> pd.Series:
    """``TICKER_PATTERN`` matched once per distinct value, as ``str_matches`` per row: a page of quotes
    or trades holds one ticker 50,000 times."""
    codes, uniques = pd.factorize(series)
    ok = [isinstance(u, str) and TICKER_PATTERN.match(u) is not None for u in uniques]
    return pd.Series(np.array([*ok, False], dtype=bool)[codes], index=series.index)


class _Base(pa.DataFrameModel):
    class Config:
        strict = True
        coerce = True
        ordered = False


class SelectedTickers(_Base):
    """One row per ticker considered for the session: scores, focus and active flags."""

    session: Series[pandas_engine.Date] = pa.Field(description="NYSE session (New York date)")
    ticker: Series[str] = pa.Field(str_matches=TICKER_PATTERN.pattern, description="Stock ticker")
    avg_volume: Series[float] = pa.Field(ge=0, nullable=True, description="Mean daily volume, shares")
    last_close: Series[float] = pa.Field(gt=0, nullable=True, description="Close of the last daily bar, USD")
    atr: Series[float] = pa.Field(ge=0, nullable=True, description="Average true range of daily bars, USD")
    volatility: Series[float] = pa.Field(ge=0, nullable=True, description="ATR / last close (fraction)")
    relative_volume: Series[float] = pa.Field(
        ge=0, nullable=True, description="Last daily volume / avg_volume"
    )
    momentum: Series[float] = pa.Field(
        nullable=True, description="last close / first close - 1, over the lookback"
    )
    opportunity_score: Series[float] = pa.Field(nullable=True, description="Selection score, 0 to 1")
    rank: Series[pd.Int64Dtype] = pa.Field(ge=1, nullable=True, description="Rank by score, 1 = best")
    in_focus: Series[bool] = pa.Field(description="In the focus universe (scored)")
    is_active: Series[bool] = pa.Field(description="Collected and traded this session")
    is_fallback: Series[bool] = pa.Field(description="Chosen from the default tickers")
    selection_source: Series[str] = pa.Field(
        isin=["selection", "symbols", "fallback"], description="selection, symbols or fallback"
    )
    selected_at: Series[UTC] = pa.Field(description="When the selection ran (UTC)")  # type: ignore[valid-type]


class PositionSizes(_Base):
    """Volatility-targeted position per active ticker."""

    session: Series[pandas_engine.Date] = pa.Field(description="NYSE session (New York date)")
    ticker: Series[str] = pa.Field(str_matches=TICKER_PATTERN.pattern, description="Stock ticker")
    price: Series[float] = pa.Field(gt=0, description="Reference price, USD")
    atr: Series[float] = pa.Field(ge=0, description="Average true range, USD")
    stop_distance: Series[float] = pa.Field(ge=0, description="Stop distance from the price, USD")
    risk_amount: Series[float] = pa.Field(ge=0, description="Equity risked if the stop is hit, USD")
    shares: Series[int] = pa.Field(ge=0, description="Position size, shares")
    notional: Series[float] = pa.Field(ge=0, description="shares x price, USD")
    weight: Series[float] = pa.Field(ge=0, le=1, description="notional / equity, 0 to 1")
    is_fallback: Series[bool] = pa.Field(description="Sized for a fallback ticker")
    computed_at: Series[UTC] = pa.Field(description="When the sizing ran (UTC)")  # type: ignore[valid-type]


class Prices(_Base):
    """OHLCV bars; ``timespan`` is ``minute`` or ``day``; ``ts`` is the bar's window start."""

    ts: Series[UTC] = pa.Field(description="Bar start (UTC); day bars: New York midnight")  # type: ignore[valid-type]
    ticker: Series[str] = pa.Field(str_matches=TICKER_PATTERN.pattern, description="Stock ticker")
    timespan: Series[str] = pa.Field(isin=["minute", "day"], description="Bar length: minute or day")
    open: Series[float] = pa.Field(gt=0, description="First trade price, USD")
    high: Series[float] = pa.Field(gt=0, description="Highest trade price, USD")
    low: Series[float] = pa.Field(gt=0, description="Lowest trade price, USD")
    close: Series[float] = pa.Field(gt=0, description="Last trade price, USD")
    volume: Series[float] = pa.Field(ge=0, description="Shares traded")
    vwap: Series[float] = pa.Field(gt=0, nullable=True, description="Volume-weighted average price, USD")
    transactions: Series[pd.Int64Dtype] = pa.Field(ge=0, nullable=True, description="Number of trades")

    @pa.dataframe_check(error="high must be >= max(open, close, low) and low <= min(open, close)")
    @classmethod
    def ohlc_consistent(cls, df: pd.DataFrame) -> Series[bool]:
        return (df["high"] >= df[["open", "close", "low"]].max(axis=1)) & (
            df["low"] <= df[["open", "close"]].min(axis=1)
        )


class Quotes(_Base):
    """NBBO quotes. ``ts`` is the SIP timestamp (µs); ``sip_ns`` keeps the vendor's nanoseconds.

    A price of 0 means nothing is quoted on that side. Crossed (ask < bid) and locked (ask == bid)
    quotes are real consolidated-feed data, stored and counted by the ``quotes_not_crossed`` check;
    only negative prices and sizes are impossible.
    """

    ts: Series[UTC] = pa.Field(description="SIP timestamp (UTC, microseconds)")  # type: ignore[valid-type]
    ticker: Series[str] = pa.Field(description="Stock ticker")
    sequence_number: Series[int] = pa.Field(ge=0, description="SIP sequence number (per ticker, per day)")
    sip_ns: Series[int] = pa.Field(ge=0, description="SIP timestamp, ns since the Unix epoch")
    participant_ns: Series[pd.Int64Dtype] = pa.Field(nullable=True, description="Exchange timestamp, ns")
    bid_price: Series[float] = pa.Field(ge=0, description="Best bid, USD (0: no bid)")
    bid_size: Series[float] = pa.Field(ge=0, description="Bid size, shares")
    bid_exchange: Series[pd.Int64Dtype] = pa.Field(nullable=True, description="Bid exchange id (Polygon)")
    ask_price: Series[float] = pa.Field(ge=0, description="Best ask, USD (0: no ask)")
    ask_size: Series[float] = pa.Field(ge=0, description="Ask size, shares")
    ask_exchange: Series[pd.Int64Dtype] = pa.Field(nullable=True, description="Ask exchange id (Polygon)")
    tape: Series[pd.Int64Dtype] = pa.Field(nullable=True, description="SIP tape: 1 A, 2 B, 3 C")

    @pa.check("ticker", **TICKER_CHECK)
    def _ticker_symbol(cls, series: pd.Series) -> pd.Series:
        return tickers_match(series)


class Trades(_Base):
    """Individual trades. Key: ticker, ts, sequence_number, exchange and the vendor's trade id."""

    ts: Series[UTC] = pa.Field(description="SIP timestamp (UTC, microseconds)")  # type: ignore[valid-type]
    ticker: Series[str] = pa.Field(description="Stock ticker")
    sequence_number: Series[int] = pa.Field(ge=0, description="SIP sequence number (per ticker, per day)")
    exchange: Series[int] = pa.Field(ge=0, description="Exchange id (Polygon)")
    trade_id: Series[str] = pa.Field(description="The exchange's trade id")
    sip_ns: Series[int] = pa.Field(ge=0, description="SIP timestamp, ns since the Unix epoch")
    participant_ns: Series[pd.Int64Dtype] = pa.Field(nullable=True, description="Exchange timestamp, ns")
    price: Series[float] = pa.Field(gt=0, description="Trade price, USD")
    size: Series[float] = pa.Field(ge=0, description="Trade size, shares")
    conditions: Series[str] = pa.Field(nullable=True, description="Condition codes, comma-separated")
    tape: Series[pd.Int64Dtype] = pa.Field(nullable=True, description="SIP tape: 1 A, 2 B, 3 C")

    @pa.check("ticker", **TICKER_CHECK)
    def _ticker_symbol(cls, series: pd.Series) -> pd.Series:
        return tickers_match(series)


class OptionsFlow(_Base):
    """Unusual Whales flow alerts and Polygon option-chain snapshots, one row per record.

    ``record_type`` is ``flow_alert`` (``record_id`` = the alert id) or ``chain_snapshot``
    (``record_id`` = the option symbol; ``ts`` = the poll time). Option symbols are OSI without
    Polygon's ``O:`` prefix.
    """

    ts: Series[UTC] = pa.Field(description="Alert time or snapshot poll time (UTC)")  # type: ignore[valid-type]
    ticker: Series[str] = pa.Field(str_matches=TICKER_PATTERN.pattern, description="Underlying ticker")
    record_type: Series[str] = pa.Field(
        isin=["flow_alert", "chain_snapshot"], description="flow_alert or chain_snapshot"
    )
    record_id: Series[str] = pa.Field(description="Alert id, or the option symbol of a snapshot")
    option_symbol: Series[str] = pa.Field(str_matches=OSI_PATTERN.pattern, description="OSI symbol, no O:")
    expiry: Series[pandas_engine.Date] = pa.Field(description="Expiration date")
    strike: Series[float] = pa.Field(gt=0, description="Strike price, USD")
    option_type: Series[str] = pa.Field(isin=["call", "put"], description="call or put")
    price: Series[float] = pa.Field(ge=0, nullable=True, description="Option price, USD per share")
    size: Series[pd.Int64Dtype] = pa.Field(ge=0, nullable=True, description="Alert size, contracts")
    premium: Series[float] = pa.Field(ge=0, nullable=True, description="Premium paid, USD")
    volume: Series[float] = pa.Field(ge=0, nullable=True, description="Day volume, contracts")
    open_interest: Series[pd.Int64Dtype] = pa.Field(ge=0, nullable=True, description="Open interest")
    implied_volatility: Series[float] = pa.Field(ge=0, nullable=True, description="IV, annualized fraction")
    delta: Series[float] = pa.Field(ge=-1, le=1, nullable=True, description="Delta, -1 to 1")
    gamma: Series[float] = pa.Field(nullable=True, description="Gamma, per USD")
    theta: Series[float] = pa.Field(nullable=True, description="Theta, USD per day")
    vega: Series[float] = pa.Field(nullable=True, description="Vega, USD per vol point")
    underlying_price: Series[float] = pa.Field(gt=0, nullable=True, description="Underlying price, USD")
    alert_rule: Series[str] = pa.Field(nullable=True, description="Unusual Whales alert rule")


class Indicators(_Base):
    """Technical indicators per ticker and minute bar, computed without look-ahead."""

    ts: Series[UTC] = pa.Field(description="Minute bar start (UTC)")  # type: ignore[valid-type]
    ticker: Series[str] = pa.Field(str_matches=TICKER_PATTERN.pattern, description="Stock ticker")
    close: Series[float] = pa.Field(gt=0, description="Minute close, USD")
    sma_20: Series[float] = pa.Field(nullable=True, description="20-bar simple moving average, USD")
    ema_12: Series[float] = pa.Field(nullable=True, description="12-bar exponential moving average, USD")
    ema_26: Series[float] = pa.Field(nullable=True, description="26-bar exponential moving average, USD")
    rsi_14: Series[float] = pa.Field(ge=0, le=100, nullable=True, description="14-bar RSI, 0 to 100")
    macd: Series[float] = pa.Field(nullable=True, description="MACD line (EMA 12 - EMA 26), USD")
    macd_signal: Series[float] = pa.Field(nullable=True, description="9-bar EMA of MACD, USD")
    macd_hist: Series[float] = pa.Field(nullable=True, description="MACD - signal, USD")
    bb_upper: Series[float] = pa.Field(nullable=True, description="Bollinger upper band (20, 2), USD")
    bb_middle: Series[float] = pa.Field(nullable=True, description="Bollinger middle band, USD")
    bb_lower: Series[float] = pa.Field(nullable=True, description="Bollinger lower band (20, 2), USD")
    atr_14: Series[float] = pa.Field(ge=0, nullable=True, description="14-bar average true range, USD")
    vwap: Series[float] = pa.Field(gt=0, nullable=True, description="Session VWAP so far, USD")


class DailyReport(_Base):
    """Per table and ticker: rows, coverage of the session's minutes, gaps, failures, freshness."""

    session: Series[pandas_engine.Date] = pa.Field(description="NYSE session (New York date)")
    table_name: Series[str] = pa.Field(description="Table reported on")
    ticker: Series[str] = pa.Field(str_matches=TICKER_PATTERN.pattern, description="Stock ticker")
    rows: Series[int] = pa.Field(ge=0, description="Rows stored for the session")
    expected_minutes: Series[int] = pa.Field(ge=0, description="Regular-session minutes")
    covered_minutes: Series[int] = pa.Field(ge=0, description="Regular-session minutes with a row")
    coverage: Series[float] = pa.Field(ge=0, le=1, nullable=True, description="covered / expected")
    gaps: Series[int] = pa.Field(ge=0, description="Runs of minutes without a row")
    max_gap_minutes: Series[int] = pa.Field(ge=0, description="Longest gap, minutes")
    validation_failures: Series[int] = pa.Field(ge=0, description="Rows rejected by validation")
    last_ts: Series[UTC] = pa.Field(nullable=True, description="Latest row's time (UTC)")  # type: ignore[valid-type]
    freshness_minutes: Series[float] = pa.Field(
        nullable=True, description="Minutes from last_ts to the report"
    )
    # The closed session's reconciliation (domain/reconciliation.py), each part on its table's row:
    # trades (volumes), prices (traded minutes with a bar), quotes (half hours); null elsewhere.
    trade_volume: Series[float] = pa.Field(ge=0, nullable=True, description="Sum of trade sizes, shares")
    day_bar_volume: Series[float] = pa.Field(ge=0, nullable=True, description="Daily bar volume, shares")
    volume_deviation: Series[float] = pa.Field(nullable=True, description="trade / bar volume - 1")
    traded_minutes: Series[pd.Int64Dtype] = pa.Field(ge=0, nullable=True, description="Minutes with a trade")
    traded_minutes_with_bar: Series[pd.Int64Dtype] = pa.Field(
        ge=0, nullable=True, description="Traded minutes with a minute bar"
    )
    quoted_half_hours: Series[pd.Int64Dtype] = pa.Field(ge=0, nullable=True, description="Half hours quoted")
    expected_half_hours: Series[pd.Int64Dtype] = pa.Field(
        ge=0, nullable=True, description="Regular half hours"
    )
    reconciliation: Series[str] = pa.Field(nullable=True, description='"ok", or why the part failed')


@dataclass(frozen=True)
class TableSpec:
    """How a model is stored: table name, time (partition) column, key, TimescaleDB chunking."""

    name: str
    model: type[_Base]
    time_column: str
    primary_key: tuple[str, ...]
    chunk_interval: str
    write_mode: str  # "replace" or "upsert"

    @property
    def columns(self) -> list[str]:
        return list(self.model.to_schema().columns)


TABLES: dict[str, TableSpec] = {
    spec.name: spec
    for spec in [
        TableSpec(
            "selected_tickers", SelectedTickers, "session", ("session", "ticker"), "30 days", "replace"
        ),
        TableSpec("position_sizes", PositionSizes, "session", ("session", "ticker"), "30 days", "replace"),
        TableSpec("prices", Prices, "ts", ("ticker", "timespan", "ts"), "7 days", "upsert"),
        TableSpec("quotes", Quotes, "ts", ("ticker", "ts", "sequence_number"), "1 day", "upsert"),
        TableSpec(
            "trades",
            Trades,
            "ts",
            ("ticker", "ts", "sequence_number", "exchange", "trade_id"),
            "1 day",
            "upsert",
        ),
        TableSpec(
            "options_flow",
            OptionsFlow,
            "ts",
            ("ticker", "ts", "record_type", "record_id"),
            "7 days",
            "upsert",
        ),
        TableSpec("indicators", Indicators, "ts", ("ticker", "ts"), "7 days", "replace"),
        TableSpec(
            "daily_report", DailyReport, "session", ("session", "table_name", "ticker"), "30 days", "replace"
        ),
    ]
}


def _sql_and_arrow(dtype: Any) -> tuple[str, pa_arrow.DataType]:
    name = str(dtype)
    if name.startswith("datetime64[ns, UTC]"):
        return "TIMESTAMPTZ", pa_arrow.timestamp("us", tz="UTC")
    if name == "date":
        return "DATE", pa_arrow.date32()
    if name in ("float64",):
        return "DOUBLE PRECISION", pa_arrow.float64()
    if name in ("int64", "Int64"):
        return "BIGINT", pa_arrow.int64()
    if name == "bool":
        return "BOOLEAN", pa_arrow.bool_()
    if name in ("str", "string", "object"):
        return "TEXT", pa_arrow.string()
    raise TypeError(f"no SQL mapping for pandera dtype {name!r}")


def sql_columns(spec: TableSpec) -> dict[str, tuple[str, bool]]:
    """Column name -> (SQL type, nullable), in model order."""
    out: dict[str, tuple[str, bool]] = {}
    for name, column in spec.model.to_schema().columns.items():
        sql_type, _ = _sql_and_arrow(column.dtype)
        out[name] = (sql_type, bool(column.nullable))
    return out


def column_descriptions(spec: TableSpec) -> dict[str, str]:
    """Column name -> its description (the data dictionary, ``COMMENT ON`` and the Dagster UI's)."""
    return {name: column.description or "" for name, column in spec.model.to_schema().columns.items()}


def arrow_schema(spec: TableSpec) -> pa_arrow.Schema:
    """The Arrow schema whose binary COPY matches the table's column types exactly."""
    fields = []
    for name, column in spec.model.to_schema().columns.items():
        _, arrow_type = _sql_and_arrow(column.dtype)
        fields.append(pa_arrow.field(name, arrow_type, nullable=bool(column.nullable)))
    return pa_arrow.schema(fields)
