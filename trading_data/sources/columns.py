"""The one helper family of the vendor parsers: scalar conversions and column builders.

Units: Polygon aggregate ``t`` is ms epoch UTC (window start); v3 trade/quote timestamps are ns epoch
UTC, kept raw in ``sip_ns``/``participant_ns`` while ``ts`` is the µs-precision timestamp (vendors
round the last ns digits, so ns are never a key alone). Unusual Whales sends decimal strings for prices,
premiums, strikes, IV and greeks, and ``created_at`` in two formats.

The column builders serve the high-volume feeds (a page is up to 50,000 rows). ``np.fromiter`` converts
each element with ``int()`` / ``float()``, so numbers sent as decimal strings (``"12"``, ``"1.5"``)
parse exactly as the scalar helpers parse them. The values it cannot take take an explicit, slower
path with the scalar helpers' rules: None (a missing value) and, for floats, blank strings.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from operator import itemgetter
from typing import Any

import numpy as np
import pandas as pd

from trading_data import schemas

Row = Mapping[str, Any]


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
# Columns


def column(rows: Sequence[Row], key: str) -> list[Any]:
    """``row[key]`` of every row; a missing key raises KeyError."""
    return [r[key] for r in rows]


def optional(rows: Sequence[Row], key: str, default: Any = None) -> list[Any]:
    return [r.get(key, default) for r in rows]


def int_column(values: list[Any]) -> np.ndarray:
    """A required integer column (``int()`` of every value; None raises) as int64."""
    try:
        return np.fromiter(values, dtype=np.int64, count=len(values))
    except TypeError:
        return np.array([int(v) for v in values], dtype=np.int64)  # raises naming the bad value


def nullable_int_column(values: list[Any]) -> pd.arrays.IntegerArray:
    """A nullable integer column (None → <NA>, else ``int()``) as ``Int64``."""
    n = len(values)
    try:
        data = np.fromiter(values, dtype=np.int64, count=n)
    except TypeError:  # None among the values (or a non-number, which raises again below)
        mask = np.fromiter((v is None for v in values), dtype=bool, count=n)
        data = np.fromiter((0 if v is None else v for v in values), dtype=np.int64, count=n)
        return pd.arrays.IntegerArray(data, mask)
    return pd.arrays.IntegerArray(data, np.zeros(n, dtype=bool))


def float_column(values: list[Any]) -> np.ndarray:
    """A float64 column (None and blank strings → NaN, decimal strings parsed) as :func:`to_float`."""
    try:
        return np.fromiter(values, dtype=np.float64, count=len(values))  # None → NaN, as to_float
    except (TypeError, ValueError):  # a blank string (NaN for to_float) or a non-number (raises again)
        return np.array(
            [np.nan if v is None else float(v) for v in (to_float(x) for x in values)], dtype="float64"
        )


def repeated(value: str, n: int) -> np.ndarray:
    """``value`` ``n`` times as an object column (a list of the same ``str`` costs pandas a type inference)."""
    return np.full(n, value, dtype=object)


def _fast_field(rows: Sequence[Row], key: str, dtype: type) -> np.ndarray | None:
    """``row[key]`` of every row straight into an array (no list in between), or None when a row lacks
    ``key`` or a value needs the column builders' slower rules (None among ints, blank strings)."""
    try:
        return np.fromiter(map(itemgetter(key), rows), dtype=dtype, count=len(rows))
    except (KeyError, TypeError, ValueError):
        return None


def int_field(rows: Sequence[Row], key: str) -> np.ndarray:
    """``int_column(column(rows, key))``, faster."""
    fast = _fast_field(rows, key, np.int64)
    return int_column(column(rows, key)) if fast is None else fast


def nullable_int_field(rows: Sequence[Row], key: str) -> pd.arrays.IntegerArray:
    """``nullable_int_column(optional(rows, key))``, faster."""
    fast = _fast_field(rows, key, np.int64)
    if fast is None:
        return nullable_int_column(optional(rows, key))
    return pd.arrays.IntegerArray(fast, np.zeros(len(fast), dtype=bool))


_REQUIRED = object()


def float_field(rows: Sequence[Row], key: str, default: Any = _REQUIRED) -> np.ndarray:
    """``float_column(column(rows, key))``, or with a ``default`` ``float_column(optional(...))``, faster."""
    fast = _fast_field(rows, key, np.float64)
    if fast is not None:
        return fast
    return float_column(column(rows, key) if default is _REQUIRED else optional(rows, key, default))


def ns_to_utc(ns: np.ndarray) -> pd.DatetimeIndex:
    """ns epochs → UTC timestamps truncated to µs, as :func:`ns_to_timestamp` (floor division)."""
    # A datetime64 view localized to UTC: pd.to_datetime's unit parsing cost ~10x as much (0.13 ms a small page).
    return pd.DatetimeIndex((ns // 1000 * 1000).view("M8[ns]")).tz_localize("UTC")


def ms_to_utc(ms: np.ndarray) -> pd.DatetimeIndex:
    """ms epochs → UTC timestamps (ns precision), as :func:`ms_to_timestamp`."""
    return pd.to_datetime(ms * 1_000_000, unit="ns", utc=True)


def utc_index(values: Sequence[Any]) -> pd.DatetimeIndex:
    """Timestamps → a UTC index (an empty one for no values)."""
    return pd.DatetimeIndex(list(values), tz="UTC") if len(values) else pd.DatetimeIndex([], tz="UTC")


# --------------------------------------------------------------------------------------------------
# Frames

_DTYPES: dict[Any, pd.Series] = {}


def finish(df: pd.DataFrame, model: Any, validate: bool) -> pd.DataFrame:
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


def _present(series: pd.Series) -> list[Any]:
    """The values of ``series`` with every missing one (NaN, NaT, <NA>) as None."""
    return list(series.astype(object).where(series.notna(), None))


def records_frame(
    records: list[dict[str, Any]], model: Any, *, int_columns: Iterable[str] = (), validate: bool = True
) -> pd.DataFrame:
    """Row dicts → ``model``'s columns (``int_columns`` as nullable ``Int64``), validated unless told."""
    columns = list(model.to_schema().columns)
    df = pd.DataFrame.from_records(records, columns=columns)
    for col in int_columns:
        df[col] = nullable_int_column(_present(df[col]))
    return model.validate(df) if validate else df


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


def options_flow_frame(
    records: list[dict[str, Any]], *, ticker: str | list[str], record_type: str, ts: list[pd.Timestamp]
) -> pd.DataFrame:
    """Row dicts of either vendor → a validated ``schemas.OptionsFlow`` frame of ``record_type``."""
    df = pd.DataFrame.from_records(
        records,
        columns=[
            c for c in schemas.TABLES["options_flow"].columns if c not in ("ts", "ticker", "record_type")
        ],
    )
    df.insert(0, "ts", utc_index(ts))
    df.insert(1, "ticker", ticker if isinstance(ticker, list) else [ticker] * len(records))
    df.insert(2, "record_type", [record_type] * len(records))
    for col in _FLOW_FLOATS:
        df[col] = float_column(_present(df[col]))
    for col in _FLOW_INTS:
        df[col] = nullable_int_column(_present(df[col]))
    return schemas.OptionsFlow.validate(df)
