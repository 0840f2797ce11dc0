"""The health checks that ask the Dagster instance: the daemons' heartbeats, freshness and the latest closed
session's reconciliation."""

import datetime as dt
import os
from typing import Any

from trading_data.calendar import NEW_YORK, Session, is_session, previous_sessions, session
from trading_data.health.result import FAIL, OK, WARN, check_result, error_text
from trading_data.monitoring.materializations import freshness_report

RECONCILIATION_ASSET = "daily_report"
RECONCILIATION_CHECK = "daily_report_reconciled"


def latest_closed_session(now: dt.datetime) -> Session:
    """The latest session whose regular close is at or before ``now``."""
    day = now.astimezone(NEW_YORK).date()
    if is_session(day) and session(day).has_closed(now):
        return session(day)
    return session(previous_sessions(day, 1)[0])


def check_reconciliation(instance: Any | None, now: dt.datetime) -> dict[str, Any]:
    """The latest ``daily_report_reconciled`` evaluation of the latest closed session."""
    import dagster as dg

    # No public names in Dagster 1.13 for reading a check's latest evaluation by partition.
    from dagster._core.event_api import PartitionKeyFilter
    from dagster._core.storage.asset_check_execution_record import AssetCheckExecutionRecordStatus

    closed = latest_closed_session(now)
    where = f"{RECONCILIATION_ASSET} session {closed.key}"
    if instance is None:
        return check_result(WARN, False, f"unknown for {where}: no Dagster instance", session=closed.key)
    key = dg.AssetCheckKey(dg.AssetKey(RECONCILIATION_ASSET), RECONCILIATION_CHECK)
    try:
        record = instance.event_log_storage.get_latest_asset_check_execution_by_key(
            [key], partition_filter=PartitionKeyFilter(key=closed.key)
        ).get(key)
    except Exception as exc:  # noqa: BLE001
        return check_result(WARN, False, f"unknown for {where}: {error_text(exc)}", session=closed.key)
    if record is None:
        return check_result(
            OK,
            True,
            f"{RECONCILIATION_CHECK} not evaluated yet for {where}",
            session=closed.key,
            state="not evaluated",
        )
    if record.status == AssetCheckExecutionRecordStatus.PLANNED:
        return check_result(
            OK,
            True,
            f"{RECONCILIATION_CHECK} for {where} is being evaluated (run {record.run_id})",
            session=closed.key,
            state="planned",
            run_id=record.run_id,
        )
    evaluation = record.event.asset_check_evaluation if record.event else None
    description = (evaluation.description if evaluation else None) or "no description"
    # Dagster's own timestamp of the evaluation (system clock), shown so a stale verdict is visible.
    evaluated_at = dt.datetime.fromtimestamp(record.create_timestamp, dt.UTC)
    data = {"session": closed.key, "run_id": record.run_id, "evaluated_at": evaluated_at.isoformat()}
    when = f"evaluated {evaluated_at.astimezone(NEW_YORK):%Y-%m-%d %H:%M} ET"
    if record.status == AssetCheckExecutionRecordStatus.SUCCEEDED:
        return check_result(OK, True, f"{where} reconciled ({when}): {description}", state="passed", **data)
    warn_only = evaluation is not None and evaluation.severity == dg.AssetCheckSeverity.WARN
    return check_result(
        WARN if warn_only else FAIL,
        not warn_only,
        f"{where} failed {RECONCILIATION_CHECK} ({when}): {description}",
        state="failed",
        **data,
    )


def dagster_instance() -> Any | None:
    """The instance named by DAGSTER_HOME, or None when it is unset."""
    if not os.environ.get("DAGSTER_HOME"):
        return None
    import dagster as dg

    return dg.DagsterInstance.get()


HEARTBEAT_MAX_AGE_SECONDS = 120


def check_daemon(instance: Any | None, error: str | None = None) -> dict[str, Any]:
    if error:
        return check_result(FAIL, True, f"cannot open the Dagster instance: {error}", state="unknown")
    if instance is None:
        return check_result(
            WARN,
            False,
            "unknown: DAGSTER_HOME is not set (trading-data dev uses <project>/.dagster_home)",
            state="unknown",
        )
    try:
        statuses = instance.get_daemon_statuses()
    except Exception as exc:  # noqa: BLE001
        return check_result(FAIL, True, f"cannot read daemon heartbeats: {error_text(exc)}", state="unknown")
    if not statuses:
        return check_result(
            WARN, False, "the instance requires no daemons (ephemeral instance?)", state="unknown"
        )
    daemons = {}
    for daemon_type, status in statuses.items():
        beat = status.last_heartbeat
        daemons[daemon_type] = {
            "healthy": status.healthy,
            "last_heartbeat": (
                dt.datetime.fromtimestamp(beat.timestamp, dt.UTC).isoformat() if beat else None
            ),
        }
    # Dagster calls a heartbeat healthy for 30 minutes; a probe wants to know the daemon runs now.
    # Heartbeats carry Dagster's (system) clock, which TRADING_DATA_NOW does not pin: compare with it.
    cutoff = dt.datetime.now(dt.UTC).timestamp() - HEARTBEAT_MAX_AGE_SECONDS
    unhealthy = sorted(
        t
        for t, s in statuses.items()
        if s.required and (not s.healthy or s.last_heartbeat is None or s.last_heartbeat.timestamp < cutoff)
    )
    if unhealthy:
        return check_result(
            FAIL,
            True,
            f"no recent heartbeat from: {', '.join(unhealthy)} (is `dagster-daemon run` "
            "or `trading-data dev` running?)",
            state="down",
            daemons=daemons,
        )
    return check_result(OK, True, f"{len(statuses)} daemons heartbeating", state="running", daemons=daemons)


def check_freshness(instance: Any | None, now: dt.datetime) -> dict[str, dict[str, Any]]:
    out = {}
    for asset, verdict in freshness_report(instance, now).items():
        if verdict is None:
            out[f"freshness:{asset}"] = check_result(
                WARN, False, "unknown: no Dagster instance", state="unknown"
            )
            continue
        # Stale or empty during the session warns; after the close nothing more arrives today: FAIL.
        out[f"freshness:{asset}"] = check_result(
            {"ok": OK, "warn": WARN, "fail": FAIL}[verdict.severity],
            verdict.failed_after_close,
            verdict.reason,
            **{k: v for k, v in verdict.metadata().items() if k != "reason"},
        )
    return out
