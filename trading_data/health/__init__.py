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
freshness:<asset>   after     the due tick's session partition was materialized since that tick and
                    the close stored rows (``trading_data.monitoring.freshness``: today's tick, or the previous
                              session's last before today's first, overnight and on closed days);
                              stale or empty is WARN during the session and a required FAIL after
                              its close; "unknown" without an instance
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
import sys
from collections.abc import Mapping
from typing import Any

import psycopg

from trading_data.calendar import NEW_YORK, market_status
from trading_data.clock import ClockError, utc_now
from trading_data.db.migrate import SCHEMA_ENV, storage_mode, validate_schema_name
from trading_data.db.url import market_database_url, mask_password
from trading_data.health.instance import (
    check_daemon,
    check_freshness,
    check_reconciliation,
    dagster_instance,
)
from trading_data.health.result import FAIL, OK, WARN, check_result, error_text
from trading_data.redact import redact
from trading_data.settings import SettingsError, configuration_problems
from trading_data.settings.platform import SCHEMA, STORAGE_MODE
from trading_data.sources.breaker import BreakerState, breaker_states

VENDORS = ("polygon", "unusual_whales")
VENDOR_TIMEOUT_SECONDS = 15.0
# Extended hours: pre-market from 04:00 New York, after-hours for 4 hours after the close (to 20:00,
# or 17:00 after a 13:00 early close).
# The vendor's clock and ours may differ by seconds: at a transition either neighbour state agrees.
MARKET_STATUS_TOLERANCE = dt.timedelta(minutes=1)


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
        return check_result(FAIL, True, "; ".join(problems))
    mode = STORAGE_MODE.get()
    return check_result(OK, True, f"settings valid (schema {schema}, storage mode {mode})", storage_mode=mode)


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
        return check_result(
            FAIL,
            True,
            f"cannot reach {masked}: {error_text(exc, url)}; start it with "
            "`trading-data db start` or set TRADING_DATA_DATABASE_URL",
            url=masked,
            reachable=False,
        ), None
    pending = list(info["pending"])  # type: ignore[call-overload]
    applied = list(info["applied"])  # type: ignore[call-overload]
    if pending:
        db = check_result(
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
        db = check_result(
            OK,
            True,
            f"{masked} schema {schema}: {len(applied)} migrations applied",
            url=masked,
            reachable=True,
            applied=applied,
            pending=[],
        )
    mode = str(info["mode"])
    storage = check_result(
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
        return check_result(
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
    return check_result(
        OK, True, f"{mode}: {FLOW_ALERTS_PATH} answered ({len(body.get('data', []))} alert)", mode=mode
    )


def check_vendor(vendor: str, timeout: float = VENDOR_TIMEOUT_SECONDS) -> dict[str, Any]:
    try:
        return asyncio.run(asyncio.wait_for(_probe_vendor(vendor), timeout))
    except Exception as exc:  # noqa: BLE001 - reported, not raised
        return check_result(FAIL, True, redact(error_text(exc)))


def calendar_market_status(moment: dt.datetime) -> str:
    """What ``/v1/marketstatus/now`` should say at ``moment`` by the NYSE calendar."""
    return market_status(moment)[0]


def check_market(polygon: Mapping[str, Any], now: dt.datetime) -> dict[str, Any]:
    """The vendor's market status against the calendar's at ``now``."""
    at = f"{now.astimezone(NEW_YORK):%H:%M} ET"
    expected = calendar_market_status(now)
    vendor = polygon.get("market")
    if polygon.get("status") != OK or vendor is None:
        return check_result(
            WARN,
            False,
            f"unknown: polygon did not answer; the NYSE calendar says {expected!r} at {at}",
            calendar=expected,
            vendor=None,
        )
    near = {calendar_market_status(now + k * MARKET_STATUS_TOLERANCE) for k in (-1, 0, 1)}
    if vendor in near:
        return check_result(
            OK,
            False,
            f"{vendor}: polygon and the NYSE calendar agree at {at}",
            vendor=vendor,
            calendar=expected,
        )
    return check_result(
        WARN,
        False,
        f"polygon /v1/marketstatus/now says {vendor!r} (server time {polygon.get('server_time')}) but the "
        f"NYSE calendar says {expected!r} at {at}: is the vendor's (or the simulator's) clock, or "
        "TRADING_DATA_NOW, wrong?",
        vendor=vendor,
        calendar=expected,
    )


def check_breakers(
    url: str, schema: str, reachable: bool, why_not: str = "database unreachable"
) -> dict[str, dict[str, Any]]:
    if not reachable:
        return {f"breaker:{v}": check_result(WARN, False, f"unknown: {why_not}") for v in VENDORS}
    try:
        rows = {s.vendor: s for s in breaker_states(url, schema)}
    except Exception as exc:  # noqa: BLE001
        return {
            f"breaker:{v}": check_result(WARN, False, f"unknown: {error_text(exc, url)}") for v in VENDORS
        }
    out = {}
    for vendor in sorted(set(VENDORS) | set(rows)):
        state = rows.get(vendor, BreakerState(vendor=vendor))
        out[f"breaker:{vendor}"] = check_result(
            OK if state.is_closed else WARN, False, state.describe(), **state.as_dict()
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
        url_error = error_text(exc)
    checks: dict[str, dict[str, Any]] = {"settings": check_settings(schema)}
    why_not = "database unreachable"
    if url is None:
        checks["database"] = check_result(FAIL, True, f"no database URL: {url_error}")
        reachable = False
    elif checks["settings"]["status"] == FAIL and not _valid_schema(schema):
        # The settings check names the problem; the database is not asked about a schema it cannot have.
        why_not = f"{SCHEMA_ENV} is invalid (see settings)"
        checks["database"] = check_result(WARN, False, f"not checked: {why_not}")
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
            instance_error = error_text(exc)
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
