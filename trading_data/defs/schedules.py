"""The eight trading-day schedules and their asset jobs (DESIGN.md decision 5, seed section 4).

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

import dagster as dg

# Not re-exported at the top level; define_asset_job returns it.
from dagster._core.definitions.unresolved_asset_job_definition import UnresolvedAssetJobDefinition
from dagster._utils.schedules import is_valid_cron_string

from trading_data.partitions import session_partitions
from trading_data.scheduling import (
    EXECUTION_TIMEZONE,
    SCHEDULE_SPECS,
    TAG_FEED,
    TAG_FORCED,
    TAG_KIND,
    TAG_PRIORITY,
    TAG_SCHEDULE,
    TAG_SESSION,
    TAG_TICK,
    ScheduleKind,
    ScheduleSpec,
    decide_tick,
    force_from_env,
    market_hours_only_from_env,
    to_new_york,
)

ScheduleTarget = dg.AssetSelection | UnresolvedAssetJobDefinition | dg.JobDefinition


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
) -> UnresolvedAssetJobDefinition:
    """An asset job over NYSE session partitions."""
    return dg.define_asset_job(
        name=name, selection=selection, partitions_def=session_partitions, tags=dict(tags or {})
    )


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
) -> dg.ScheduleDefinition:
    """A schedule that runs ``target``'s session partition at each ``cron`` tick on NYSE sessions.

    ``target`` is an ``AssetSelection`` (a session-partitioned job named ``job_name``, default
    ``<name without _schedule>_job``, is built for it) or an existing job, which must be partitioned by
    ``session_partitions``. ``kind`` is ``"collection"`` (skips after an early close, and outside the
    regular session when ``TRADING_DATA_MARKET_HOURS_ONLY`` is true) or ``"fixed"`` (every session).
    ``feed`` (default: the schedule name without ``_schedule``) is the ``feed`` run tag; ``priority``
    sets ``dagster/priority`` on the scheduled runs. The built job is ``schedule.job``.
    """
    check_weekday_cron(cron)
    feed = feed or name.removesuffix("_schedule")
    if isinstance(target, dg.AssetSelection):
        job: UnresolvedAssetJobDefinition | dg.JobDefinition = session_asset_job(
            job_name or f"{name.removesuffix('_schedule')}_job",
            target,
            tags={TAG_FEED: feed, TAG_KIND: kind},
        )
    else:
        job = target

    run_tags = {TAG_SCHEDULE: name, TAG_KIND: kind, TAG_FEED: feed}
    if priority is not None:
        run_tags[TAG_PRIORITY] = str(priority)

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
        tags = {**run_tags, TAG_TICK: tick.isoformat(), TAG_SESSION: decision.partition_key}
        if decision.forced:
            tags[TAG_FORCED] = decision.forced
        return dg.RunRequest(partition_key=decision.partition_key, run_key=decision.run_key, tags=tags)

    return _trading_day


def schedule_from_spec(spec: ScheduleSpec) -> dg.ScheduleDefinition:
    selection = dg.AssetSelection.all() if spec.select_all else dg.AssetSelection.assets(*spec.targets)
    return trading_day_schedule(
        spec.name,
        spec.cron,
        selection,
        spec.kind,
        spec.description,
        job_name=spec.job_name,
        feed=spec.feed,
        priority=spec.priority,
    )


SCHEDULES: list[dg.ScheduleDefinition] = [schedule_from_spec(spec) for spec in SCHEDULE_SPECS]
JOBS: list[UnresolvedAssetJobDefinition | dg.JobDefinition] = [schedule.job for schedule in SCHEDULES]
