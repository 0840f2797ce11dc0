"""The one partitions definition every asset shares: NYSE sessions (DESIGN.md decision 2)."""

from __future__ import annotations

import datetime as dt

import dagster as dg

from trading_data.calendar import NEW_YORK, PARTITIONS_START, non_session_weekdays


def _build() -> dg.DailyPartitionsDefinition:
    # New York midnights, not calendar.session_window's UTC instants: Dagster matches datetime exclusions
    # in the partitions' time zone, and UTC bounds leave the holidays in (checked: Thanksgiving came back).
    holidays = [dt.datetime.combine(day, dt.time(0), tzinfo=NEW_YORK) for day in non_session_weekdays()]
    return dg.DailyPartitionsDefinition(
        start_date=PARTITIONS_START,
        timezone="America/New_York",
        # end_offset=1 makes today's session key valid while the session runs.
        end_offset=1,
        exclusions=["0 0 * * 6", "0 0 * * 0", *holidays],
    )


session_partitions = _build()
