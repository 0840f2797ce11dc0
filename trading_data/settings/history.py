"""How much history the platform keeps: the first session of the partitions, and per-table retention.

The first session's default moves once a year, not daily (January 1st two years before the current
year, in New York): the Dagster definitions derive their partitions from it, and every process that
loads them (code server, run workers, the daemon) must agree on the same partitions all day.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from trading_data.settings.parsing import Setting, SettingsError, integer

# Polygon serves US stocks from 2003; the calendar's table (trading_data.calendar.CALENDAR_START) too.
EARLIEST_FIRST_SESSION = dt.date(2003, 1, 2)
DEFAULT_YEARS_BACK = 2


def _first_session(option: str, value: object) -> dt.date:
    if isinstance(value, dt.date):
        day = value
    else:
        try:
            day = dt.date.fromisoformat(str(value).strip())
        except ValueError:
            raise SettingsError(option, "must be a date YYYY-MM-DD, e.g. 2022-01-03") from None
    if day < EARLIEST_FIRST_SESSION:
        raise SettingsError(
            option,
            f"must be on or after {EARLIEST_FIRST_SESSION} (Polygon serves stocks from 2003), got {day}",
        )
    return day


FIRST_SESSION: Setting[dt.date | None] = Setting(
    "TRADING_DATA_FIRST_SESSION",
    None,
    _first_session,
    "The first session the partitions (and so backfills) start from; the first NYSE session on or after "
    "this date. Moving it later hides older partitions in Dagster but deletes no stored data.",
    default_text="January 1st two years before the current year (2024-01-02 in 2026)",
)


def first_session_date(today: dt.date, environ: Any = None) -> dt.date:
    """The configured first day, else January 1st ``DEFAULT_YEARS_BACK`` years before ``today``'s year."""
    configured = FIRST_SESSION.get(environ)
    return configured if configured is not None else dt.date(today.year - DEFAULT_YEARS_BACK, 1, 1)


def _retention(table: str, default: int, meaning: str) -> Setting[int]:
    return Setting(
        f"TRADING_DATA_RETENTION_{table.upper()}_DAYS",
        default,
        integer(0),
        f"Days of {meaning} TimescaleDB keeps (a retention policy dropping older chunks); 0 keeps them "
        "forever. Plain PostgreSQL keeps everything.",
        default_text="0 (forever)" if default == 0 else "",
    )


RETENTION_DAYS: dict[str, Setting[int]] = {
    "quotes": _retention("quotes", 90, "NBBO quotes"),
    "trades": _retention("trades", 365, "trades"),
    "prices": _retention("prices", 0, "minute and daily bars"),
    "options_flow": _retention("options_flow", 0, "options flow"),
}
"""Retention per market table (the tables not named here are kept forever)."""

HISTORY_SETTINGS: tuple[Setting[Any], ...] = (FIRST_SESSION, *RETENTION_DAYS.values())
