"""The read API: each market table for tickers and a time range (or sessions), as frames typed like
the table's pandera model, or as Arrow tables, whole or in chunks of bounded size.

Rules every function shares:

- ``tickers``: a list of symbols (or one symbol, or several comma-separated), in any case (``spy`` reads
  SPY); None reads every ticker.
- ``start`` (inclusive) and ``end`` (exclusive): an ISO string, a date, a datetime or a pandas
  Timestamp. A value without a time zone is read in ``tz``; a date means its midnight in ``tz``. For
  the session tables (``selections``, ``positions``) bounds are sessions (New York dates).
- ``sessions``: instead of ``start``/``end``, one NYSE session (``"2026-11-25"``; a weekend or a holiday
  is refused, naming it) or an inclusive ``(first, last)`` pair; a session's rows are those stamped
  within its New York calendar day (midnight to midnight, pre- and after-market included).
- ``tz``: ``"UTC"`` (default: the time columns keep exactly the model's dtype) or an IANA zone such as
  ``"America/New_York"`` (the same instants, shown in that zone).
- ``arrow=True`` returns a ``pyarrow.Table``; ``chunk_rows=N`` returns an iterator of frames (or
  tables) of at most N rows, streamed from the server, for ranges too large for memory.
- ``database_url`` / ``schema`` default to the platform's settings (``TRADING_DATA_DATABASE_URL``, else
  the embedded server; ``TRADING_DATA_SCHEMA``).

Rows come ordered by time, then by the rest of the table's key.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Sequence
from typing import TypeAlias
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import pandas as pd
import pyarrow as pa

from trading_data.calendar import NEW_YORK, is_session, previous_sessions, session, session_window
from trading_data.clock import utc_now
from trading_data.db import reads
from trading_data.db.arrow_frames import frame_from_typed_arrow
from trading_data.db.reads import READABLE, Readable
from trading_data.db.url import market_database_url
from trading_data.domain.tickers import normalize_symbols
from trading_data.settings.platform import SCHEMA

Bound: TypeAlias = str | dt.date | dt.datetime | pd.Timestamp
Sessions: TypeAlias = str | dt.date | tuple[str | dt.date, str | dt.date]
Tickers: TypeAlias = str | Sequence[str] | None
Result: TypeAlias = pd.DataFrame | pa.Table | Iterator[pd.DataFrame] | Iterator[pa.Table]


def _zone(tz: str) -> ZoneInfo:
    try:
        return ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f"unknown time zone {tz!r}: use 'UTC' or an IANA name such as 'America/New_York'"
        ) from None


def _day(value: str | dt.date) -> dt.date:
    if isinstance(value, dt.datetime):
        raise TypeError(f"a session is a date, not a datetime: {value!r}")
    return dt.date.fromisoformat(value) if isinstance(value, str) else value


def _session_days(sessions: Sessions) -> tuple[dt.date, dt.date]:
    if isinstance(sessions, tuple):
        first, last = (_day(s) for s in sessions)
        if last < first:
            raise ValueError(f"sessions ({first}, {last}): the last comes before the first")
        return first, last
    day = _day(sessions)
    session(day)  # a weekend or a holiday: ValueError naming it
    return day, day


def _instant(value: Bound, zone: ZoneInfo) -> dt.datetime:
    stamp = pd.Timestamp(value)
    stamp = stamp.tz_localize(zone) if stamp.tzinfo is None else stamp
    return stamp.tz_convert("UTC").to_pydatetime()


def _date(value: Bound, zone: ZoneInfo) -> dt.date:
    if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        return value
    stamp = pd.Timestamp(value)
    return (stamp.tz_convert(NEW_YORK) if stamp.tzinfo is not None else stamp).date()


def _bounds(
    spec: Readable, start: Bound | None, end: Bound | None, sessions: Sessions | None, zone: ZoneInfo
) -> tuple[dt.date | dt.datetime | None, dt.date | dt.datetime | None]:
    if sessions is not None:
        if start is not None or end is not None:
            raise ValueError("give either sessions or start/end, not both")
        first, last = _session_days(sessions)
        if spec.time_column == "session":
            return first, last + dt.timedelta(days=1)
        return session_window(first)[0], session_window(last)[1]
    convert = _date if spec.time_column == "session" else _instant
    return (
        None if start is None else convert(start, zone),
        None if end is None else convert(end, zone),
    )


def _tickers(tickers: Tickers) -> tuple[str, ...] | None:
    """The symbols as stored (``spy`` reads SPY), each checked; None for every ticker."""
    return None if tickers is None else tuple(normalize_symbols(tickers))


def _in_zone_arrow(table: pa.Table, tz: str) -> pa.Table:
    if tz == "UTC":
        return table
    fields = [
        f.with_type(pa.timestamp(f.type.unit, tz=tz)) if pa.types.is_timestamp(f.type) else f
        for f in table.schema
    ]
    return table.cast(pa.schema(fields))


def _in_zone_frame(spec: Readable, table: pa.Table, tz: str) -> pd.DataFrame:
    frame = frame_from_typed_arrow(table, spec.nullable_ints)
    if tz != "UTC":
        for name, dtype in frame.dtypes.items():
            if isinstance(dtype, pd.DatetimeTZDtype):
                frame[name] = frame[name].dt.tz_convert(tz)
    return frame


def _run(spec: Readable, sql: str, url: str, tz: str, arrow: bool, chunk_rows: int | None) -> Result:
    if chunk_rows is None:
        table = reads.read_arrow(url, sql)
        return _in_zone_arrow(table, tz) if arrow else _in_zone_frame(spec, table, tz)
    chunks = reads.iter_arrow(url, sql, chunk_rows)
    if arrow:
        return (_in_zone_arrow(chunk, tz) for chunk in chunks)
    return (_in_zone_frame(spec, chunk, tz) for chunk in chunks)


def read_table(
    table: str,
    tickers: Tickers = None,
    start: Bound | None = None,
    end: Bound | None = None,
    *,
    sessions: Sessions | None = None,
    timespan: str | None = None,
    columns: Sequence[str] | None = None,
    tz: str = "UTC",
    arrow: bool = False,
    chunk_rows: int | None = None,
    database_url: str | None = None,
    schema: str | None = None,
) -> Result:
    """Rows of ``table``: a market table (one of :data:`trading_data.schemas.TABLES`) or a bar aggregate
    (``bars_5m``, ``bars_1h``: OHLCV per ticker and bucket, stamped with the bucket's start)."""
    if table not in READABLE:
        raise ValueError(f"no table {table!r}; tables: {', '.join(READABLE)}")
    spec = READABLE[table]
    zone = _zone(tz)
    lo, hi = _bounds(spec, start, end, sessions, zone)
    cols = tuple(columns) if columns is not None else None
    query = reads.RowsQuery(table, lo, hi, _tickers(tickers), timespan, cols)
    sql = reads.rows_sql(schema or SCHEMA.get(), query)
    return _run(spec, sql, database_url or market_database_url(), tz, arrow, chunk_rows)


def bars(
    tickers: Tickers = None,
    start: Bound | None = None,
    end: Bound | None = None,
    *,
    timespan: str = "minute",
    **options: object,
) -> Result:
    """OHLCV bars (``prices``) of one timespan: ``minute`` bars are stamped with their start (UTC),
    ``day`` bars with New York midnight of their session (05:00 UTC in winter, 04:00 in summer)."""
    if timespan not in ("minute", "day"):
        raise ValueError(f"timespan must be 'minute' or 'day', got {timespan!r}")
    return read_table("prices", tickers, start, end, timespan=timespan, **options)  # type: ignore[arg-type]


def quotes(
    tickers: Tickers = None, start: Bound | None = None, end: Bound | None = None, **options: object
) -> Result:
    """NBBO quotes, stamped with their SIP time (µs, UTC)."""
    return read_table("quotes", tickers, start, end, **options)  # type: ignore[arg-type]


def trades(
    tickers: Tickers = None, start: Bound | None = None, end: Bound | None = None, **options: object
) -> Result:
    """Individual trades, stamped with their SIP time (µs, UTC)."""
    return read_table("trades", tickers, start, end, **options)  # type: ignore[arg-type]


def options_flow(
    tickers: Tickers = None, start: Bound | None = None, end: Bound | None = None, **options: object
) -> Result:
    """Flow alerts and option-chain snapshots of the underlying ``tickers``."""
    return read_table("options_flow", tickers, start, end, **options)  # type: ignore[arg-type]


def indicators(
    tickers: Tickers = None, start: Bound | None = None, end: Bound | None = None, **options: object
) -> Result:
    """Technical indicators per minute bar (stamped like the bar)."""
    return read_table("indicators", tickers, start, end, **options)  # type: ignore[arg-type]


def selections(
    tickers: Tickers = None, start: Bound | None = None, end: Bound | None = None, **options: object
) -> Result:
    """The tickers considered each session (``is_active``: collected that session)."""
    return read_table("selected_tickers", tickers, start, end, **options)  # type: ignore[arg-type]


def positions(
    tickers: Tickers = None, start: Bound | None = None, end: Bound | None = None, **options: object
) -> Result:
    """The position sizes of each session's active tickers."""
    return read_table("position_sizes", tickers, start, end, **options)  # type: ignore[arg-type]


def current_session(now: dt.datetime | None = None) -> dt.date:
    """Today's session in New York (by the platform's clock), else the last one before today."""
    day = (now or utc_now()).astimezone(NEW_YORK).date()
    return day if is_session(day) else previous_sessions(day, 1)[0]


def latest_nbbo(
    session_key: str | dt.date | None = None,
    *,
    tz: str = "UTC",
    arrow: bool = False,
    database_url: str | None = None,
    schema: str | None = None,
) -> pd.DataFrame | pa.Table:
    """The last quote of the session (default: :func:`current_session`) per ticker active that session,
    one row per ticker that has a quote, ordered by ticker."""
    day = _day(session_key) if session_key is not None else current_session()
    sql = reads.latest_nbbo_sql(schema or SCHEMA.get(), day)
    _zone(tz)
    result = _run(READABLE["quotes"], sql, database_url or market_database_url(), tz, arrow, None)
    return result  # type: ignore[return-value]


def bars_so_far(
    session_key: str | dt.date | None = None,
    *,
    timespan: str = "minute",
    tz: str = "UTC",
    arrow: bool = False,
    database_url: str | None = None,
    schema: str | None = None,
) -> pd.DataFrame | pa.Table:
    """The session's bars so far (default: :func:`current_session`) for the tickers active that
    session, ordered by time then ticker."""
    day = _day(session_key) if session_key is not None else current_session()
    sql = reads.session_bars_sql(schema or SCHEMA.get(), day, timespan)
    _zone(tz)
    result = _run(READABLE["prices"], sql, database_url or market_database_url(), tz, arrow, None)
    return result  # type: ignore[return-value]
