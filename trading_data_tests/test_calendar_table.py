"""The calendar's precomputed XNYS table (holidays, early closes) against exchange_calendars, day by day.

To regenerate the table: the full-day holidays are ``pd.bdate_range(CALENDAR_START, CALENDAR_END)`` minus
``nyse().sessions``; the early closes are the sessions whose New York close is not 16:00.
"""

import datetime as dt

import exchange_calendars as xcals
import pandas as pd
import pytest

from trading_data import calendar
from trading_data.calendar import CALENDAR_END, CALENDAR_START, NEW_YORK


@pytest.fixture(scope="module")
def xnys() -> xcals.ExchangeCalendar:
    return xcals.get_calendar("XNYS", start=CALENDAR_START, end=CALENDAR_END)


def _every_day() -> list[dt.date]:
    start, end = dt.date.fromisoformat(CALENDAR_START), dt.date.fromisoformat(CALENDAR_END)
    return [start + dt.timedelta(days=n) for n in range((end - start).days + 1)]


def test_sessions_opens_and_closes_match_exchange_calendars(xnys: xcals.ExchangeCalendar) -> None:
    sessions = {ts.date() for ts in xnys.sessions}
    for day in _every_day():
        assert calendar.is_session(day) == (day in sessions), day
        if day in sessions:
            ts = pd.Timestamp(day)
            got = calendar.session(day)
            assert got.open == xnys.session_open(ts).tz_convert(NEW_YORK).to_pydatetime(), day
            assert got.close == xnys.session_close(ts).tz_convert(NEW_YORK).to_pydatetime(), day


def test_partition_exclusions_match_exchange_calendars(xnys: xcals.ExchangeCalendar) -> None:
    start = calendar.CALENDAR_START
    days = pd.bdate_range(start, CALENDAR_END)
    sessions = set(xnys.sessions_in_range(start, CALENDAR_END))
    assert calendar.non_session_weekdays() == [d.date() for d in days if d not in sessions]


def test_session_walks_match_exchange_calendars(xnys: xcals.ExchangeCalendar) -> None:
    for day in _every_day()[40::7]:
        ts = pd.Timestamp(day)
        start = xnys.date_to_session(ts, direction="previous")
        if start.date() == day:
            start = xnys.previous_session(start)
        expected = [t.date() for t in xnys.sessions_window(start, -20)]
        assert calendar.previous_sessions(day, 20) == expected, day
        end = day + dt.timedelta(days=30)
        if end <= dt.date.fromisoformat(CALENDAR_END):
            between = [t.date() for t in xnys.sessions_in_range(ts, pd.Timestamp(end))]
            assert calendar.sessions_between(day, end) == between, day
            assert calendar.sessions_between(day.isoformat(), end.isoformat()) == between, day


def test_dates_outside_the_table_still_come_from_exchange_calendars() -> None:
    # 2003-01-02 is the calendar's first session (and CALENDAR_START): 30 sessions before 2003-02-01 reach outside the table.
    with pytest.raises(ValueError, match="first calendar session"):
        calendar.previous_sessions(dt.date(2003, 2, 1), 30)
