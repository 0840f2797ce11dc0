"""decide_tick and the tick-time environment readers, without Dagster."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from trading_data.scheduling import (
    SCHEDULE_SPECS,
    TickDecision,
    decide_tick,
    force_from_env,
    market_hours_only_from_env,
)
from trading_data.settings import SettingsError

NY = ZoneInfo("America/New_York")


def at(day: str, hhmm: str) -> dt.datetime:
    return dt.datetime.combine(dt.date.fromisoformat(day), dt.time.fromisoformat(hhmm), tzinfo=NY)


def test_run_on_a_session() -> None:
    decision = decide_tick("quotes_schedule", at("2026-12-01", "09:00"), "collection")
    assert decision == TickDecision.run("2026-12-01", "quotes_schedule:2026-12-01T09:00:00-05:00")
    assert decision.should_run


def test_naive_time_is_new_york_wall_time_and_utc_is_converted() -> None:
    naive = decide_tick("x", dt.datetime(2026, 7, 1, 9, 35), "fixed")
    utc = decide_tick("x", dt.datetime(2026, 7, 1, 13, 35, tzinfo=dt.UTC), "fixed")
    assert naive == utc
    assert naive.run_key == "x:2026-07-01T09:35:00-04:00"


@pytest.mark.parametrize(
    ("day", "reason"),
    [
        ("2026-11-26", "2026-11-26 is not an NYSE session: holiday: Thanksgiving"),
        ("2026-12-25", "2026-12-25 is not an NYSE session: holiday: Christmas"),
        ("2027-01-01", "2027-01-01 is not an NYSE session: holiday: New Year's Day"),
        ("2026-11-29", "2026-11-29 is not an NYSE session: weekend (Sunday)"),
    ],
)
@pytest.mark.parametrize("kind", ["collection", "fixed"])
def test_non_sessions_skip_naming_the_reason_even_when_forced(day: str, reason: str, kind: str) -> None:
    for force in (False, True):
        decision = decide_tick("s", at(day, "10:00"), kind, market_hours_only=True, force=force)  # type: ignore[arg-type]
        assert decision == TickDecision.skip(reason)


def test_early_close() -> None:
    assert decide_tick("q", at("2026-11-27", "13:00"), "collection").should_run  # at the close: last fetch
    skip = decide_tick("q", at("2026-11-27", "13:15"), "collection")
    assert skip.skip_reason == "2026-11-27 is an early close at 13:00: the 13:15 q tick is after the close"
    assert decide_tick("i", at("2026-11-27", "13:30"), "fixed").partition_key == "2026-11-27"
    assert decide_tick("f", at("2026-12-24", "16:30"), "fixed").partition_key == "2026-12-24"
    # The early close is the reason given even when market_hours_only would also skip.
    both = decide_tick("q", at("2026-12-24", "15:45"), "collection", market_hours_only=True)
    assert both.skip_reason and "early close at 13:00" in both.skip_reason
    forced = decide_tick("q", at("2026-12-24", "15:45"), "collection", force=True)
    assert forced.partition_key == "2026-12-24" and forced.forced and "early close" in forced.forced


def test_market_hours_only() -> None:
    before = decide_tick("p", at("2026-12-01", "09:05"), "collection", market_hours_only=True)
    assert (
        before.skip_reason == "market_hours_only: the 09:05 p tick is before the open at 09:30 on 2026-12-01"
    )
    after = decide_tick("p", at("2026-12-01", "16:05"), "collection", market_hours_only=True)
    assert (
        after.skip_reason == "market_hours_only: the 16:05 p tick is after the close at 16:00 on 2026-12-01"
    )
    assert decide_tick("p", at("2026-12-01", "09:30"), "collection", market_hours_only=True).should_run
    assert decide_tick("p", at("2026-12-01", "16:00"), "collection", market_hours_only=True).should_run
    assert decide_tick("f", at("2026-12-01", "16:30"), "fixed", market_hours_only=True).should_run
    forced = decide_tick("p", at("2026-12-01", "09:05"), "collection", market_hours_only=True, force=True)
    assert forced.should_run and forced.forced == before.skip_reason


def test_unknown_kind() -> None:
    with pytest.raises(ValueError, match="kind"):
        decide_tick("s", at("2026-12-01", "10:00"), "hourly")  # type: ignore[arg-type]


def test_env_readers() -> None:
    assert market_hours_only_from_env({}) is False
    assert market_hours_only_from_env({"TRADING_DATA_MARKET_HOURS_ONLY": "True"}) is True
    with pytest.raises(SettingsError, match="TRADING_DATA_MARKET_HOURS_ONLY"):
        market_hours_only_from_env({"TRADING_DATA_MARKET_HOURS_ONLY": "x"})
    assert force_from_env("quotes_schedule", {}) is False
    assert force_from_env("quotes_schedule", {"TRADING_DATA_FORCE": "0"}) is False
    assert force_from_env("quotes_schedule", {"TRADING_DATA_FORCE": "yes"}) is True
    assert (
        force_from_env("quotes_schedule", {"TRADING_DATA_FORCE": "prices_schedule, quotes_schedule"}) is True
    )
    assert (
        force_from_env("trades_schedule", {"TRADING_DATA_FORCE": "prices_schedule,quotes_schedule"}) is False
    )


def test_spec_table_is_consistent() -> None:
    names = [spec.name for spec in SCHEDULE_SPECS]
    assert len(names) == len(set(names)) == 8
    assert len({spec.job_name for spec in SCHEDULE_SPECS}) == 8
    for spec in SCHEDULE_SPECS:
        minute, hour, dom, month, dow = spec.cron.split()
        assert (dom, month, dow) == ("*", "*", "1-5")
        assert spec.priority in (3, 5)
