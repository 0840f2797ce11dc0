"""The calendar-aware freshness checks, their job and their schedule (the rules:
:mod:`trading_data.monitoring.freshness`; Dagster's ``build_last_update_freshness_checks`` knows cron and a
lag, not the NYSE calendar)."""

import datetime as dt
import warnings
from collections.abc import Callable

import dagster as dg

from trading_data.calendar import session_at
from trading_data.clock import utc_now
from trading_data.monitoring.freshness import (
    FAMILIES,
    evaluate_freshness,
    evaluate_past_session,
    family,
    freshness_expectation,
)
from trading_data.monitoring.materializations import latest_materialization
from trading_data.scheduling import market_hours_only_from_env

warnings.filterwarnings("ignore", message="Specifying a partitions_def on an AssetCheckSpec")

Clock = Callable[[], dt.datetime]


def _run_session(context: dg.AssetCheckExecutionContext) -> str | None:
    """The session partition of the run evaluating the check, if it is a partitioned run."""
    return context.run.tags.get("dagster/partition")


def build_freshness_check(
    asset_family: str,
    *,
    clock: Clock = utc_now,
    market_hours_only: bool | None = None,
    severity: dg.AssetCheckSeverity = dg.AssetCheckSeverity.WARN,
) -> dg.AssetChecksDefinition:
    """A non-blocking check ``<asset>_calendar_fresh`` on the family's asset. It loads no data: it reads
    the latest materialization of today's session partition from the instance. ``market_hours_only``
    None reads ``TRADING_DATA_MARKET_HOURS_ONLY`` at evaluation, like the schedules."""
    fam = family(asset_family)

    @dg.asset_check(
        asset=fam.asset,
        name=f"{fam.asset}_calendar_fresh",
        blocking=False,
        description=(
            f"{fam.asset} was materialized for today's session since its last due "
            f"{fam.schedule} tick (grace {int(fam.grace.total_seconds() // 60)} min); "
            "no expectation on non-sessions, before the first tick, or after an early close."
        ),
        metadata={
            "family": fam.name,
            "schedule": fam.schedule,
            "grace_minutes": fam.grace.total_seconds() / 60,
        },
    )
    def _check(context: dg.AssetCheckExecutionContext) -> dg.AssetCheckResult:
        now = clock()
        key = dg.AssetKey(fam.asset)
        run_session = _run_session(context)
        live = session_at(now)
        if run_session and (live is None or run_session != live.key):
            verdict = evaluate_past_session(
                fam.name, run_session, latest_materialization(context.instance, key, run_session)
            )
        else:
            mho = market_hours_only_from_env() if market_hours_only is None else market_hours_only
            exp = freshness_expectation(fam.name, now, market_hours_only=mho)
            last = latest_materialization(context.instance, key, exp.session) if exp else None
            verdict = evaluate_freshness(fam.name, now, last, market_hours_only=mho)
        return dg.AssetCheckResult(
            passed=verdict.passed,
            severity=dg.AssetCheckSeverity.ERROR if verdict.failed_after_close else severity,
            description=verdict.reason,
            metadata=verdict.metadata(),
        )

    return _check


def build_freshness_checks(clock: Clock = utc_now, **kwargs: object) -> list[dg.AssetChecksDefinition]:
    return [build_freshness_check(name, clock=clock, **kwargs) for name in FAMILIES]  # type: ignore[arg-type]


FRESHNESS_CHECKS: list[dg.AssetChecksDefinition] = build_freshness_checks()

FRESHNESS_JOB = dg.define_asset_job(
    "freshness_checks_job",
    selection=dg.AssetSelection.checks(*FRESHNESS_CHECKS),
    description="Evaluates the calendar-aware freshness checks (no asset is materialized).",
    tags={"feed": "freshness"},
)

# Every 5 minutes on weekdays 09:00-17:55 New York (covers the 16:30 report's grace); the checks
# themselves pass silently on holidays and after early closes.
FRESHNESS_SCHEDULE = dg.ScheduleDefinition(
    name="freshness_checks_schedule",
    cron_schedule="*/5 9-17 * * 1-5",
    job=FRESHNESS_JOB,
    execution_timezone="America/New_York",
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="Runs the calendar-aware freshness checks every 5 minutes on weekdays.",
)
