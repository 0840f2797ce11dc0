"""The SQL behind :mod:`trading_data.read`: rows of one market table for tickers and a time range, the
latest NBBO per active ticker, and a session's bars so far, read over ADBC as Arrow.

Statements carry their values as typed literals, not bind parameters, as the IO manager's
``read_window`` does: ADBC streams a parameterless ``SELECT`` as binary COPY, batch by batch, while a
bound statement is buffered whole by libpq first. Every literal is ours: bounds are date/datetime
objects, tickers are checked against the ticker pattern (letters, digits, ``.`` and ``-`` only) first.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import adbc_driver_manager
import adbc_driver_postgresql.dbapi as adbc
import pyarrow as pa

from trading_data.calendar import session_window
from trading_data.db.aggregate_sql import AGGREGATE_COLUMNS, AGGREGATES, COLUMNS
from trading_data.db.aggregate_sql import KEY as AGGREGATE_KEY
from trading_data.db.arrow_frames import nullable_ints
from trading_data.db.migrate import validate_schema_name
from trading_data.db.url import mask_password
from trading_data.domain.tickers import TICKER_PATTERN, not_a_ticker
from trading_data.schemas import TABLES, TableSpec


class DatabaseUnreachableError(RuntimeError):
    """The market database cannot be reached; the message says how to start or name it."""


@dataclass(frozen=True)
class Readable:
    """What a read needs of a table: its columns in order, time column, key, and the BIGINT columns that
    hold nulls (read as pandas ``Int64``, not ``float64``)."""

    name: str
    columns: tuple[str, ...]
    time_column: str
    primary_key: tuple[str, ...]
    nullable_ints: frozenset[str]

    @classmethod
    def of_table(cls, spec: TableSpec) -> Readable:
        columns = tuple(spec.columns)
        return cls(spec.name, columns, spec.time_column, spec.primary_key, nullable_ints(spec))

    @classmethod
    def of_aggregate(cls, name: str) -> Readable:
        nullable = frozenset(
            column
            for column, definition in AGGREGATE_COLUMNS.items()
            if definition.sql_type == "BIGINT" and definition.nullable
        )
        return cls(name, COLUMNS, "ts", AGGREGATE_KEY, nullable)


READABLE: dict[str, Readable] = {
    **{name: Readable.of_table(spec) for name, spec in TABLES.items()},
    **{name: Readable.of_aggregate(name) for name in AGGREGATES},
}
"""Every table the read API and ``trading-data read`` read: the market tables and the bar aggregates."""


@dataclass(frozen=True)
class RowsQuery:
    """Rows of ``table`` with ``start <= time column < end`` (dates for session tables, aware UTC
    datetimes otherwise; either may be None: unbounded), for ``tickers`` (None: all), and for bars of
    one ``timespan``."""

    table: str
    start: dt.date | dt.datetime | None = None
    end: dt.date | dt.datetime | None = None
    tickers: tuple[str, ...] | None = None
    timespan: str | None = None
    columns: tuple[str, ...] | None = None

    @property
    def spec(self) -> Readable:
        return READABLE[self.table]


def literal(value: Any) -> str:
    """A bound as a typed SQL literal (aware datetimes in UTC)."""
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            raise ValueError(f"time bound {value!r} has no time zone")
        return f"'{value.astimezone(dt.UTC).isoformat()}'::timestamptz"
    if isinstance(value, dt.date):
        return f"'{value.isoformat()}'::date"
    raise TypeError(f"bound {value!r} is neither a date nor a datetime")


def ticker_list(tickers: Sequence[str]) -> str:
    """``('AAPL', 'BRK.B')`` after checking every symbol (nothing but the pattern's characters)."""
    bad = [t for t in tickers if not TICKER_PATTERN.match(t)]
    if bad:
        raise not_a_ticker(bad[0])
    if not tickers:
        raise ValueError("an empty list of tickers selects nothing; pass None for every ticker")
    return "(" + ", ".join(f"'{t}'" for t in tickers) + ")"


def rows_sql(schema: str, query: RowsQuery) -> str:
    """The ``SELECT`` of ``query``, ordered by time then the rest of the key (a stable order)."""
    spec = query.spec
    columns = list(query.columns or spec.columns)
    unknown = [c for c in columns if c not in spec.columns]
    if unknown:
        raise ValueError(f"{spec.name} has no column(s) {unknown}; its columns: {', '.join(spec.columns)}")
    time = spec.time_column
    where = []
    if query.start is not None:
        where.append(f"{time} >= {literal(query.start)}")
    if query.end is not None:
        where.append(f"{time} < {literal(query.end)}")
    if query.tickers is not None:
        where.append(f"ticker IN {ticker_list(query.tickers)}")
    if query.timespan is not None:
        if "timespan" not in spec.columns:
            raise ValueError(f"timespan applies to prices only, not to {spec.name}")
        if query.timespan not in ("minute", "day"):
            raise ValueError(f"timespan must be 'minute' or 'day', got {query.timespan!r}")
        where.append(f"timespan = '{query.timespan}'")
    order = [time, *(c for c in spec.primary_key if c != time)]
    return (
        f"SELECT {', '.join(columns)} FROM {validate_schema_name(schema)}.{spec.name}"
        + (f" WHERE {' AND '.join(where)}" if where else "")
        + f" ORDER BY {', '.join(order)}"
    )


def _active(schema: str, session: dt.date) -> str:
    return f"SELECT ticker FROM {schema}.selected_tickers WHERE session = {literal(session)} AND is_active"


def latest_nbbo_sql(schema: str, session: dt.date) -> str:
    """The last quote of ``session`` (its New York day) per ticker active that session: one index probe
    per ticker on the quotes key (ticker, ts, sequence_number), newest first."""
    schema = validate_schema_name(schema)
    start, end = session_window(session)
    columns = ", ".join(f"q.{c}" for c in TABLES["quotes"].columns)
    return (
        f"SELECT {columns} FROM ({_active(schema, session)}) AS a CROSS JOIN LATERAL ("
        f"SELECT * FROM {schema}.quotes WHERE ticker = a.ticker AND ts >= {literal(start)} "
        f"AND ts < {literal(end)} ORDER BY ts DESC, sequence_number DESC LIMIT 1) AS q ORDER BY q.ticker"
    )


def session_bars_sql(schema: str, session: dt.date, timespan: str = "minute") -> str:
    """Bars of ``session`` so far for the tickers active that session."""
    schema = validate_schema_name(schema)
    start, end = session_window(session)
    query = RowsQuery("prices", start, end, timespan=timespan)
    sql = rows_sql(schema, query)
    head, order = sql.split(" ORDER BY ")
    return f"{head} AND ticker IN ({_active(schema, session)}) ORDER BY {order}"


@contextmanager
def connect(url: str) -> Iterator[Any]:
    """An ADBC connection, closed after the block; an unreachable server is one sentence."""
    try:
        conn = adbc.connect(url)
    except adbc_driver_manager.Error as exc:
        raise DatabaseUnreachableError(
            f"cannot reach PostgreSQL at {mask_password(url)}: {exc}. Start it with "
            "`trading-data db start` or set TRADING_DATA_DATABASE_URL."
        ) from exc
    try:
        yield conn
    finally:
        conn.close()


def read_arrow(url: str, sql: str) -> pa.Table:
    """The whole result of ``sql`` as one Arrow table."""
    with connect(url) as conn, conn.cursor() as cur:
        cur.execute(sql)
        return cur.fetch_arrow_table()


def iter_arrow(url: str, sql: str, chunk_rows: int) -> Iterator[pa.Table]:
    """The result of ``sql`` as Arrow tables of ``chunk_rows`` rows (the last one shorter), streamed:
    memory holds one chunk and the driver's current batch, whatever the result's size."""
    if chunk_rows < 1:
        raise ValueError(f"chunk_rows must be at least 1, got {chunk_rows}")
    with connect(url) as conn, conn.cursor() as cur:
        cur.execute(sql)
        reader = cur.fetch_record_batch()
        pending: list[pa.RecordBatch] = []
        held = 0
        for batch in reader:
            while batch.num_rows:
                take = min(batch.num_rows, chunk_rows - held)
                pending.append(batch.slice(0, take))
                held += take
                batch = batch.slice(take)
                if held == chunk_rows:
                    yield pa.Table.from_batches(pending, schema=reader.schema)
                    pending, held = [], 0
        if held:
            yield pa.Table.from_batches(pending, schema=reader.schema)
