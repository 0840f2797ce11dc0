"""The trading-day schedule factory, and the eight schedules and jobs of the table (DESIGN.md decision 5,
seed section 4); each domain of ``trading_data/defs`` declares its own with :func:`schedules_of`.

Each schedule comes from :func:`trading_day_schedule`: weekday cron ticks in America/New_York, decided by
:func:`trading_data.scheduling.decide_tick` — a ``SkipReason`` naming the holiday, weekend or early close,
or a ``RunRequest`` for the session partition with run key ``<schedule>:<tick ISO time>``.

Read at every tick, in the process that evaluates schedules (the code server, so set them where it starts,
e.g. ``.env``; a change needs a code location reload):

- ``TRADING_DATA_MARKET_HOURS_ONLY`` (default false): collection ticks outside 09:30-close skip.
- ``TRADING_DATA_FORCE``: ``true`` forces every schedule, or a comma-separated list of schedule names
  forces those; forcing overrides the early-close and market-hours skips (never a non-session day).

Run tags: ``feed`` on the job and every run (limit runs per feed with ``run_queue.tag_concurrency_limits``
on key ``feed``); ``dagster/priority`` only on scheduled runs, so backfills keep the default 0.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import dagster as dg
from dagster import DagsterRunStatus

# Dagster 1.13 has no public cron validator (ScheduleDefinition raises DagsterInvalidDefinitionError only
# when built): this is the check it runs.
from dagster._utils.schedules import is_valid_cron_string

from trading_data.scheduling import (
    EXECUTION_TIMEZONE,
    PIPELINE_ASSETS,
    SCHEDULE_SPECS,
    SELECTION_ASSETS,
    TAG_CATCH_UP,
    TAG_FEED,
    TAG_FORCED,
    TAG_KIND,
    TAG_PRIORITY,
    TAG_SCHEDULE,
    TAG_SELECTION,
    TAG_SESSION,
    TAG_TICK,
    ScheduleKind,
    ScheduleSpec,
    decide_tick,
    force_from_env,
    market_hours_only_from_env,
    plan_catch_up,
    to_new_york,
)

# What dg.define_asset_job returns (an unresolved asset job: Dagster exports no public name for its type),
# or a JobDefinition.
AssetJob = dg.JobDefinition | Any
ScheduleTarget = dg.AssetSelection | AssetJob


MAX_RUNTIME_TAG = "dagster/max_runtime"  # read by the daemon's run monitoring
COLLECTION_MAX_RUNTIME_SECONDS = 3600


def check_weekday_cron(cron: str) -> str:
    """A valid 5-field cron that never restricts day-of-month and day-of-week together (cron ORs them)."""
    if not is_valid_cron_string(cron):
        raise ValueError(f"invalid cron string {cron!r}")
    parts = cron.split()
    if len(parts) != 5:
        raise ValueError(f"cron {cron!r} must have 5 fields")
    if parts[2] != "*" and parts[4] != "*":
        raise ValueError(
            f"cron {cron!r} restricts both day-of-month and day-of-week; cron ORs them, so use day-of-week only"
        )
    return cron


def session_asset_job(
    name: str, selection: dg.AssetSelection, tags: Mapping[str, str] | None = None
) -> AssetJob:
    """An asset job over NYSE session partitions (Dagster infers them from the selected assets, all of which
    are session-partitioned; naming them again is deprecated)."""
    return dg.define_asset_job(name=name, selection=selection, tags=dict(tags or {}))


def trading_day_schedule(
    name: str,
    cron: str,
    target: ScheduleTarget,
    kind: ScheduleKind,
    description: str | None = None,
    *,
    job_name: str | None = None,
    feed: str | None = None,
    priority: int | None = None,
    default_status: dg.DefaultScheduleStatus = dg.DefaultScheduleStatus.RUNNING,
    spec: ScheduleSpec | None = None,
) -> dg.ScheduleDefinition:
    """A schedule that runs ``target``'s session partition at each ``cron`` tick on NYSE sessions.

    ``target`` is an ``AssetSelection`` (a session-partitioned job named ``job_name``, default
    ``<name without _schedule>_job``, is built for it) or an existing job, which must be partitioned by
    ``session_partitions``. ``kind`` is ``"collection"`` (skips after an early close, and outside the
    regular session when ``TRADING_DATA_MARKET_HOURS_ONLY`` is true) or ``"fixed"`` (every session).
    ``feed`` (default: the schedule name without ``_schedule``) is the ``feed`` run tag; ``priority``
    sets ``dagster/priority`` on the scheduled runs. The built job is ``schedule.job``. With ``spec``
    (the schedule table's entry), each run selects the spec's targets, preceded by its ``catch_up``
    assets when the session's partition of them is missing (see ``plan_catch_up``).
    """
    check_weekday_cron(cron)
    feed = feed or name.removesuffix("_schedule")
    if isinstance(target, dg.AssetSelection):
        job: AssetJob = session_asset_job(
            job_name or f"{name.removesuffix('_schedule')}_job",
            target,
            tags={TAG_FEED: feed, TAG_KIND: kind},
        )
    else:
        job = target

    run_tags = {TAG_SCHEDULE: name, TAG_KIND: kind, TAG_FEED: feed}
    if priority is not None:
        run_tags[TAG_PRIORITY] = str(priority)
    if kind == "collection":
        # A tick's run whose worker died (a database outage) would hold its feed's queue until
        # run_monitoring.max_runtime_seconds (4 h): fail it after an hour instead; the next tick then
        # collects everything since each ticker's watermark, so nothing is lost.
        run_tags[MAX_RUNTIME_TAG] = str(COLLECTION_MAX_RUNTIME_SECONDS)

    @dg.schedule(
        cron_schedule=cron,
        name=name,
        job=job,
        execution_timezone=EXECUTION_TIMEZONE,
        default_status=default_status,
        description=description,
        metadata={"kind": kind, "feed": feed, "cron": cron, "timezone": EXECUTION_TIMEZONE},
    )
    def _trading_day(context: dg.ScheduleEvaluationContext) -> dg.RunRequest | dg.SkipReason:
        tick = to_new_york(context.scheduled_execution_time)
        decision = decide_tick(
            name,
            tick,
            kind,
            market_hours_only=market_hours_only_from_env(),
            force=force_from_env(name),
        )
        if not decision.should_run:
            return dg.SkipReason(decision.skip_reason)
        assert decision.partition_key is not None and decision.run_key is not None
        key = decision.partition_key
        tags = {**run_tags, TAG_TICK: tick.isoformat(), TAG_SESSION: key}
        if decision.forced:
            tags[TAG_FORCED] = decision.forced
        if spec is None or spec.select_all:
            return dg.RunRequest(partition_key=key, run_key=decision.run_key, tags=tags)
        plan = plan_catch_up(
            spec, key, _materialized(context.instance, spec, key), _in_flight(context.instance, key)
        )
        if plan.skip_reason:
            return dg.SkipReason(plan.skip_reason)
        added = [a for a in plan.assets if a not in spec.targets]
        if added:
            tags[TAG_CATCH_UP] = ",".join(added)
            context.log.info(f"{key}: {', '.join(added)} missing: this run materializes it first")
        if plan.wait_for_selection or set(plan.assets) & set(SELECTION_ASSETS):
            tags[TAG_SELECTION] = key
        return dg.RunRequest(
            partition_key=key,
            run_key=decision.run_key,
            tags=tags,
            asset_selection=[dg.AssetKey(a) for a in plan.assets],
        )

    return _trading_day


_IN_FLIGHT = [
    DagsterRunStatus.NOT_STARTED,
    DagsterRunStatus.QUEUED,
    DagsterRunStatus.STARTING,
    DagsterRunStatus.STARTED,
]


def _materialized(instance: dg.DagsterInstance, spec: ScheduleSpec, key: str) -> set[str]:
    """Which of the spec's catch-up assets have a materialization of session ``key``."""
    return {
        asset
        for asset in spec.catch_up
        if instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=dg.AssetKey(asset), asset_partitions=[key]), limit=1
        ).records
    }


def _in_flight(instance: dg.DagsterInstance, key: str) -> dict[str, str]:
    """Selection assets that a queued or running run of session ``key`` materializes -> its run id."""
    runs = instance.get_runs(dg.RunsFilter(statuses=_IN_FLIGHT, tags={"dagster/partition": key}))
    found: dict[str, str] = {}
    for run in runs:
        selected = {k.to_user_string() for k in run.asset_selection or ()} or set(PIPELINE_ASSETS)
        for asset in SELECTION_ASSETS:
            if asset in selected:
                found.setdefault(asset, run.run_id)
    return found


def schedule_from_spec(spec: ScheduleSpec) -> dg.ScheduleDefinition:
    # The job holds the catch-up assets too: a run request may select only a subset of its job.
    assets = (*spec.catch_up, *spec.targets)
    selection = dg.AssetSelection.all() if spec.select_all else dg.AssetSelection.assets(*assets)
    return trading_day_schedule(
        spec.name,
        spec.cron,
        selection,
        spec.kind,
        spec.description,
        job_name=spec.job_name,
        feed=spec.feed,
        priority=spec.priority,
        spec=spec,
    )


SCHEDULES: list[dg.ScheduleDefinition] = [schedule_from_spec(spec) for spec in SCHEDULE_SPECS]
JOBS: list[AssetJob] = [schedule.job for schedule in SCHEDULES]


def schedules_of(domain: str) -> list[dg.ScheduleDefinition]:
    """The schedules the table assigns to one folder of ``trading_data/defs``."""
    return [
        schedule for schedule, spec in zip(SCHEDULES, SCHEDULE_SPECS, strict=True) if spec.domain == domain
    ]
