"""The one session-window helper (calendar.session_window) and the call sites that convert its units."""

import datetime as dt

import pytest

from trading_data.calendar import NEW_YORK, session_window
from trading_data.sources.polygon import session_window_ns
from trading_data.sources.simulator.protocol import ny_midnight_ms


@pytest.mark.parametrize(
    ("day", "hours"),
    [("2026-11-27", 24), ("2026-03-09", 24), ("2026-03-08", 23), ("2026-11-01", 25)],
)
def test_window_is_new_york_midnight_to_midnight_in_utc(day: str, hours: int) -> None:
    start, end = session_window(day)
    assert start.tzinfo is dt.UTC and end.tzinfo is dt.UTC
    assert start.astimezone(NEW_YORK).time() == dt.time(0) == end.astimezone(NEW_YORK).time()
    assert start.astimezone(NEW_YORK).date() == dt.date.fromisoformat(day)
    assert end - start == dt.timedelta(hours=hours)
    assert session_window(dt.date.fromisoformat(day)) == (start, end)


def test_vendor_and_simulator_windows_are_the_calendar_window() -> None:
    start, end = session_window("2026-11-27")
    assert start == dt.datetime(2026, 11, 27, 5, tzinfo=dt.UTC)
    assert session_window_ns("2026-11-27") == (int(start.timestamp()) * 10**9, int(end.timestamp()) * 10**9)
    assert ny_midnight_ms(dt.date(2026, 11, 27)) == int(start.timestamp() * 1000)


def test_vendor_window_refuses_a_closed_day() -> None:
    with pytest.raises(ValueError, match="2026-11-26 is not an NYSE session"):
        session_window_ns("2026-11-26")
