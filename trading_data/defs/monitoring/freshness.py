"""The calendar-aware freshness checks, their job and the sensor that evaluates them every 5 minutes (the
rules: :mod:`trading_data.monitoring.freshness`; Dagster's ``build_last_update_freshness_checks`` knows cron
and a lag, not the NYSE calendar).

The sensor evaluates all eight checks in the code server, which has the definitions loaded already, and
reports them as ``AssetCheckEvaluation``s: a few instance queries, where the 5-minute schedule it replaces
launched a run (a run worker importing the definitions, then a process per check: ~60 s of CPU on this
2-core machine every 5 minutes; issue 11). The checks stay declared: they run inside asset runs, judge
backfilled sessions there, and ``freshness_checks_job`` evaluates them on demand."""

import datetime as dt
import warnings
from collections.abc import Callable

import dagster as dg

from trading_data.calendar import NEW_YORK, session_at
from trading_data.clock import utc_now
from trading_data.monitoring.freshness import (
    FAMILIES,
    FreshnessVerdict,
    evaluate_freshness,
    evaluate_past_session,
    family,
    freshness_expectation,
)
from trading_data.monitoring.materializations import freshness_report, latest_materialization
from trading_data.scheduling import market_hours_only_from_env

warnings.filterwarnings("ignore", message="Specifying a partitions_def on an AssetCheckSpec")

Clock = Callable[[], dt.datetime]


def _run_session(context: dg.AssetCheckExecutionContext) -> str | None:
    """The session partition of the run evaluating the check, if it is a partitioned run; the last session
    of a batched backfill run's range."""
    tags = context.run.tags
    return tags.get("dagster/partition") or tags.get("dagster/asset_partition_range_end")


def _severity(verdict: FreshnessVerdict, severity: dg.AssetCheckSeverity) -> dg.AssetCheckSeverity:
    # Not fresh after the close: nothing more arrives today.
    return dg.AssetCheckSeverity.ERROR if verdict.failed_after_close else severity


def build_freshness_check(
    asset_family: str,
    *,
    clock: Clock = utc_now,
    market_hours_only: bool | None = None,
    severity: dg.AssetCheckSeverity = dg.AssetCheckSeverity.WARN,
) -> dg.AssetChecksDefinition:
    """A non-blocking check ``<asset>_calendar_fresh`` on the family's asset. It loads no data: it reads
    the latest materialization of the due tick's session partition from the instance. ``market_hours_only``
    None reads ``TRADING_DATA_MARKET_HOURS_ONLY`` at evaluation, like the schedules."""
    fam = family(asset_family)

    @dg.asset_check(
        asset=fam.asset,
        name=f"{fam.asset}_calendar_fresh",
        blocking=False,
        description=(
            f"{fam.asset} was materialized since its last due {fam.schedule} tick "
            f"(grace {int(fam.grace.total_seconds() // 60)} min): today's, or before today's first "
            "tick (and on weekends and holidays) the previous session's last tick."
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
            severity=_severity(verdict, severity),
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

FRESHNESS_INTERVAL_SECONDS = 300


def in_freshness_hours(now: dt.datetime) -> bool:
    """Weekdays 09:00-17:59 New York (covers the 16:30 report's grace), the hours the replaced
    ``*/5 9-17 * * 1-5`` schedule ran; the verdicts themselves pass on holidays and after early closes."""
    ny = now.astimezone(NEW_YORK)
    return ny.weekday() < 5 and 9 <= ny.hour <= 17


def freshness_evaluations(
    instance: dg.DagsterInstance,
    now: dt.datetime,
    severity: dg.AssetCheckSeverity = dg.AssetCheckSeverity.WARN,
) -> list[dg.AssetCheckEvaluation]:
    """Every family's ``<asset>_calendar_fresh`` verdict at ``now`` (today's session), as evaluations."""
    evaluations = []
    for asset, verdict in freshness_report(instance, now).items():
        assert verdict is not None  # an instance was given
        evaluations.append(
            dg.AssetCheckEvaluation(
                asset_key=dg.AssetKey(asset),
                check_name=f"{asset}_calendar_fresh",
                passed=verdict.passed,
                severity=_severity(verdict, severity),
                description=verdict.reason,
                metadata=verdict.metadata(),
            )
        )
    return evaluations


@dg.sensor(
    name="freshness_sensor",
    minimum_interval_seconds=FRESHNESS_INTERVAL_SECONDS,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description=(
        "Every 5 minutes on weekdays 09:00-17:59 New York: evaluates the calendar-aware freshness checks "
        "of every asset in the code server (no run) and records their results."
    ),
)
def freshness_sensor(context: dg.SensorEvaluationContext) -> dg.SensorResult | dg.SkipReason:
    now = utc_now()
    if not in_freshness_hours(now):
        return dg.SkipReason(
            f"outside the freshness hours (weekdays 09:00-17:59 New York) at {now.isoformat()}"
        )
    return dg.SensorResult(asset_events=freshness_evaluations(context.instance, now))
