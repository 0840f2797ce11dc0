"""The one partitions definition every asset shares: NYSE sessions (DESIGN.md decision 2), from the first
session the history setting names (``TRADING_DATA_FIRST_SESSION``, trading_data.settings.history)."""

from __future__ import annotations

import datetime as dt

import dagster as dg

from trading_data.calendar import NEW_YORK, non_session_weekdays, sessions_between
from trading_data.clock import utc_now
from trading_data.settings.history import FIRST_SESSION, first_session_date
from trading_data.settings.parsing import SettingsError


def first_session(today: dt.date | None = None) -> dt.date:
    """The partitions' first session: the first NYSE session on or after the configured first day."""
    today = today or utc_now().astimezone(NEW_YORK).date()
    day = first_session_date(today)
    if day > today:
        raise SettingsError(FIRST_SESSION.env_var, f"{day} is after today ({today}): no session to collect")
    return sessions_between(day, day + dt.timedelta(days=10))[0]


def build_session_partitions(start: dt.date) -> dg.DailyPartitionsDefinition:
    """Session partitions from ``start``: every weekday but the NYSE's full-day holidays."""
    # New York midnights, not calendar.session_window's UTC instants: Dagster matches datetime exclusions
    # in the partitions' time zone, and UTC bounds leave the holidays in (checked: Thanksgiving came back).
    holidays = [
        dt.datetime.combine(day, dt.time(0), tzinfo=NEW_YORK)
        for day in non_session_weekdays(start.isoformat())
    ]
    return dg.DailyPartitionsDefinition(
        start_date=start.isoformat(),
        timezone="America/New_York",
        # end_offset=1 makes today's session key valid while the session runs.
        end_offset=1,
        exclusions=["0 0 * * 6", "0 0 * * 0", *holidays],
    )


session_partitions = build_session_partitions(first_session())
