"""Trading-day scheduling, without Dagster: the schedule table and the per-tick decision.

Every schedule ticks on weekdays at fixed New York times (seed section 4). At each tick
:func:`decide_tick` says whether to request a run of the session partition or to skip, and why:

- a day that is not an NYSE session skips, naming the holiday or the weekend;
- on an early-close session, ``collection`` ticks after the close skip, naming the early close;
  ``fixed`` ticks (selection, sizing, indicators, the full pipeline) keep their times;
- with ``market_hours_only`` (off by default), ``collection`` ticks before the open or after the
  close skip;
- ``force`` (the seed's "Force Execution") overrides the two time-of-day skips above, never a day
  without a session (there is no partition to run);
- otherwise run: partition key = the session date, run key = ``<schedule>:<tick ISO time in New York>``,
  so a restarted daemon that re-evaluates a tick never launches a second run.

The Dagster wiring lives in ``trading_data/orchestration/schedules.py`` (the factory) and each domain's
``trading_data/defs/<domain>/schedules.py``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from trading_data.calendar import NEW_YORK, closed_reason, is_session, session
from trading_data.settings import OPTIONS
from trading_data.settings.platform import FORCE

ScheduleKind = Literal["collection", "fixed"]
KINDS: tuple[ScheduleKind, ...] = ("collection", "fixed")
EXECUTION_TIMEZONE = "America/New_York"

# Run tags set on every scheduled run.
TAG_SCHEDULE = "trading_data/schedule"
TAG_TICK = "trading_data/tick"
TAG_SESSION = "trading_data/session"
TAG_KIND = "trading_data/kind"
TAG_FORCED = "trading_data/forced"
TAG_FEED = "feed"  # per-feed concurrency: run_queue.tag_concurrency_limits on key "feed"
TAG_PRIORITY = "dagster/priority"
# Runs that materialize a session's selection, and runs that wait for it, carry this tag with the session;
# dagster.yaml lets one such run per session run at a time, so a waiting feed starts after the selection.
TAG_SELECTION = "trading_data/selection"
TAG_CATCH_UP = "trading_data/catch_up"

PIPELINE_ASSETS: tuple[str, ...] = (
    "selected_tickers",
    "position_sizes",
    "prices",
    "quotes",
    "trades",
    "options_flow",
    "indicators",
    "daily_report",
)


@dataclass(frozen=True)
class TickDecision:
    """Run ``partition_key`` with ``run_key``, or skip for ``skip_reason``."""

    partition_key: str | None = None
    run_key: str | None = None
    skip_reason: str | None = None
    forced: str | None = None
    """When ``force`` overrode a skip: the reason that was overridden."""

    @classmethod
    def run(cls, partition_key: str, run_key: str, forced: str | None = None) -> TickDecision:
        return cls(partition_key=partition_key, run_key=run_key, forced=forced)

    @classmethod
    def skip(cls, reason: str) -> TickDecision:
        return cls(skip_reason=reason)

    @property
    def should_run(self) -> bool:
        return self.skip_reason is None


def to_new_york(moment: dt.datetime) -> dt.datetime:
    """An aware time in New York; a naive time is taken as New York wall time."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=NEW_YORK)
    return moment.astimezone(NEW_YORK)


def run_key_for(schedule_name: str, tick: dt.datetime) -> str:
    return f"{schedule_name}:{to_new_york(tick).isoformat()}"


def decide_tick(
    schedule_name: str,
    tick_time_new_york: dt.datetime,
    kind: ScheduleKind,
    market_hours_only: bool = False,
    force: bool = False,
) -> TickDecision:
    """Decide one schedule tick (see the module docstring for the rules)."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    tick = to_new_york(tick_time_new_york)
    day = tick.date()
    hhmm = tick.strftime("%H:%M")
    if not is_session(day):
        return TickDecision.skip(f"{day.isoformat()} is not an NYSE session: {closed_reason(day)}")

    sess = session(day)
    open_, close = sess.open.strftime("%H:%M"), sess.close.strftime("%H:%M")
    time_skip: str | None = None
    if kind == "collection":
        if sess.is_early_close and tick > sess.close:
            time_skip = (
                f"{day.isoformat()} is an early close at {close}: the {hhmm} {schedule_name} tick is "
                "after the close"
            )
        elif market_hours_only and tick < sess.open:
            time_skip = (
                f"market_hours_only: the {hhmm} {schedule_name} tick is before the open at {open_} "
                f"on {day.isoformat()}"
            )
        elif market_hours_only and tick > sess.close:
            time_skip = (
                f"market_hours_only: the {hhmm} {schedule_name} tick is after the close at {close} "
                f"on {day.isoformat()}"
            )
    if time_skip and not force:
        return TickDecision.skip(time_skip)
    return TickDecision.run(sess.key, run_key_for(schedule_name, tick), forced=time_skip)


# --- what the schedules read at tick time ------------------------------------------------------------


def market_hours_only_from_env(environ: Mapping[str, str] | None = None) -> bool:
    """``TRADING_DATA_MARKET_HOURS_ONLY`` (default false); a malformed value raises SettingsError."""
    value: bool = OPTIONS["market_hours_only"].get(environ)
    return value


def force_from_env(schedule_name: str, environ: Mapping[str, str] | None = None) -> bool:
    """``TRADING_DATA_FORCE``: a boolean (``1``/``true``/``yes``/``on`` forces every schedule) or a
    comma-separated list of schedule names to force; unset or false forces nothing."""
    force = FORCE.get(environ)
    return force if isinstance(force, bool) else schedule_name in force


# --- the schedule table ------------------------------------------------------------------------------


# What a session's feeds need before they can collect anything: the day's tickers (and their sizes).
SELECTION_ASSETS: tuple[str, ...] = ("selected_tickers", "position_sizes")


@dataclass(frozen=True)
class CatchUp:
    """What a tick's run selects, given which of the session's catch-up assets exist or are under way."""

    assets: tuple[str, ...]
    """The run's asset selection: missing upstream assets first, then the schedule's targets."""
    wait_for_selection: bool
    """The run must queue behind any other run materializing the session's selection."""
    skip_reason: str | None = None


def plan_catch_up(
    spec: ScheduleSpec, session_key: str, materialized: set[str], in_flight: dict[str, str]
) -> CatchUp:
    """Decide a tick's asset selection (pure; the schedule asks the instance for the two sets).

    ``materialized``: assets with a materialization of the session; ``in_flight``: asset -> run id of a
    queued or running run that materializes it for the session. A missing upstream asset that no run is
    already materializing is added before the targets; one that a run is materializing is waited for
    (the run queues behind it), so missed selection ticks run once, not once per missed tick. A tick of
    the selection or sizing schedule whose target a run is already materializing skips.
    """
    busy = [t for t in spec.targets if t in in_flight]
    if busy and set(spec.targets) <= set(SELECTION_ASSETS):
        return CatchUp(
            (),
            False,
            f"{busy[0]} for {session_key} is already being materialized by run {in_flight[busy[0]]}",
        )
    missing = [a for a in spec.catch_up if a not in materialized]
    added = tuple(a for a in missing if a not in in_flight)
    return CatchUp(added + spec.targets, wait_for_selection=bool(missing))


@dataclass(frozen=True)
class Freshness:
    """By when a schedule's data must have arrived: ``asset`` materialized within ``grace`` of each due
    tick (``family`` names the expectation in checks and ``trading-data health``)."""

    family: str
    asset: str
    grace: dt.timedelta


@dataclass(frozen=True)
class ScheduleSpec:
    """One schedule of the table: when it ticks, what its job materializes, how its runs are tagged and by
    when its data is fresh. Ticks are every ``minutes`` of every ``hours`` (New York) on weekdays."""

    name: str
    domain: str
    """The folder of ``trading_data/defs`` that declares the schedule."""
    kind: ScheduleKind
    hours: tuple[int, ...]
    minutes: tuple[int, ...]
    targets: tuple[str, ...]
    """Asset names the job materializes (for the full pipeline: every asset, see ``select_all``)."""
    feed: str
    """Value of the ``feed`` run tag, for per-feed run concurrency limits; the job is ``<feed>_job``."""
    priority: int | None
    """``dagster/priority`` of scheduled runs (higher is dequeued first); backfills keep 0."""
    freshness: Freshness
    description: str
    select_all: bool = False
    """Target ``AssetSelection.all()`` rather than ``targets`` (the full pipeline)."""
    catch_up: tuple[str, ...] = ()
    """Upstream assets of the session a tick materializes first when their partition is missing (a late
    start, a daemon outage over the 09:35 selection): the run then selects them before ``targets``."""

    @property
    def job_name(self) -> str:
        return f"{self.feed}_job"

    @property
    def cron(self) -> str:
        # Day-of-week only: cron ORs day-of-month with day-of-week when both are restricted.
        return f"{_cron_field(self.minutes)} {_cron_field(self.hours)} * * 1-5"

    def tick_times(self, day: dt.date) -> list[dt.datetime]:
        """The schedule's ticks on ``day`` as aware New York datetimes (none on a weekend)."""
        if day.isoweekday() > 5:
            return []
        return [
            dt.datetime.combine(day, dt.time(h, m), tzinfo=NEW_YORK) for h in self.hours for m in self.minutes
        ]


def _cron_field(values: tuple[int, ...]) -> str:
    """``5``, ``9-15`` or ``0,15,30,45``: consecutive runs of three or more values as ranges."""
    parts: list[str] = []
    run: list[int] = []
    for value in (*sorted(values), None):
        if run and value == run[-1] + 1:
            run.append(value)
            continue
        if len(run) >= 3:
            parts.append(f"{run[0]}-{run[-1]}")
        else:
            parts.extend(str(v) for v in run)
        run = [] if value is None else [value]
    return ",".join(parts)


def _minutes(n: int) -> dt.timedelta:
    return dt.timedelta(minutes=n)


SESSION_HOURS = tuple(range(9, 16))  # 09:xx to 15:xx New York

# Columns: name, domain (defs folder), kind, hours, minutes, targets, feed (job <feed>_job), priority,
# freshness, description; then catch_up or select_all where they apply.
SCHEDULE_SPECS: tuple[ScheduleSpec, ...] = (
    # Position sizing at 09:45 reads the selection, so selection is as urgent as sizing (priority 5).
    ScheduleSpec(
        "ticker_selection_schedule", "selection", "fixed", (9,), (35,), ("selected_tickers",),
        "selected_tickers", 5, Freshness("selection", "selected_tickers", _minutes(10)),
        "Dynamic ticker selection at 09:35 New York on NYSE sessions.",
    ),
    ScheduleSpec(
        "position_sizing_schedule", "selection", "fixed", (9,), (45,), ("position_sizes",),
        "position_sizes", 5, Freshness("sizing", "position_sizes", _minutes(10)),
        "Position sizing for the selected tickers at 09:45 New York on NYSE sessions.",
        catch_up=("selected_tickers",),
    ),
    # The 5-minute/hourly bars and the indicators follow every prices tick of the same session (and only
    # that session), so both are current during the session, not only after the 16:30 pipeline.
    ScheduleSpec(
        "prices_schedule", "market_data", "collection", SESSION_HOURS, (5,),
        ("prices", "bar_aggregates", "indicators"), "prices", 3, Freshness("prices", "prices", _minutes(20)),
        "OHLCV prices hourly at :05 from 09:05 to 15:05 New York on NYSE sessions, then the session's "
        "5-minute and hourly bars (bar_aggregates) and indicators.",
        catch_up=SELECTION_ASSETS,
    ),
    ScheduleSpec(
        "quotes_schedule", "market_data", "collection", SESSION_HOURS, (0, 15, 30, 45), ("quotes",),
        "quotes", 3, Freshness("quotes", "quotes", _minutes(10)),
        "Bid/ask quotes every 15 minutes from 09:00 to 15:45 New York on NYSE sessions.",
        catch_up=SELECTION_ASSETS,
    ),
    ScheduleSpec(
        "trades_schedule", "market_data", "collection", SESSION_HOURS, (0, 30), ("trades",),
        "trades", 3, Freshness("trades", "trades", _minutes(15)),
        "Trades every 30 minutes from 09:00 to 15:30 New York on NYSE sessions.",
        catch_up=SELECTION_ASSETS,
    ),
    ScheduleSpec(
        "options_schedule", "market_data", "collection", (9, 11, 13, 15), (15,), ("options_flow",),
        "options_flow", 3, Freshness("options", "options_flow", _minutes(30)),
        "Options flow every 2 hours at 09:15, 11:15, 13:15, 15:15 New York on NYSE sessions.",
        catch_up=SELECTION_ASSETS,
    ),
    ScheduleSpec(
        "indicators_schedule", "analytics", "fixed", (9, 13), (30,), ("indicators",),
        "indicators", 3, Freshness("indicators", "indicators", _minutes(15)),
        "Technical indicators at 09:30 and 13:30 New York on NYSE sessions.",
    ),
    ScheduleSpec(
        "full_pipeline_schedule", "analytics", "fixed", (16,), (30,), PIPELINE_ASSETS,
        "full_pipeline", 5, Freshness("daily_report", "daily_report", _minutes(30)),
        "Every asset for the session at 16:30 New York on NYSE sessions (early closes included); the "
        "asset graph orders daily_report last.",
        select_all=True,
    ),
)  # fmt: skip

SPECS_BY_NAME: dict[str, ScheduleSpec] = {spec.name: spec for spec in SCHEDULE_SPECS}
