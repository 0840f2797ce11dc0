"""The eight trading-day schedules, evaluated through Dagster tick by tick.

Expectations come from exchange_calendars directly (not trading_data.calendar) and from the seed's
times written out here (not SCHEDULE_SPECS).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from functools import cache
from zoneinfo import ZoneInfo

import dagster as dg
import exchange_calendars as xcals
import pandas as pd
import pytest
from dagster._core.definitions.schedule_definition import ScheduleExecutionData
from dagster._utils.schedules import schedule_execution_time_iterator

from trading_data.orchestration.schedules import JOBS, SCHEDULES, check_weekday_cron, trading_day_schedule
from trading_data.partitions import session_partitions
from trading_data.scheduling import SCHEDULE_SPECS, SPECS_BY_NAME
from trading_data.settings import SettingsError

NY = ZoneInfo("America/New_York")
UTC = dt.UTC
RANGE_START = dt.date(2026, 11, 23)
RANGE_END = dt.date(2027, 1, 8)


def _times(*hhmm: str) -> list[dt.time]:
    return [dt.time.fromisoformat(t) for t in hhmm]


# The seed's cadences (section 4), New York wall times on weekdays.
EXPECTED_TIMES: dict[str, list[dt.time]] = {
    "ticker_selection_schedule": _times("09:35"),
    "position_sizing_schedule": _times("09:45"),
    "prices_schedule": [dt.time(h, 5) for h in range(9, 16)],
    "quotes_schedule": [dt.time(h, m) for h in range(9, 16) for m in (0, 15, 30, 45)],
    "trades_schedule": [dt.time(h, m) for h in range(9, 16) for m in (0, 30)],
    "options_schedule": _times("09:15", "11:15", "13:15", "15:15"),
    "indicators_schedule": _times("09:30", "13:30"),
    "full_pipeline_schedule": _times("16:30"),
}
EXPECTED_KIND = {
    "ticker_selection_schedule": "fixed",
    "position_sizing_schedule": "fixed",
    "prices_schedule": "collection",
    "quotes_schedule": "collection",
    "trades_schedule": "collection",
    "options_schedule": "collection",
    "indicators_schedule": "fixed",
    "full_pipeline_schedule": "fixed",
}
SELECTION = {"selected_tickers", "position_sizes"}
EXPECTED_CATCH_UP: dict[str, set[str]] = {
    "ticker_selection_schedule": set(),
    "position_sizing_schedule": {"selected_tickers"},
    "prices_schedule": SELECTION,
    "quotes_schedule": SELECTION,
    "trades_schedule": SELECTION,
    "options_schedule": SELECTION,
    "indicators_schedule": set(),
    "full_pipeline_schedule": set(),
}
EXPECTED_ASSETS = {
    "ticker_selection_schedule": {"selected_tickers"},
    "position_sizing_schedule": {"position_sizes"},
    "prices_schedule": {"prices", "bar_aggregates", "indicators"},
    "quotes_schedule": {"quotes"},
    "trades_schedule": {"trades"},
    "options_schedule": {"options_flow"},
    "indicators_schedule": {"indicators"},
    "full_pipeline_schedule": {
        "selected_tickers",
        "position_sizes",
        "prices",
        "quotes",
        "trades",
        "options_flow",
        "indicators",
        "daily_report",
    },
}


# --- stand-in assets with the real names and the real partitions ------------------------------------


def _stub(name: str, deps: tuple[str, ...] = ()) -> dg.AssetsDefinition:
    @dg.asset(name=name, partitions_def=session_partitions, deps=list(deps))
    def _asset() -> None:
        return None

    return _asset


STUB_ASSETS = [
    _stub("selected_tickers"),
    _stub("position_sizes", ("selected_tickers",)),
    _stub("prices", ("selected_tickers",)),
    _stub("quotes", ("selected_tickers",)),
    _stub("trades", ("selected_tickers",)),
    _stub("options_flow", ("selected_tickers",)),
    _stub("indicators", ("prices",)),
    _stub("bar_aggregates", ("prices",)),
    _stub("daily_report", ("indicators", "position_sizes", "quotes", "trades", "options_flow")),
]


@cache
def repository() -> dg.RepositoryDefinition:
    defs = dg.Definitions(assets=STUB_ASSETS, schedules=SCHEDULES, jobs=JOBS)
    return defs.get_repository_def()


def schedule(name: str) -> dg.ScheduleDefinition:
    return repository().get_schedule_def(name)


@cache
def instance() -> dg.DagsterInstance:
    """An empty instance: no session has a selection yet, so every feed tick catches it up."""
    return dg.DagsterInstance.local_temp()


def evaluate(name: str, tick: dt.datetime) -> ScheduleExecutionData:
    context = dg.build_schedule_context(
        scheduled_execution_time=tick, repository_def=repository(), instance=instance()
    )
    return schedule(name).evaluate_tick(context)


def ticks(name: str, start: dt.date, end: dt.date) -> Iterator[dt.datetime]:
    """The schedule's cron ticks from ``start`` through ``end`` (inclusive), via Dagster's iterator."""
    sched = schedule(name)
    begin = dt.datetime.combine(start, dt.time(0), tzinfo=NY)
    stop = dt.datetime.combine(end + dt.timedelta(days=1), dt.time(0), tzinfo=NY)
    for tick in schedule_execution_time_iterator(
        begin.timestamp(), sched.cron_schedule, sched.execution_timezone
    ):
        if tick >= stop:
            return
        yield tick


def run_requests(name: str, tick: dt.datetime) -> list[dg.RunRequest]:
    return list(evaluate(name, tick).run_requests or [])


def skip_message(name: str, tick: dt.datetime) -> str:
    """The skip message ('' when the tick requested a run)."""
    return evaluate(name, tick).skip_message or ""


@cache
def evaluated_range(name: str) -> tuple[tuple[dt.datetime, ScheduleExecutionData], ...]:
    """Every tick of ``name`` from RANGE_START to RANGE_END with Dagster's evaluation (shared by tests)."""
    return tuple((tick, evaluate(name, tick)) for tick in ticks(name, RANGE_START, RANGE_END))


# --- the independent expectation ---------------------------------------------------------------------


@cache
def xnys() -> xcals.ExchangeCalendar:
    return xcals.get_calendar("XNYS", start="2026-01-01", end="2027-12-31")


def expected(name: str, tick: dt.datetime) -> tuple[str, str]:
    """('run', session date) or ('skip', words the reason must contain)."""
    day = tick.astimezone(NY).date()
    cal = xnys()
    ts = pd.Timestamp(day)
    if not cal.is_session(ts):
        if day.weekday() >= 5:
            return "skip", f"{day} is not an NYSE session: weekend"
        names = cal.regular_holidays.holidays(start=ts, end=ts, return_name=True)
        return "skip", f"{day} is not an NYSE session: holiday: {names.iloc[0]}"
    close = cal.session_close(ts).tz_convert(NY)
    if EXPECTED_KIND[name] == "collection" and close.time() < dt.time(16) and tick > close:
        return "skip", f"early close at {close:%H:%M}"
    return "run", day.isoformat()


# --- tests ---------------------------------------------------------------------------------------------


def test_specs_and_schedules_match_the_seed() -> None:
    assert [s.name for s in SCHEDULES] == list(EXPECTED_TIMES)
    assert [s.name for s in SCHEDULE_SPECS] == list(EXPECTED_TIMES)
    for sched in SCHEDULES:
        assert sched.execution_timezone == "America/New_York"
        assert sched.default_status == dg.DefaultScheduleStatus.RUNNING
        spec = SPECS_BY_NAME[sched.name]
        assert spec.kind == EXPECTED_KIND[sched.name]
        assert set(spec.targets) == EXPECTED_ASSETS[sched.name]
        assert sched.cron_schedule == spec.cron
        dom, dow = spec.cron.split()[2], spec.cron.split()[4]
        assert dom == "*" and dow == "1-5"


def test_cron_ticks_are_the_seed_times_on_weekdays_only() -> None:
    week = (dt.date(2026, 11, 30), dt.date(2026, 12, 6))  # Monday .. Sunday
    for name, times in EXPECTED_TIMES.items():
        got = list(ticks(name, *week))
        want = [
            dt.datetime.combine(week[0] + dt.timedelta(days=d), t, tzinfo=NY) for d in range(5) for t in times
        ]
        assert got == want, name


def test_jobs_select_the_right_assets_and_order_the_report_last() -> None:
    repo = repository()
    for sched in SCHEDULES:
        job = repo.get_job(sched.job_name)
        assert job.partitions_def == session_partitions
        keys = {key.to_user_string() for key in job.asset_layer.executable_asset_keys}
        # A feed's job also holds the selection assets it catches up when they are missing.
        # The full pipeline's job holds every asset: bar_aggregates too, which daily_report does not need.
        every = {"bar_aggregates"} if SPECS_BY_NAME[sched.name].select_all else set()
        assert keys == EXPECTED_ASSETS[sched.name] | EXPECTED_CATCH_UP[sched.name] | every, sched.name
        assert job.tags["feed"] == SPECS_BY_NAME[sched.name].feed
        assert "dagster/priority" not in job.tags  # backfills of the job keep priority 0
    order = [node.name for node in repo.get_job("full_pipeline_job").graph.nodes_in_topological_order]
    assert order[-1] == "daily_report"
    upstream = dg.AssetSelection.assets("daily_report").upstream().resolve(repo.asset_graph)
    assert {key.to_user_string() for key in upstream} == EXPECTED_ASSETS["full_pipeline_schedule"]
    assert {j.name for j in JOBS} == {s.job_name for s in SCHEDULES}


# The range is evaluated once per worker (evaluated_range's cache: ~2,000 ticks, each building an
# instance from its ref), so the tests that read it share a worker.
@pytest.mark.xdist_group("schedule_range")
@pytest.mark.parametrize("name", list(EXPECTED_TIMES))
def test_every_tick_from_thanksgiving_to_new_year(name: str) -> None:
    runs = skips = 0
    run_keys: list[str] = []
    for tick, result in evaluated_range(name):
        outcome, detail = expected(name, tick)
        if outcome == "run":
            runs += 1
            assert result.skip_message is None, (tick, result.skip_message)
            [request] = list(result.run_requests or [])
            assert request.partition_key == detail
            assert request.tags["dagster/partition"] == detail
            assert request.run_key == f"{name}:{tick.isoformat()}"
            assert request.tags["trading_data/schedule"] == name
            assert request.tags["trading_data/tick"] == tick.isoformat()
            assert request.tags["feed"] == SPECS_BY_NAME[name].feed
            assert request.tags["dagster/priority"] == str(SPECS_BY_NAME[name].priority)
            assert "trading_data/forced" not in request.tags
            run_keys.append(request.run_key)
        else:
            skips += 1
            assert not result.run_requests, tick
            assert result.skip_message is not None and detail in result.skip_message, (
                tick,
                result.skip_message,
            )
    assert len(run_keys) == len(set(run_keys))
    assert runs > 0 and skips > 0
    sessions = {key.split(":", 1)[1][:10] for key in run_keys}
    assert "2026-11-26" not in sessions and "2026-12-25" not in sessions and "2027-01-01" not in sessions
    assert {"2026-11-27", "2026-12-24"} <= sessions  # early closes still have morning runs


@pytest.mark.xdist_group("schedule_range")
def test_range_run_keys_unique_across_all_schedules_and_calendar_facts() -> None:
    keys: list[str] = []
    for name in EXPECTED_TIMES:
        for _tick, result in evaluated_range(name):
            keys.extend(r.run_key for r in result.run_requests or [] if r.run_key)
    assert len(keys) == len(set(keys))
    # Spot checks of the facts the brief names.
    assert skip_message("quotes_schedule", dt.datetime(2026, 11, 26, 10, tzinfo=NY)) == (
        "2026-11-26 is not an NYSE session: holiday: Thanksgiving"
    )
    assert "holiday: Christmas" in skip_message(
        "full_pipeline_schedule", dt.datetime(2026, 12, 25, 16, 30, tzinfo=NY)
    )
    assert "holiday: New Year's Day" in skip_message(
        "prices_schedule", dt.datetime(2027, 1, 1, 9, 5, tzinfo=NY)
    )
    for day in (27, 24):
        month = 11 if day == 27 else 12
        assert run_requests("quotes_schedule", dt.datetime(2026, month, day, 13, 0, tzinfo=NY))
        msg = skip_message("quotes_schedule", dt.datetime(2026, month, day, 13, 15, tzinfo=NY))
        assert msg and "early close at 13:00" in msg
        # Fixed ticks keep their times on early closes.
        for fixed, t in (
            ("indicators_schedule", dt.time(13, 30)),
            ("full_pipeline_schedule", dt.time(16, 30)),
        ):
            [req] = run_requests(fixed, dt.datetime.combine(dt.date(2026, month, day), t, tzinfo=NY))
            assert req.partition_key == f"2026-{month:02d}-{day:02d}"


def test_weekend_skip_reason_when_evaluated_on_a_saturday() -> None:
    msg = skip_message("quotes_schedule", dt.datetime(2026, 11, 28, 10, 0, tzinfo=NY))
    assert msg == "2026-11-28 is not an NYSE session: weekend (Saturday)"


@pytest.mark.parametrize(
    ("before", "after", "utc_before", "utc_after"),
    [
        (dt.date(2026, 10, 26), dt.date(2026, 11, 6), 13, 14),  # EDT -> EST on 2026-11-01
        (dt.date(2027, 3, 8), dt.date(2027, 3, 19), 14, 13),  # EST -> EDT on 2027-03-14
    ],
)
def test_ticks_hold_new_york_time_across_dst(
    before: dt.date, after: dt.date, utc_before: int, utc_after: int
) -> None:
    name = "ticker_selection_schedule"
    got = list(ticks(name, before, after))
    assert len(got) == 10  # two working weeks
    change = dt.datetime.combine(after - dt.timedelta(days=after.weekday() + 1), dt.time(12), tzinfo=NY)
    for tick in got:
        assert tick.astimezone(NY).time() == dt.time(9, 35)
        utc = tick.astimezone(UTC)
        assert (utc.hour, utc.minute) == ((utc_before if tick < change else utc_after), 35)
        # The daemon may hand over an aware time in any zone; the decision is taken in New York.
        [request] = run_requests(name, utc)
        assert request.run_key == f"{name}:{tick.astimezone(NY).isoformat()}"
        assert request.partition_key == tick.astimezone(NY).date().isoformat()
    offsets = {tick.astimezone(NY).utcoffset() for tick in got}
    assert offsets == {dt.timedelta(hours=-4), dt.timedelta(hours=-5)}


PRE_OPEN = [
    ("quotes_schedule", dt.time(9, 0)),
    ("quotes_schedule", dt.time(9, 15)),
    ("trades_schedule", dt.time(9, 0)),
    ("prices_schedule", dt.time(9, 5)),
    ("options_schedule", dt.time(9, 15)),
]
SESSION_DAY = dt.date(2026, 12, 1)


@pytest.mark.parametrize(("name", "at"), PRE_OPEN)
def test_market_hours_only_skips_pre_open_collection_ticks(
    monkeypatch: pytest.MonkeyPatch, name: str, at: dt.time
) -> None:
    tick = dt.datetime.combine(SESSION_DAY, at, tzinfo=NY)
    assert run_requests(name, tick)  # default: keep the seed's pre-open ticks
    monkeypatch.setenv("TRADING_DATA_MARKET_HOURS_ONLY", "true")
    msg = skip_message(name, tick)
    assert (
        msg == f"market_hours_only: the {at:%H:%M} {name} tick is before the open at 09:30 on {SESSION_DAY}"
    )


@pytest.mark.parametrize(
    "force", ["1", "true", "quotes_schedule,trades_schedule,prices_schedule,options_schedule"]
)
@pytest.mark.parametrize(("name", "at"), PRE_OPEN)
def test_force_overrides_market_hours_only(
    monkeypatch: pytest.MonkeyPatch, force: str, name: str, at: dt.time
) -> None:
    monkeypatch.setenv("TRADING_DATA_MARKET_HOURS_ONLY", "1")
    monkeypatch.setenv("TRADING_DATA_FORCE", force)
    tick = dt.datetime.combine(SESSION_DAY, at, tzinfo=NY)
    [request] = run_requests(name, tick)
    assert request.partition_key == SESSION_DAY.isoformat()
    assert "before the open" in request.tags["trading_data/forced"]


def test_force_by_name_only_forces_that_schedule(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRADING_DATA_MARKET_HOURS_ONLY", "on")
    monkeypatch.setenv("TRADING_DATA_FORCE", "quotes_schedule")
    assert run_requests("quotes_schedule", dt.datetime.combine(SESSION_DAY, dt.time(9), tzinfo=NY))
    assert skip_message("trades_schedule", dt.datetime.combine(SESSION_DAY, dt.time(9), tzinfo=NY))


def test_market_hours_only_keeps_in_session_and_fixed_ticks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRADING_DATA_MARKET_HOURS_ONLY", "true")
    for name, at in [
        ("quotes_schedule", dt.time(9, 30)),
        ("quotes_schedule", dt.time(15, 45)),
        ("prices_schedule", dt.time(10, 5)),
        ("ticker_selection_schedule", dt.time(9, 35)),
        ("full_pipeline_schedule", dt.time(16, 30)),
    ]:
        assert run_requests(name, dt.datetime.combine(SESSION_DAY, at, tzinfo=NY)), name


def test_force_overrides_early_close_but_never_a_holiday(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRADING_DATA_FORCE", "yes")
    [request] = run_requests("quotes_schedule", dt.datetime(2026, 12, 24, 14, 0, tzinfo=NY))
    assert "early close at 13:00" in request.tags["trading_data/forced"]
    msg = skip_message("quotes_schedule", dt.datetime(2026, 12, 25, 10, 0, tzinfo=NY))
    assert msg and "holiday: Christmas" in msg


def test_malformed_market_hours_only_fails_the_tick_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TRADING_DATA_MARKET_HOURS_ONLY", "perhaps")
    with pytest.raises(dg.DagsterUserCodeExecutionError) as err:
        evaluate("quotes_schedule", dt.datetime.combine(SESSION_DAY, dt.time(10), tzinfo=NY))
    cause = err.value.user_exception
    assert isinstance(cause, SettingsError)
    assert str(cause) == (
        "invalid setting market_hours_only (from TRADING_DATA_MARKET_HOURS_ONLY='perhaps'): must be a boolean "
        "(true/false, 1/0, yes/no, on/off), got 'perhaps'"
    )


def test_factory_rejects_cron_combining_day_of_month_and_day_of_week() -> None:
    with pytest.raises(ValueError, match="day-of-month and day-of-week"):
        check_weekday_cron("0 9 1 * 1-5")
    with pytest.raises(ValueError, match="invalid cron"):
        check_weekday_cron("61 9 * * 1-5")
    with pytest.raises(ValueError, match="day-of-month and day-of-week"):
        trading_day_schedule("x_schedule", "0 9 1-7 * 1", dg.AssetSelection.assets("quotes"), "collection")


def test_factory_accepts_an_existing_job() -> None:
    job = dg.define_asset_job("quotes_again_job", selection="quotes", partitions_def=session_partitions)
    sched = trading_day_schedule("quotes_again_schedule", "0 10 * * 1-5", job, "collection", feed="quotes")
    assert sched.job is job
    defs = dg.Definitions(assets=STUB_ASSETS, schedules=[sched])
    context = dg.build_schedule_context(
        scheduled_execution_time=dt.datetime(2026, 12, 2, 10, tzinfo=NY),
        repository_def=defs.get_repository_def(),
        instance=instance(),
    )
    [request] = list(sched.evaluate_tick(context).run_requests or [])
    assert request.partition_key == "2026-12-02"
    assert request.tags["feed"] == "quotes"
    assert "dagster/priority" not in request.tags


def test_collection_runs_are_failed_within_an_hour_if_their_worker_died() -> None:
    """A feed run left STARTED by a dead worker (issue 9.7) must not hold its feed's queue for the instance's
    4-hour max_runtime: collection ticks carry dagster/max_runtime, fixed ticks and backfills do not."""
    [collection] = run_requests("quotes_schedule", dt.datetime(2026, 12, 2, 10, tzinfo=NY))
    assert collection.tags["dagster/max_runtime"] == "3600"
    [fixed] = run_requests("full_pipeline_schedule", dt.datetime(2026, 12, 2, 16, 30, tzinfo=NY))
    assert "dagster/max_runtime" not in fixed.tags
