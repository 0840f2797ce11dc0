"""The NYSE trading calendar (``exchange_calendars`` XNYS) and the one partitions definition.

Partition keys are session dates (``YYYY-MM-DD``); each partition's window is one New York day.

Sessions, opens and closes from CALENDAR_START to CALENDAR_END come from a table of XNYS's full-day
holidays and early closes (``trading_data_tests/test_calendar_table.py`` checks it against
``exchange_calendars`` day by day): importing exchange_calendars and building the calendar costs ~0.8 s,
which every process paid at import (the partitions' exclusions) and every run step paid again. The
calendar itself is built only for what the table does not hold: holiday names and dates outside it.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

import pandas as pd

if TYPE_CHECKING:
    import exchange_calendars as xcals

NEW_YORK = ZoneInfo("America/New_York")
UTC = dt.UTC
# exchange_calendars' default horizon is about a year ahead; ask for an explicit far end.
CALENDAR_START = "2003-01-02"  # the first session of 2003: Polygon has no stock data before
CALENDAR_END = "2030-12-31"
REGULAR_OPEN = dt.time(9, 30)
REGULAR_CLOSE = dt.time(16, 0)


def _dates(text: str) -> frozenset[dt.date]:
    return frozenset(dt.date.fromisoformat(day) for day in text.split())


# XNYS from CALENDAR_START to CALENDAR_END, as exchange_calendars 4.x states it (regenerate as
# trading_data_tests/test_calendar_table.py says when the calendar package or CALENDAR_END changes).
_FULL_DAY_HOLIDAYS = _dates(
    """
    2003-01-20 2003-02-17 2003-04-18 2003-05-26 2003-07-04 2003-09-01 2003-11-27 2003-12-25
    2004-01-01 2004-01-19 2004-02-16 2004-04-09 2004-05-31 2004-06-11 2004-07-05 2004-09-06 2004-11-25
    2004-12-24 2005-01-17 2005-02-21 2005-03-25 2005-05-30 2005-07-04 2005-09-05 2005-11-24 2005-12-26
    2006-01-02 2006-01-16 2006-02-20 2006-04-14 2006-05-29 2006-07-04 2006-09-04 2006-11-23 2006-12-25
    2007-01-01 2007-01-02 2007-01-15 2007-02-19 2007-04-06 2007-05-28 2007-07-04 2007-09-03 2007-11-22
    2007-12-25 2008-01-01 2008-01-21 2008-02-18 2008-03-21 2008-05-26 2008-07-04 2008-09-01 2008-11-27
    2008-12-25 2009-01-01 2009-01-19 2009-02-16 2009-04-10 2009-05-25 2009-07-03 2009-09-07 2009-11-26
    2009-12-25 2010-01-01 2010-01-18 2010-02-15 2010-04-02 2010-05-31 2010-07-05 2010-09-06 2010-11-25
    2010-12-24 2011-01-17 2011-02-21 2011-04-22 2011-05-30 2011-07-04 2011-09-05 2011-11-24 2011-12-26
    2012-01-02 2012-01-16 2012-02-20 2012-04-06 2012-05-28 2012-07-04 2012-09-03 2012-10-29 2012-10-30
    2012-11-22 2012-12-25 2013-01-01 2013-01-21 2013-02-18 2013-03-29 2013-05-27 2013-07-04 2013-09-02
    2013-11-28 2013-12-25 2014-01-01 2014-01-20 2014-02-17 2014-04-18 2014-05-26 2014-07-04 2014-09-01
    2014-11-27 2014-12-25 2015-01-01 2015-01-19 2015-02-16 2015-04-03 2015-05-25 2015-07-03 2015-09-07
    2015-11-26 2015-12-25 2016-01-01 2016-01-18 2016-02-15 2016-03-25 2016-05-30 2016-07-04 2016-09-05
    2016-11-24 2016-12-26 2017-01-02 2017-01-16 2017-02-20 2017-04-14 2017-05-29 2017-07-04 2017-09-04
    2017-11-23 2017-12-25 2018-01-01 2018-01-15 2018-02-19 2018-03-30 2018-05-28 2018-07-04 2018-09-03
    2018-11-22 2018-12-05 2018-12-25 2019-01-01 2019-01-21 2019-02-18 2019-04-19 2019-05-27 2019-07-04
    2019-09-02 2019-11-28 2019-12-25
    2020-01-01 2020-01-20 2020-02-17 2020-04-10 2020-05-25 2020-07-03 2020-09-07 2020-11-26 2020-12-25
    2021-01-01 2021-01-18 2021-02-15 2021-04-02 2021-05-31 2021-07-05 2021-09-06 2021-11-25 2021-12-24
    2022-01-17 2022-02-21 2022-04-15 2022-05-30 2022-06-20 2022-07-04 2022-09-05 2022-11-24 2022-12-26
    2023-01-02 2023-01-16 2023-02-20 2023-04-07 2023-05-29 2023-06-19 2023-07-04 2023-09-04 2023-11-23
    2023-12-25 2024-01-01 2024-01-15 2024-02-19 2024-03-29 2024-05-27 2024-06-19 2024-07-04 2024-09-02
    2024-11-28 2024-12-25 2025-01-01 2025-01-09 2025-01-20 2025-02-17 2025-04-18 2025-05-26 2025-06-19
    2025-07-04 2025-09-01 2025-11-27 2025-12-25 2026-01-01 2026-01-19 2026-02-16 2026-04-03 2026-05-25
    2026-06-19 2026-07-03 2026-09-07 2026-11-26 2026-12-25 2027-01-01 2027-01-18 2027-02-15 2027-03-26
    2027-05-31 2027-06-18 2027-07-05 2027-09-06 2027-11-25 2027-12-24 2028-01-17 2028-02-21 2028-04-14
    2028-05-29 2028-06-19 2028-07-04 2028-09-04 2028-11-23 2028-12-25 2029-01-01 2029-01-15 2029-02-19
    2029-03-30 2029-05-28 2029-06-19 2029-07-04 2029-09-03 2029-11-22 2029-12-25 2030-01-01 2030-01-21
    2030-02-18 2030-04-19 2030-05-27 2030-06-19 2030-07-04 2030-09-02 2030-11-28 2030-12-25
    """
)
# Every early close of the range is at 13:00; no session opens later than 09:30.
_EARLY_CLOSES = _dates(
    """
    2003-07-03 2003-11-28 2003-12-24 2003-12-26 2004-11-26 2005-11-25 2006-07-03 2006-11-24 2007-07-03
    2007-11-23 2007-12-24 2008-07-03 2008-11-28 2008-12-24 2009-11-27 2009-12-24 2010-11-26 2011-11-25
    2012-07-03 2012-11-23 2012-12-24 2013-07-03 2013-11-29 2013-12-24 2014-07-03 2014-11-28 2014-12-24
    2015-11-27 2015-12-24 2016-11-25 2017-07-03 2017-11-24 2018-07-03 2018-11-23 2018-12-24 2019-07-03
    2019-11-29 2019-12-24
    2020-11-27 2020-12-24 2021-11-26 2022-11-25 2023-07-03 2023-11-24 2024-07-03 2024-11-29 2024-12-24
    2025-07-03 2025-11-28 2025-12-24 2026-11-27 2026-12-24 2027-11-26 2028-07-03 2028-11-24 2029-07-03
    2029-11-23 2029-12-24 2030-07-03 2030-11-29 2030-12-24
    """
)
EARLY_CLOSE = dt.time(13, 0)
_TABLE_START = dt.date.fromisoformat(CALENDAR_START)
_TABLE_END = dt.date.fromisoformat(CALENDAR_END)


@lru_cache(maxsize=1)
def nyse() -> xcals.ExchangeCalendar:
    import exchange_calendars as xcals  # ~0.5 s to import: only where the table does not answer

    return xcals.get_calendar("XNYS", start=CALENDAR_START, end=CALENDAR_END)


def _in_table(day: dt.date) -> bool:
    return _TABLE_START <= day <= _TABLE_END


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
    if _in_table(day):
        return day.weekday() < 5 and day not in _FULL_DAY_HOLIDAYS
    return bool(nyse().is_session(pd.Timestamp(day)))


def session(day: dt.date | str) -> Session:
    """The session on ``day``; raises ValueError naming the reason when the market is closed."""
    day = dt.date.fromisoformat(day) if isinstance(day, str) else day
    if not is_session(day):
        raise ValueError(f"{day.isoformat()} is not an NYSE session ({closed_reason(day)})")
    if _in_table(day):
        close = EARLY_CLOSE if day in _EARLY_CLOSES else REGULAR_CLOSE
        return Session(
            date=day,
            open=dt.datetime.combine(day, REGULAR_OPEN, tzinfo=NEW_YORK),
            close=dt.datetime.combine(day, close, tzinfo=NEW_YORK),
        )
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
    first, last = (dt.date.fromisoformat(d) if isinstance(d, str) else d for d in (start, end))
    if _in_table(first) and _in_table(last):
        days = (first + dt.timedelta(days=n) for n in range((last - first).days + 1))
        return [day for day in days if is_session(day)]
    return [ts.date() for ts in nyse().sessions_in_range(pd.Timestamp(start), pd.Timestamp(end))]


def previous_sessions(day: dt.date, count: int) -> list[dt.date]:
    """The ``count`` sessions strictly before ``day``, oldest first."""
    found: list[dt.date] = []
    back = day - dt.timedelta(days=1)
    while len(found) < count and _in_table(back):
        if is_session(back):
            found.append(back)
        back -= dt.timedelta(days=1)
    if len(found) == count:
        return found[::-1]
    start = nyse().date_to_session(pd.Timestamp(day), direction="previous")
    if start.date() == day:
        start = nyse().previous_session(start)
    window = nyse().sessions_window(start, -count)
    return [ts.date() for ts in window]


def session_at(moment: dt.datetime) -> Session | None:
    """The session whose calendar day contains ``moment`` in New York, or None."""
    day = moment.astimezone(NEW_YORK).date()
    return session(day) if is_session(day) else None


def non_session_weekdays(start: str = CALENDAR_START, end: str = CALENDAR_END) -> list[dt.date]:
    """Weekdays that are not sessions (full-day holidays), for partition exclusions."""
    first, last = dt.date.fromisoformat(start), dt.date.fromisoformat(end)
    if _in_table(first) and _in_table(last):
        return sorted(day for day in _FULL_DAY_HOLIDAYS if first <= day <= last and day.weekday() < 5)
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
