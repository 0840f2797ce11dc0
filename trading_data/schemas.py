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

    session: Series[pandas_engine.Date]
    ticker: Series[str] = pa.Field(str_matches=TICKER_PATTERN.pattern)
    avg_volume: Series[float] = pa.Field(ge=0, nullable=True)
    last_close: Series[float] = pa.Field(gt=0, nullable=True)
    atr: Series[float] = pa.Field(ge=0, nullable=True)
    volatility: Series[float] = pa.Field(ge=0, nullable=True)
    relative_volume: Series[float] = pa.Field(ge=0, nullable=True)
    momentum: Series[float] = pa.Field(nullable=True)
    opportunity_score: Series[float] = pa.Field(nullable=True)
    rank: Series[pd.Int64Dtype] = pa.Field(ge=1, nullable=True)
    in_focus: Series[bool]
    is_active: Series[bool]
    is_fallback: Series[bool]
    selection_source: Series[str] = pa.Field(isin=["selection", "symbols", "fallback"])
    selected_at: Series[UTC]  # type: ignore[valid-type]


class PositionSizes(_Base):
    """Volatility-targeted position per active ticker."""

    session: Series[pandas_engine.Date]
    ticker: Series[str] = pa.Field(str_matches=TICKER_PATTERN.pattern)
    price: Series[float] = pa.Field(gt=0)
    atr: Series[float] = pa.Field(ge=0)
    stop_distance: Series[float] = pa.Field(ge=0)
    risk_amount: Series[float] = pa.Field(ge=0)
    shares: Series[int] = pa.Field(ge=0)
    notional: Series[float] = pa.Field(ge=0)
    weight: Series[float] = pa.Field(ge=0, le=1)
    is_fallback: Series[bool]
    computed_at: Series[UTC]  # type: ignore[valid-type]


class Prices(_Base):
    """OHLCV bars; ``timespan`` is ``minute`` or ``day``; ``ts`` is the bar's window start."""

    ts: Series[UTC]  # type: ignore[valid-type]
    ticker: Series[str] = pa.Field(str_matches=TICKER_PATTERN.pattern)
    timespan: Series[str] = pa.Field(isin=["minute", "day"])
    open: Series[float] = pa.Field(gt=0)
    high: Series[float] = pa.Field(gt=0)
    low: Series[float] = pa.Field(gt=0)
    close: Series[float] = pa.Field(gt=0)
    volume: Series[float] = pa.Field(ge=0)
    vwap: Series[float] = pa.Field(gt=0, nullable=True)
    transactions: Series[pd.Int64Dtype] = pa.Field(ge=0, nullable=True)

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

    ts: Series[UTC]  # type: ignore[valid-type]
    ticker: Series[str]
    sequence_number: Series[int] = pa.Field(ge=0)
    sip_ns: Series[int] = pa.Field(ge=0)
    participant_ns: Series[pd.Int64Dtype] = pa.Field(nullable=True)
    bid_price: Series[float] = pa.Field(ge=0)
    bid_size: Series[float] = pa.Field(ge=0)
    bid_exchange: Series[pd.Int64Dtype] = pa.Field(nullable=True)
    ask_price: Series[float] = pa.Field(ge=0)
    ask_size: Series[float] = pa.Field(ge=0)
    ask_exchange: Series[pd.Int64Dtype] = pa.Field(nullable=True)
    tape: Series[pd.Int64Dtype] = pa.Field(nullable=True)

    @pa.check("ticker", **TICKER_CHECK)
    def _ticker_symbol(cls, series: pd.Series) -> pd.Series:
        return tickers_match(series)


class Trades(_Base):
    """Individual trades. Key: ticker, ts, sequence_number, exchange and the vendor's trade id."""

    ts: Series[UTC]  # type: ignore[valid-type]
    ticker: Series[str]
    sequence_number: Series[int] = pa.Field(ge=0)
    exchange: Series[int] = pa.Field(ge=0)
    trade_id: Series[str]
    sip_ns: Series[int] = pa.Field(ge=0)
    participant_ns: Series[pd.Int64Dtype] = pa.Field(nullable=True)
    price: Series[float] = pa.Field(gt=0)
    size: Series[float] = pa.Field(ge=0)
    conditions: Series[str] = pa.Field(nullable=True)
    tape: Series[pd.Int64Dtype] = pa.Field(nullable=True)

    @pa.check("ticker", **TICKER_CHECK)
    def _ticker_symbol(cls, series: pd.Series) -> pd.Series:
        return tickers_match(series)


class OptionsFlow(_Base):
    """Unusual Whales flow alerts and Polygon option-chain snapshots, one row per record.

    ``record_type`` is ``flow_alert`` (``record_id`` = the alert id) or ``chain_snapshot``
    (``record_id`` = the option symbol; ``ts`` = the poll time). Option symbols are OSI without
    Polygon's ``O:`` prefix.
    """

    ts: Series[UTC]  # type: ignore[valid-type]
    ticker: Series[str] = pa.Field(str_matches=TICKER_PATTERN.pattern)
    record_type: Series[str] = pa.Field(isin=["flow_alert", "chain_snapshot"])
    record_id: Series[str]
    option_symbol: Series[str] = pa.Field(str_matches=OSI_PATTERN.pattern)
    expiry: Series[pandas_engine.Date]
    strike: Series[float] = pa.Field(gt=0)
    option_type: Series[str] = pa.Field(isin=["call", "put"])
    price: Series[float] = pa.Field(ge=0, nullable=True)
    size: Series[pd.Int64Dtype] = pa.Field(ge=0, nullable=True)
    premium: Series[float] = pa.Field(ge=0, nullable=True)
    volume: Series[float] = pa.Field(ge=0, nullable=True)
    open_interest: Series[pd.Int64Dtype] = pa.Field(ge=0, nullable=True)
    implied_volatility: Series[float] = pa.Field(ge=0, nullable=True)
    delta: Series[float] = pa.Field(ge=-1, le=1, nullable=True)
    gamma: Series[float] = pa.Field(nullable=True)
    theta: Series[float] = pa.Field(nullable=True)
    vega: Series[float] = pa.Field(nullable=True)
    underlying_price: Series[float] = pa.Field(gt=0, nullable=True)
    alert_rule: Series[str] = pa.Field(nullable=True)


class Indicators(_Base):
    """Technical indicators per ticker and minute bar, computed without look-ahead."""

    ts: Series[UTC]  # type: ignore[valid-type]
    ticker: Series[str] = pa.Field(str_matches=TICKER_PATTERN.pattern)
    close: Series[float] = pa.Field(gt=0)
    sma_20: Series[float] = pa.Field(nullable=True)
    ema_12: Series[float] = pa.Field(nullable=True)
    ema_26: Series[float] = pa.Field(nullable=True)
    rsi_14: Series[float] = pa.Field(ge=0, le=100, nullable=True)
    macd: Series[float] = pa.Field(nullable=True)
    macd_signal: Series[float] = pa.Field(nullable=True)
    macd_hist: Series[float] = pa.Field(nullable=True)
    bb_upper: Series[float] = pa.Field(nullable=True)
    bb_middle: Series[float] = pa.Field(nullable=True)
    bb_lower: Series[float] = pa.Field(nullable=True)
    atr_14: Series[float] = pa.Field(ge=0, nullable=True)
    vwap: Series[float] = pa.Field(gt=0, nullable=True)


class DailyReport(_Base):
    """Per table and ticker: rows, coverage of the session's minutes, gaps, failures, freshness."""

    session: Series[pandas_engine.Date]
    table_name: Series[str]
    ticker: Series[str] = pa.Field(str_matches=TICKER_PATTERN.pattern)
    rows: Series[int] = pa.Field(ge=0)
    expected_minutes: Series[int] = pa.Field(ge=0)
    covered_minutes: Series[int] = pa.Field(ge=0)
    coverage: Series[float] = pa.Field(ge=0, le=1, nullable=True)
    gaps: Series[int] = pa.Field(ge=0)
    max_gap_minutes: Series[int] = pa.Field(ge=0)
    validation_failures: Series[int] = pa.Field(ge=0)
    last_ts: Series[UTC] = pa.Field(nullable=True)  # type: ignore[valid-type]
    freshness_minutes: Series[float] = pa.Field(nullable=True)
    # The closed session's reconciliation (domain/reconciliation.py), each part on its table's row:
    # trades (volumes), prices (traded minutes with a bar), quotes (half hours); null elsewhere.
    trade_volume: Series[float] = pa.Field(ge=0, nullable=True)
    day_bar_volume: Series[float] = pa.Field(ge=0, nullable=True)
    volume_deviation: Series[float] = pa.Field(nullable=True)
    traded_minutes: Series[pd.Int64Dtype] = pa.Field(ge=0, nullable=True)
    traded_minutes_with_bar: Series[pd.Int64Dtype] = pa.Field(ge=0, nullable=True)
    quoted_half_hours: Series[pd.Int64Dtype] = pa.Field(ge=0, nullable=True)
    expected_half_hours: Series[pd.Int64Dtype] = pa.Field(ge=0, nullable=True)
    reconciliation: Series[str] = pa.Field(nullable=True)  # "ok", or why the part failed


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


def arrow_schema(spec: TableSpec) -> pa_arrow.Schema:
    """The Arrow schema whose binary COPY matches the table's column types exactly."""
    fields = []
    for name, column in spec.model.to_schema().columns.items():
        _, arrow_type = _sql_and_arrow(column.dtype)
        fields.append(pa_arrow.field(name, arrow_type, nullable=bool(column.nullable)))
    return pa_arrow.schema(fields)
