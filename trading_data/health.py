"""``trading-data health``: is the platform able to do its job right now?

Checks, each ``OK``, ``WARN`` or ``FAIL``; the exit code is 1 when a *required* check fails:

==================  ========  ===================================================================
check               required  passes when
==================  ========  ===================================================================
settings            yes       every pipeline setting (``TRADING_DATA_<OPTION>``) and ``TRADING_DATA_NOW``
                              is valid (``configuration_problems``); else each problem's sentence
database            yes       PostgreSQL answers and every migration is applied
storage             no        reports TimescaleDB or plain-PostgreSQL mode (informational)
vendor:<name>       yes       the vendor answers a cheap request (the in-process simulator in
                              simulated mode): Polygon ``/v1/marketstatus/now``, Unusual Whales one
                              flow alert
market              no        Polygon's ``/v1/marketstatus/now`` (open, extended-hours, closed) agrees
                              with the NYSE calendar at the platform's clock (``utc_now``); else WARN
                              naming both
breaker:<name>      no        the vendor's shared circuit breaker is closed (open/half-open: WARN)
daemon              yes*      every required Dagster daemon has a recent heartbeat
                              (*only when ``DAGSTER_HOME`` names an instance; otherwise "unknown")
freshness:<asset>   after     today's session partition was materialized since its due tick and
                    the close stored rows (``trading_data.monitoring.freshness``); stale or empty is WARN during
                              the session and a required FAIL after its close; "unknown" without
                              an instance
reconciliation      yes       the latest evaluation of ``daily_report_reconciled`` for the latest
                              closed session passed, or there is none yet ("not evaluated"); a failed
                              evaluation FAILs with its description (WARN if its severity is WARN)
==================  ========  ===================================================================

Problems in checks that are not required show as ``WARN``. "Now" is :func:`trading_data.clock.utc_now`
(pinned by ``TRADING_DATA_NOW``), except for daemon heartbeats, which Dagster stamps with the system
clock. ``--json`` prints one object::

    {"status": "OK|WARN|FAIL", "ok": true, "checked_at": "...",
     "checks": {"database": {"status": "OK", "required": true, "detail": "...", ...}, ...}}
"""

import asyncio
import datetime as dt
import json
import os
import sys
from collections.abc import Mapping
from typing import Any

import psycopg

from trading_data.calendar import NEW_YORK, Session, is_session, market_status, previous_sessions, session
from trading_data.clock import ClockError, utc_now
from trading_data.db.migrate import SCHEMA_ENV, storage_mode, validate_schema_name
from trading_data.db.url import market_database_url, mask_password
from trading_data.monitoring.materializations import freshness_report
from trading_data.redact import redact
from trading_data.settings import SettingsError, configuration_problems
from trading_data.settings.platform import SCHEMA, STORAGE_MODE
from trading_data.sources.breaker import BreakerState, breaker_states

OK, WARN, FAIL = "OK", "WARN", "FAIL"
VENDORS = ("polygon", "unusual_whales")
VENDOR_TIMEOUT_SECONDS = 15.0
RECONCILIATION_ASSET = "daily_report"
RECONCILIATION_CHECK = "daily_report_reconciled"
# Extended hours: pre-market from 04:00 New York, after-hours for 4 hours after the close (to 20:00,
# or 17:00 after a 13:00 early close).
# The vendor's clock and ours may differ by seconds: at a transition either neighbour state agrees.
MARKET_STATUS_TOLERANCE = dt.timedelta(minutes=1)


def _check(status: str, required: bool, detail: str, **data: Any) -> dict[str, Any]:
    return {"status": status, "required": required, "detail": detail, **data}


def _error(exc: BaseException, url: str | None = None) -> str:
    text = " ".join(f"{type(exc).__name__}: {exc}".split())
    if url:
        text = text.replace(url, mask_password(url))
    return text[:300]


def check_settings(schema: str) -> dict[str, Any]:
    """Every setting validated where it is declared (``trading_data.settings``, the clock's included) and
    the schema name the report uses; each problem is its own sentence, said once."""
    problems = configuration_problems()
    try:
        validate_schema_name(schema)
    except SettingsError as exc:
        if str(exc) not in problems:  # TRADING_DATA_SCHEMA's own problem is already listed
            problems.append(str(exc))
    if problems:
        return _check(FAIL, True, "; ".join(problems))
    mode = STORAGE_MODE.get()
    return _check(OK, True, f"settings valid (schema {schema}, storage mode {mode})", storage_mode=mode)


def _valid_schema(schema: str) -> bool:
    try:
        validate_schema_name(schema)
    except SettingsError:
        return False
    return True


def check_database(url: str, schema: str) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """(database check, storage check or None when unreachable)."""
    masked = mask_password(url)
    try:
        with psycopg.connect(url, connect_timeout=5) as conn:
            conn.execute("SELECT 1")
        info = storage_mode(url, schema)
    except Exception as exc:  # noqa: BLE001 - reported, not raised
        return _check(
            FAIL,
            True,
            f"cannot reach {masked}: {_error(exc, url)}; start it with "
            "`trading-data db start` or set TRADING_DATA_DATABASE_URL",
            url=masked,
            reachable=False,
        ), None
    pending = list(info["pending"])  # type: ignore[call-overload]
    applied = list(info["applied"])  # type: ignore[call-overload]
    if pending:
        db = _check(
            FAIL,
            True,
            f"{masked} schema {schema}: migrations pending: {', '.join(pending)} "
            "(run `trading-data db migrate`)",
            url=masked,
            reachable=True,
            applied=applied,
            pending=pending,
        )
    else:
        db = _check(
            OK,
            True,
            f"{masked} schema {schema}: {len(applied)} migrations applied",
            url=masked,
            reachable=True,
            applied=applied,
            pending=[],
        )
    mode = str(info["mode"])
    storage = _check(
        OK,
        False,
        "TimescaleDB hypertables"
        if mode == "timescaledb"
        else "plain PostgreSQL"
        + (" (TimescaleDB available but not enabled)" if info["timescale_available"] else ""),
        mode=mode,
        hypertables=info["hypertables"],
    )
    return db, storage


async def _probe_vendor(vendor: str) -> dict[str, Any]:
    from trading_data.sources.resources import polygon_resource, unusual_whales_resource
    from trading_data.sources.unusual_whales import FLOW_ALERTS_PATH

    config = {"retry_attempts": 1, "timeout_seconds": 10.0}
    # The resources hold the keys as dg.EnvVar, which only Dagster may read: initialise them as a run
    # does (config processed, EnvVar resolved) instead of reading the keys a second way.
    if vendor == "polygon":
        with polygon_resource(**config).process_config_and_initialize_cm() as resource:
            mode = resource.vendor_settings().mode
            async with resource.client() as client:
                body = await client.market_status_now()
        return _check(
            OK,
            True,
            f"{mode}: /v1/marketstatus/now says market {body.get('market')}",
            mode=mode,
            market=body.get("market"),
            server_time=body.get("serverTime"),
        )
    with unusual_whales_resource(**config).process_config_and_initialize_cm() as uw:
        mode = uw.vendor_settings().mode
        async with uw.client() as uw_client:
            body = await uw_client.http.get_json(FLOW_ALERTS_PATH, {"limit": 1})
    return _check(
        OK, True, f"{mode}: {FLOW_ALERTS_PATH} answered ({len(body.get('data', []))} alert)", mode=mode
    )


def check_vendor(vendor: str, timeout: float = VENDOR_TIMEOUT_SECONDS) -> dict[str, Any]:
    try:
        return asyncio.run(asyncio.wait_for(_probe_vendor(vendor), timeout))
    except Exception as exc:  # noqa: BLE001 - reported, not raised
        return _check(FAIL, True, redact(_error(exc)))


def calendar_market_status(moment: dt.datetime) -> str:
    """What ``/v1/marketstatus/now`` should say at ``moment`` by the NYSE calendar."""
    return market_status(moment)[0]


def check_market(polygon: Mapping[str, Any], now: dt.datetime) -> dict[str, Any]:
    """The vendor's market status against the calendar's at ``now``."""
    at = f"{now.astimezone(NEW_YORK):%H:%M} ET"
    expected = calendar_market_status(now)
    vendor = polygon.get("market")
    if polygon.get("status") != OK or vendor is None:
        return _check(
            WARN,
            False,
            f"unknown: polygon did not answer; the NYSE calendar says {expected!r} at {at}",
            calendar=expected,
            vendor=None,
        )
    near = {calendar_market_status(now + k * MARKET_STATUS_TOLERANCE) for k in (-1, 0, 1)}
    if vendor in near:
        return _check(
            OK,
            False,
            f"{vendor}: polygon and the NYSE calendar agree at {at}",
            vendor=vendor,
            calendar=expected,
        )
    return _check(
        WARN,
        False,
        f"polygon /v1/marketstatus/now says {vendor!r} (server time {polygon.get('server_time')}) but the "
        f"NYSE calendar says {expected!r} at {at}: is the vendor's (or the simulator's) clock, or "
        "TRADING_DATA_NOW, wrong?",
        vendor=vendor,
        calendar=expected,
    )


def latest_closed_session(now: dt.datetime) -> Session:
    """The latest session whose regular close is at or before ``now``."""
    day = now.astimezone(NEW_YORK).date()
    if is_session(day) and session(day).has_closed(now):
        return session(day)
    return session(previous_sessions(day, 1)[0])


def check_reconciliation(instance: Any | None, now: dt.datetime) -> dict[str, Any]:
    """The latest ``daily_report_reconciled`` evaluation of the latest closed session."""
    import dagster as dg
    from dagster._core.event_api import PartitionKeyFilter
    from dagster._core.storage.asset_check_execution_record import AssetCheckExecutionRecordStatus

    closed = latest_closed_session(now)
    where = f"{RECONCILIATION_ASSET} session {closed.key}"
    if instance is None:
        return _check(WARN, False, f"unknown for {where}: no Dagster instance", session=closed.key)
    key = dg.AssetCheckKey(dg.AssetKey(RECONCILIATION_ASSET), RECONCILIATION_CHECK)
    try:
        record = instance.event_log_storage.get_latest_asset_check_execution_by_key(
            [key], partition_filter=PartitionKeyFilter(key=closed.key)
        ).get(key)
    except Exception as exc:  # noqa: BLE001
        return _check(WARN, False, f"unknown for {where}: {_error(exc)}", session=closed.key)
    if record is None:
        return _check(
            OK,
            True,
            f"{RECONCILIATION_CHECK} not evaluated yet for {where}",
            session=closed.key,
            state="not evaluated",
        )
    if record.status == AssetCheckExecutionRecordStatus.PLANNED:
        return _check(
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
        return _check(OK, True, f"{where} reconciled ({when}): {description}", state="passed", **data)
    warn_only = evaluation is not None and evaluation.severity == dg.AssetCheckSeverity.WARN
    return _check(
        WARN if warn_only else FAIL,
        not warn_only,
        f"{where} failed {RECONCILIATION_CHECK} ({when}): {description}",
        state="failed",
        **data,
    )


def check_breakers(
    url: str, schema: str, reachable: bool, why_not: str = "database unreachable"
) -> dict[str, dict[str, Any]]:
    if not reachable:
        return {f"breaker:{v}": _check(WARN, False, f"unknown: {why_not}") for v in VENDORS}
    try:
        rows = {s.vendor: s for s in breaker_states(url, schema)}
    except Exception as exc:  # noqa: BLE001
        return {f"breaker:{v}": _check(WARN, False, f"unknown: {_error(exc, url)}") for v in VENDORS}
    out = {}
    for vendor in sorted(set(VENDORS) | set(rows)):
        state = rows.get(vendor, BreakerState(vendor=vendor))
        out[f"breaker:{vendor}"] = _check(
            OK if state.is_closed else WARN, False, state.describe(), **state.as_dict()
        )
    return out


def dagster_instance() -> Any | None:
    """The instance named by DAGSTER_HOME, or None when it is unset."""
    if not os.environ.get("DAGSTER_HOME"):
        return None
    import dagster as dg

    return dg.DagsterInstance.get()


HEARTBEAT_MAX_AGE_SECONDS = 120


def check_daemon(instance: Any | None, error: str | None = None) -> dict[str, Any]:
    if error:
        return _check(FAIL, True, f"cannot open the Dagster instance: {error}", state="unknown")
    if instance is None:
        return _check(
            WARN,
            False,
            "unknown: DAGSTER_HOME is not set (trading-data dev uses <project>/.dagster_home)",
            state="unknown",
        )
    try:
        statuses = instance.get_daemon_statuses()
    except Exception as exc:  # noqa: BLE001
        return _check(FAIL, True, f"cannot read daemon heartbeats: {_error(exc)}", state="unknown")
    if not statuses:
        return _check(WARN, False, "the instance requires no daemons (ephemeral instance?)", state="unknown")
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
        return _check(
            FAIL,
            True,
            f"no recent heartbeat from: {', '.join(unhealthy)} (is `dagster-daemon run` "
            "or `trading-data dev` running?)",
            state="down",
            daemons=daemons,
        )
    return _check(OK, True, f"{len(statuses)} daemons heartbeating", state="running", daemons=daemons)


def check_freshness(instance: Any | None, now: dt.datetime) -> dict[str, dict[str, Any]]:
    out = {}
    for asset, verdict in freshness_report(instance, now).items():
        if verdict is None:
            out[f"freshness:{asset}"] = _check(WARN, False, "unknown: no Dagster instance", state="unknown")
            continue
        # Stale or empty during the session warns; after the close nothing more arrives today: FAIL.
        out[f"freshness:{asset}"] = _check(
            {"ok": OK, "warn": WARN, "fail": FAIL}[verdict.severity],
            verdict.failed_after_close,
            verdict.reason,
            **{k: v for k, v in verdict.metadata().items() if k != "reason"},
        )
    return out


def collect_health(
    url: str | None = None,
    schema: str | None = None,
    *,
    now: dt.datetime | None = None,
    instance: Any | None = None,
    use_dagster_home: bool = True,
    check_vendors: bool = True,
) -> dict[str, Any]:
    """Run every check (see the module docstring) and return the report as a JSON-ready dict.

    ``instance``: a Dagster instance to ask for daemons and materializations; without one and with
    ``use_dagster_home``, ``DAGSTER_HOME``'s instance is used when set.
    """
    if now is None:
        try:
            now = utc_now()
        except ClockError:  # the settings check names the bad TRADING_DATA_NOW; the system clock stands in
            now = dt.datetime.now(dt.UTC)
    schema = schema or SCHEMA.get()
    try:
        url = url or market_database_url()
    except Exception as exc:  # noqa: BLE001 - e.g. the embedded server's port cannot be resolved
        url = None
        url_error = _error(exc)
    checks: dict[str, dict[str, Any]] = {"settings": check_settings(schema)}
    why_not = "database unreachable"
    if url is None:
        checks["database"] = _check(FAIL, True, f"no database URL: {url_error}")
        reachable = False
    elif checks["settings"]["status"] == FAIL and not _valid_schema(schema):
        # The settings check names the problem; the database is not asked about a schema it cannot have.
        why_not = f"{SCHEMA_ENV} is invalid (see settings)"
        checks["database"] = _check(WARN, False, f"not checked: {why_not}")
        reachable = False
    else:
        checks["database"], storage = check_database(url, schema)
        reachable = storage is not None
        if storage is not None:
            checks["storage"] = storage
    if check_vendors:
        for vendor in VENDORS:
            checks[f"vendor:{vendor}"] = check_vendor(vendor)
        if "vendor:polygon" in checks:
            checks["market"] = check_market(checks["vendor:polygon"], now)
    checks.update(check_breakers(url or "", schema, reachable, why_not))
    instance_error = None
    if instance is None and use_dagster_home:
        try:
            instance = dagster_instance()
        except Exception as exc:  # noqa: BLE001
            instance_error = _error(exc)
    checks["daemon"] = check_daemon(instance, instance_error)
    checks.update(check_freshness(instance if instance_error is None else None, now))
    checks["reconciliation"] = check_reconciliation(instance if instance_error is None else None, now)

    required_failed = [n for n, c in checks.items() if c["required"] and c["status"] == FAIL]
    warned = [n for n, c in checks.items() if c["status"] != OK]
    status = FAIL if required_failed else WARN if warned else OK
    return {
        "status": status,
        "ok": not required_failed,
        "checked_at": now.isoformat(),
        "failed": required_failed,
        "warnings": [n for n in warned if n not in required_failed],
        "checks": checks,
    }


def render_table(report: Mapping[str, Any]) -> str:
    checked = dt.datetime.fromisoformat(report["checked_at"]).astimezone(NEW_YORK)
    rows = [
        (name, c["status"], "required" if c["required"] else "", c["detail"])
        for name, c in report["checks"].items()
    ]
    width = max(len(r[0]) for r in rows)
    lines = [f"trading-data health at {checked:%Y-%m-%d %H:%M} ET: {report['status']}", ""]
    lines += [f"{name:<{width}}  {status:<4}  {req:<8}  {detail}" for name, status, req, detail in rows]
    return "\n".join(lines)


def main(json_output: bool = False) -> int:
    """``trading-data health [--json]``: 0 when every required check is OK, else 1."""
    report = collect_health()
    if json_output:
        print(json.dumps(report, default=str))
    else:
        print(render_table(report))
    sys.stdout.flush()
    return 0 if report["ok"] else 1
