"""What is stored: per market table and bar aggregate (``bars_5m``, ``bars_1h``), the sessions,
tickers, rows and bytes, the first and last session, and the NYSE sessions missing between them (or
within the range asked for)."""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass

import psycopg

from trading_data.calendar import sessions_between
from trading_data.db.catalog import CATALOG_TABLES, stored_sessions


@dataclass(frozen=True)
class TableCatalog:
    table: str
    sessions: int
    tickers: int
    rows: int
    bytes: int
    first_session: dt.date | None
    last_session: dt.date | None
    missing_sessions: list[dt.date]
    """NYSE sessions from the first to the last (or the range asked for) that hold no row."""
    off_calendar_days: list[dt.date]
    """Days holding rows that are not NYSE sessions (a weekend or a holiday)."""

    def as_json(self) -> dict[str, object]:
        data = asdict(self)
        for key in ("first_session", "last_session"):
            data[key] = data[key] and data[key].isoformat()
        for key in ("missing_sessions", "off_calendar_days"):
            data[key] = [d.isoformat() for d in data[key]]
        return data


def table_catalog(
    conn: psycopg.Connection,
    schema: str,
    table: str,
    start: dt.date | None = None,
    end: dt.date | None = None,
) -> TableCatalog:
    stored = stored_sessions(conn, schema, table)
    days = sorted(stored.sessions)
    first, last = (days[0], days[-1]) if days else (None, None)
    lo, hi = start or first, end or last
    expected = sessions_between(lo, hi) if lo and hi and lo <= hi else []
    on_calendar = set(sessions_between(first, last)) if first and last else set()
    return TableCatalog(
        table=table,
        sessions=len(days),
        tickers=stored.tickers,
        rows=stored.rows,
        bytes=stored.bytes,
        first_session=first,
        last_session=last,
        missing_sessions=[d for d in expected if d not in stored.sessions],
        off_calendar_days=[d for d in days if d not in on_calendar],
    )


def catalog(
    url: str,
    schema: str,
    tables: list[str] | None = None,
    start: dt.date | None = None,
    end: dt.date | None = None,
) -> list[TableCatalog]:
    """The catalog of ``tables`` (default: every market table and bar aggregate), one read-only
    transaction."""
    with psycopg.connect(url) as conn:
        conn.read_only = True
        return [table_catalog(conn, schema, t, start, end) for t in tables or list(CATALOG_TABLES)]


def _size(n: int) -> str:
    value = float(n)
    for unit in ("B", "kB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError


def _days(days: list[dt.date], shown: int = 3) -> str:
    if not days:
        return "none"
    text = ", ".join(d.isoformat() for d in days[:shown])
    return f"{len(days)}: {text}" + (", …" if len(days) > shown else "")


def render(entries: list[TableCatalog]) -> str:
    """A fixed-width table for the terminal."""
    header = ("table", "sessions", "tickers", "rows", "on disk", "first", "last", "missing sessions")
    lines = [header] + [
        (
            e.table,
            str(e.sessions),
            str(e.tickers),
            f"{e.rows:,}",
            _size(e.bytes),
            e.first_session.isoformat() if e.first_session else "-",
            e.last_session.isoformat() if e.last_session else "-",
            _days(e.missing_sessions),
        )
        for e in entries
    ]
    widths = [max(len(row[i]) for row in lines) for i in range(len(header))]
    right = {1, 2, 3, 4}
    return "\n".join(
        "  ".join(
            cell.rjust(w) if i in right else cell.ljust(w)
            for i, (cell, w) in enumerate(zip(row, widths, strict=True))
        ).rstrip()
        for row in lines
    )
