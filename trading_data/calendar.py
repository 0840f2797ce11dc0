"""The NYSE trading calendar (``exchange_calendars`` XNYS) and the one partitions definition.

Partition keys are session dates (``YYYY-MM-DD``); each partition's window is one New York day.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from functools import lru_cache
from zoneinfo import ZoneInfo

import exchange_calendars as xcals
import pandas as pd

NEW_YORK = ZoneInfo("America/New_York")
UTC = dt.UTC
PARTITIONS_START = "2024-01-02"
# exchange_calendars' default horizon is about a year ahead; ask for an explicit far end.
CALENDAR_START = "2020-01-01"
CALENDAR_END = "2030-12-31"
REGULAR_CLOSE = dt.time(16, 0)


@lru_cache(maxsize=1)
def nyse() -> xcals.ExchangeCalendar:
    return xcals.get_calendar("XNYS", start=CALENDAR_START, end=CALENDAR_END)


@dataclass(frozen=True)
class Session:
    """One NYSE session with its open and close as aware New York datetimes."""

    date: dt.date
    open: dt.datetime
    close: dt.datetime

    @property
    def key(self) -> str:
        return self.date.isoformat()

    @property
    def is_early_close(self) -> bool:
        return self.close.timetz().replace(tzinfo=None) < REGULAR_CLOSE

    @property
    def minutes(self) -> int:
        return int((self.close - self.open).total_seconds() // 60)

    def has_closed(self, now: dt.datetime) -> bool:
        """The regular session is over at ``now`` (an aware time): its data can be fetched whole."""
        return now >= self.close


def session_window(day: dt.date | str) -> tuple[dt.datetime, dt.datetime]:
    """The partition window of ``day`` (a date or a ``YYYY-MM-DD`` key): New York midnight to the next
    New York midnight, as aware UTC datetimes.

    The one definition of a session's window: queries, the IO manager, the vendor clients and the
    simulator all take it from here. UTC because pyarrow (under ADBC) reads a ZoneInfo-aware datetime's
    wall-clock time as UTC once pandas is imported, which would shift a New York-aware bound.
    """
    day = dt.date.fromisoformat(day) if isinstance(day, str) else day
    start = dt.datetime.combine(day, dt.time(0), tzinfo=NEW_YORK)
    end = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(0), tzinfo=NEW_YORK)
    return start.astimezone(UTC), end.astimezone(UTC)


def is_session(day: dt.date) -> bool:
    return bool(nyse().is_session(pd.Timestamp(day)))


def session(day: dt.date | str) -> Session:
    """The session on ``day``; raises ValueError naming the reason when the market is closed."""
    day = dt.date.fromisoformat(day) if isinstance(day, str) else day
    if not is_session(day):
        raise ValueError(f"{day.isoformat()} is not an NYSE session ({closed_reason(day)})")
    ts = pd.Timestamp(day)
    cal = nyse()
    return Session(
        date=day,
        open=cal.session_open(ts).tz_convert(NEW_YORK).to_pydatetime(),
        close=cal.session_close(ts).tz_convert(NEW_YORK).to_pydatetime(),
    )


def closed_reason(day: dt.date) -> str:
    """Why the market is closed on ``day``: the weekend or the holiday's name; '' on a session."""
    if is_session(day):
        return ""
    if day.weekday() >= 5:
        return f"weekend ({day.strftime('%A')})"
    return f"holiday: {holiday_name(day) or 'market closed'}"


def holiday_name(day: dt.date) -> str | None:
    holidays = nyse().regular_holidays
    if holidays is not None:
        names = holidays.holidays(start=day, end=day, return_name=True)
        if len(names):
            return str(names.iloc[0])
    for adhoc in nyse().adhoc_holidays:
        if pd.Timestamp(adhoc).date() == day:
            return "special closure"
    return None


def sessions_between(start: dt.date | str, end: dt.date | str) -> list[dt.date]:
    """Sessions from ``start`` to ``end`` inclusive."""
    return [ts.date() for ts in nyse().sessions_in_range(pd.Timestamp(start), pd.Timestamp(end))]


def previous_sessions(day: dt.date, count: int) -> list[dt.date]:
    """The ``count`` sessions strictly before ``day``, oldest first."""
    start = nyse().date_to_session(pd.Timestamp(day), direction="previous")
    if start.date() == day:
        start = nyse().previous_session(start)
    window = nyse().sessions_window(start, -count)
    return [ts.date() for ts in window]


def session_at(moment: dt.datetime) -> Session | None:
    """The session whose calendar day contains ``moment`` in New York, or None."""
    day = moment.astimezone(NEW_YORK).date()
    return session(day) if is_session(day) else None


def non_session_weekdays(start: str = PARTITIONS_START, end: str = CALENDAR_END) -> list[dt.date]:
    """Weekdays that are not sessions (full-day holidays), for partition exclusions."""
    days = pd.bdate_range(start, end)
    sessions = set(nyse().sessions_in_range(start, end))
    return [d.date() for d in days if d not in sessions]


PRE_MARKET_OPEN = dt.time(4, 0)
AFTER_HOURS = dt.timedelta(hours=4)


def market_status(moment: dt.datetime) -> tuple[str, bool, bool]:
    """The US equity market at ``moment`` as Polygon's ``/v1/marketstatus/now`` states it:
    (``open`` | ``extended-hours`` | ``closed``, earlyHours, afterHours). Extended hours run from 04:00 to
    the open and for four hours after the close (to 20:00, or 17:00 after a 13:00 early close) on sessions.
    """
    ny = moment.astimezone(NEW_YORK)
    if not is_session(ny.date()):
        return "closed", False, False
    sess = session(ny.date())
    if sess.open <= ny < sess.close:
        return "open", False, False
    if dt.datetime.combine(ny.date(), PRE_MARKET_OPEN, tzinfo=NEW_YORK) <= ny < sess.open:
        return "extended-hours", True, False
    if sess.close <= ny < sess.close + AFTER_HOURS:
        return "extended-hours", False, True
    return "closed", False, False
