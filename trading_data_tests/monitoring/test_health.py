"""``trading-data health``: the report's shape, the exit code, and the daemon/freshness sections."""

import datetime as dt
import json
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qsl

import dagster as dg
import pytest
from dagster._daemon.types import DaemonHeartbeat
from starlette.responses import JSONResponse

from trading_data import health
from trading_data.calendar import NEW_YORK
from trading_data.clock import utc_now
from trading_data.partitions import session_partitions
from trading_data.settings import PipelineSettings, SettingsError
from trading_data.sources.breaker import CircuitBreaker
from trading_data.sources.simulator.server import SimulatorServer
from trading_data_tests.factories import materialize_at


@pytest.fixture(autouse=True)
def simulated(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (
        "POLYGON_API_KEY",
        "UNUSUAL_WHALES_API_TOKEN",
        "TRADING_DATA_SIMULATOR_URL",
        "DAGSTER_HOME",
        "TRADING_DATA_MARKET_HOURS_ONLY",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("TRADING_DATA_SOURCE", "simulated")


def test_dead_database_fails_with_exit_code_1(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("TRADING_DATA_DATABASE_URL", "postgresql://postgres:s3cret@127.0.0.1:9/trading_data")
    assert health.main(json_output=True) == 1
    out = capsys.readouterr().out
    report = json.loads(out)
    assert report["status"] == "FAIL" and report["ok"] is False and "database" in report["failed"]
    db = report["checks"]["database"]
    assert db["status"] == "FAIL" and db["required"] is True and db["reachable"] is False
    assert "trading-data db start" in db["detail"]
    assert "s3cret" not in out and "postgres:***@127.0.0.1:9" in db["url"]
    assert report["checks"]["breaker:polygon"]["status"] == "WARN"
    assert report["checks"]["daemon"]["state"] == "unknown"
    assert report["checks"]["vendor:polygon"]["status"] == "OK"  # the in-process simulator still answers


def test_human_table(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("TRADING_DATA_DATABASE_URL", "postgresql://postgres@127.0.0.1:9/trading_data")
    monkeypatch.setattr(health, "VENDORS", ())
    monkeypatch.setattr(health, "check_vendor", lambda vendor: {})
    assert health.main(json_output=False) == 1
    out = capsys.readouterr().out
    assert out.startswith("trading-data health at ") and ": FAIL" in out.splitlines()[0]
    assert any(line.startswith("database") and " FAIL " in line for line in out.splitlines())


def test_healthy_platform(clean_market: str) -> None:
    CircuitBreaker(clean_market, vendor="polygon", failure_threshold=1).record_failure("HTTP 503")
    now = dt.datetime(2026, 11, 24, 11, 0, tzinfo=NEW_YORK)
    with dg.instance_for_test() as instance:
        # No heartbeats yet: the daemon check is required and fails.
        report = health.collect_health(clean_market, instance=instance, now=now)
        assert report["checks"]["daemon"]["status"] == "FAIL" and not report["ok"]
        for daemon_type in instance.get_required_daemon_types():
            instance.add_daemon_heartbeat(DaemonHeartbeat(time.time(), daemon_type, None, None))
        report = health.collect_health(clean_market, instance=instance, now=now)
        # The previous session's report is missing: its session has closed, so that is a required FAIL.
        assert not report["ok"] and report["checks"]["freshness:daily_report"]["status"] == "FAIL"
        assert report["checks"]["freshness:daily_report"]["session"] == "2026-11-23"
        materialize_at(
            instance, "daily_report", "2026-11-23", dt.datetime(2026, 11, 23, 16, 41, tzinfo=NEW_YORK)
        )
        report = health.collect_health(clean_market, instance=instance, now=now)
    json.dumps(report)  # JSON-ready
    checks = report["checks"]
    assert report["ok"] is True and report["status"] == "WARN"
    assert checks["database"]["status"] == "OK" and checks["database"]["pending"] == []
    assert checks["storage"]["mode"] in {"postgresql", "timescaledb"}
    assert checks["vendor:polygon"]["status"] == "OK" and checks["vendor:polygon"]["mode"] == "simulated"
    assert checks["vendor:unusual_whales"]["status"] == "OK"
    assert checks["daemon"]["status"] == "OK" and checks["daemon"]["state"] == "running"
    assert checks["breaker:polygon"]["status"] == "WARN" and checks["breaker:polygon"]["state"] == "open"
    assert checks["breaker:unusual_whales"]["status"] == "OK"
    # Nothing materialized by 11:00 on a session: stale, reported as a warning.
    assert checks["freshness:quotes"]["status"] == "WARN"
    assert checks["freshness:quotes"]["due_tick"] == "2026-11-24T10:45:00-05:00"
    assert checks["freshness:daily_report"]["status"] == "OK"  # the previous session's, until today's 16:30
    assert set(report["warnings"]) >= {"breaker:polygon", "freshness:quotes"}


# --- live deployments: keys set, vendors over real HTTP with auth enforced ---------------------------

POLYGON_KEY = "pk_live_7Hq2ZxW9aB"
UW_TOKEN = "uw_tok_M4rK8sTq3v"


class KeyGate:
    """The simulator app behind a gate that admits only the exact keys (the simulator itself admits any
    non-empty key), answering as each vendor does. ``echo``: the 401 body quotes the rejected key
    upper-cased under ``APIKEY=``, as a careless vendor might."""

    def __init__(self, app: Any, polygon_key: str, uw_token: str) -> None:
        self.app, self.polygon_key, self.uw_token = app, polygon_key, uw_token
        self.echo = False

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http" and not scope["path"].startswith("/_sim"):
            header = dict(scope["headers"]).get(b"authorization", b"").decode()
            token = header[7:].strip() if header.lower().startswith("bearer ") else ""
            query = dict(parse_qsl(scope["query_string"].decode()))
            body: dict[str, Any]
            if scope["path"].startswith("/api/"):
                sent, admitted = token, token == self.uw_token
                body = {"code": "unauthorized", "message": "Missing or invalid API token"}
            else:
                sent = token or query.get("apiKey", "")
                admitted = self.polygon_key in (token, query.get("apiKey"))
                body = {"status": "ERROR", "request_id": "x", "error": "Unknown API Key"}
            if not admitted:
                if self.echo:
                    field = "message" if "message" in body else "error"
                    body[field] += f" (APIKEY={sent.upper()})"
                await JSONResponse(body, status_code=401)(scope, receive, send)
                return
        await self.app(scope, receive, send)


@pytest.fixture
def keyed_simulator(
    monkeypatch: pytest.MonkeyPatch, clean_market: str
) -> Iterator[tuple[SimulatorServer, KeyGate]]:
    """Live mode: both keys set, both vendors' base URLs at a key-checking simulator on loopback."""
    sim = SimulatorServer()
    gate = KeyGate(sim.app, POLYGON_KEY, UW_TOKEN)
    sim.app = gate
    monkeypatch.delenv("TRADING_DATA_SOURCE")
    monkeypatch.setenv("POLYGON_API_KEY", POLYGON_KEY)
    monkeypatch.setenv("UNUSUAL_WHALES_API_TOKEN", UW_TOKEN)
    monkeypatch.setenv("TRADING_DATA_DATABASE_URL", clean_market)
    with sim:
        monkeypatch.setenv("POLYGON_BASE_URL", sim.base_url)
        monkeypatch.setenv("UNUSUAL_WHALES_BASE_URL", sim.base_url)
        yield sim, gate


def test_live_keys_pass_the_vendor_checks_and_never_show(
    keyed_simulator: tuple[SimulatorServer, KeyGate], capsys: pytest.CaptureFixture[str]
) -> None:
    sim, _ = keyed_simulator
    assert health.main(json_output=True) == 0
    out = capsys.readouterr().out
    checks = json.loads(out)["checks"]
    for vendor in ("polygon", "unusual_whales"):
        assert checks[f"vendor:{vendor}"]["status"] == "OK", checks[f"vendor:{vendor}"]
        assert checks[f"vendor:{vendor}"]["mode"] == "live"
    assert health.main(json_output=False) == 0
    out += capsys.readouterr().out
    assert POLYGON_KEY not in out and UW_TOKEN not in out
    # The vendor checks were answered by the simulator behind the gate, over HTTP.
    per_path = sim.stats.snapshot()["per_path"]
    assert per_path.get("/v1/marketstatus/now") == 2 and per_path.get("/api/option-trades/flow-alerts") == 2


@pytest.mark.parametrize("echo", [False, True], ids=["plain-401", "401-echoing-the-key-upper-cased"])
def test_wrong_key_fails_naming_the_variable(
    keyed_simulator: tuple[SimulatorServer, KeyGate],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    echo: bool,
) -> None:
    keyed_simulator[1].echo = echo
    wrong_key, wrong_token = "pk_wrong_Zt5yQw1e", "uw_wrong_Lp0aXc7r"
    monkeypatch.setenv("POLYGON_API_KEY", wrong_key)
    monkeypatch.setenv("UNUSUAL_WHALES_API_TOKEN", wrong_token)
    assert health.main(json_output=True) == 1
    out = capsys.readouterr().out
    report = json.loads(out)
    assert {"vendor:polygon", "vendor:unusual_whales"} <= set(report["failed"])
    for vendor, variable in (("polygon", "POLYGON_API_KEY"), ("unusual_whales", "UNUSUAL_WHALES_API_TOKEN")):
        detail = report["checks"][f"vendor:{vendor}"]["detail"]
        # The vendor's own answer (the request was sent), with what to fix.
        assert "rejected the credentials (HTTP 401" in detail and f"set {variable} to a valid key" in detail
    assert health.main(json_output=False) == 1
    out += capsys.readouterr().out
    for secret in (wrong_key, wrong_token):
        assert secret.lower() not in out.lower()


# --- settings -----------------------------------------------------------------------------------------


def test_an_invalid_setting_fails_health_with_its_sentence(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], clean_market: str
) -> None:
    monkeypatch.setenv("TRADING_DATA_DATABASE_URL", clean_market)
    assert health.collect_health()["checks"]["settings"]["status"] == "OK"
    monkeypatch.setenv("TRADING_DATA_MAX_ACTIVE_TICKERS", "abc")
    with pytest.raises(SettingsError) as expected:
        PipelineSettings.from_env()
    assert health.main(json_output=True) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["failed"] == ["settings"]
    settings = report["checks"]["settings"]
    assert settings["status"] == "FAIL" and settings["required"] is True
    assert settings["detail"] == str(expected.value)
    assert "TRADING_DATA_MAX_ACTIVE_TICKERS='abc'" in settings["detail"]


def test_a_bad_clock_setting_fails_health_instead_of_crashing(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], clean_market: str
) -> None:
    monkeypatch.setenv("TRADING_DATA_DATABASE_URL", clean_market)
    monkeypatch.setenv("TRADING_DATA_NOW", "tuesday")
    assert health.main(json_output=False) == 1
    out = capsys.readouterr().out
    line = next(line for line in out.splitlines() if line.startswith("settings"))
    assert " FAIL " in line and "TRADING_DATA_NOW='tuesday'" in line


# --- the day: market status and reconciliation ---------------------------------------------------------

SESSION_AFTERNOON = "2026-12-01T14:26:00-05:00"  # a Tuesday session, mid-afternoon


@pytest.fixture
def pinned_afternoon(monkeypatch: pytest.MonkeyPatch, clean_market: str) -> str:
    monkeypatch.setenv("TRADING_DATA_NOW", SESSION_AFTERNOON)
    monkeypatch.setenv("TRADING_DATA_DATABASE_URL", clean_market)
    return SESSION_AFTERNOON


def test_market_status_agrees_with_the_calendar_at_the_pinned_clock(
    pinned_afternoon: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The simulator's /v1/marketstatus/now computed at the platform's clock, over HTTP.
    with SimulatorServer(now=utc_now, recorded_dir=None) as sim:
        monkeypatch.setenv("TRADING_DATA_SIMULATOR_URL", sim.base_url)
        report = health.collect_health(use_dagster_home=False)
    assert report["checked_at"] == dt.datetime.fromisoformat(SESSION_AFTERNOON).astimezone(dt.UTC).isoformat()
    market = report["checks"]["market"]
    assert report["checks"]["vendor:polygon"]["market"] == "open"
    assert market["status"] == "OK" and market["vendor"] == "open" and market["calendar"] == "open"
    assert "14:26 ET" in market["detail"]


def test_market_status_disagreeing_with_the_calendar_warns_naming_both(
    pinned_afternoon: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A vendor whose clock says 03:00 the same day: "closed" while the calendar says "open".
    night = dt.datetime.fromisoformat("2026-12-01T03:00:00-05:00")
    with SimulatorServer(now=lambda: night, recorded_dir=None) as sim:
        monkeypatch.setenv("TRADING_DATA_SIMULATOR_URL", sim.base_url)
        report = health.collect_health(use_dagster_home=False)
    market = report["checks"]["market"]
    assert market["status"] == "WARN" and market["required"] is False and report["ok"] is True
    assert "'closed'" in market["detail"] and "'open'" in market["detail"]
    assert market["vendor"] == "closed" and market["calendar"] == "open"


@pytest.mark.parametrize(
    ("moment", "expected"),
    [
        ("2026-12-01T09:29:00-05:00", "extended-hours"),
        ("2026-12-01T09:30:00-05:00", "open"),
        ("2026-12-01T16:00:00-05:00", "extended-hours"),
        ("2026-12-01T20:00:00-05:00", "closed"),
        ("2026-11-26T12:00:00-05:00", "closed"),  # Thanksgiving
        ("2026-11-27T13:30:00-05:00", "extended-hours"),  # after the 13:00 early close
        ("2026-11-27T17:00:00-05:00", "closed"),  # after-hours end 4 hours after an early close
        ("2026-11-28T12:00:00-05:00", "closed"),  # Saturday
    ],
)
def test_calendar_market_status(moment: str, expected: str) -> None:
    assert health.calendar_market_status(dt.datetime.fromisoformat(moment)) == expected


REPORT_SESSION = "2026-11-30"  # the latest closed session at the pinned Tuesday afternoon


def materialize_daily_report(
    instance: dg.DagsterInstance,
    session: str,
    passed: bool,
    severity: dg.AssetCheckSeverity = dg.AssetCheckSeverity.ERROR,
) -> None:
    """A ``daily_report`` partition and its ``daily_report_reconciled`` evaluation, run through Dagster."""

    @dg.asset(name="daily_report", partitions_def=session_partitions)
    def daily_report() -> None:
        return None

    @dg.asset_check(asset=daily_report, name="daily_report_reconciled", partitions_def=session_partitions)
    def daily_report_reconciled() -> dg.AssetCheckResult:
        text = "All 3 active ticker(s) reconciled." if passed else "AAPL: trade volume 81% of the daily bar."
        return dg.AssetCheckResult(passed=passed, description=text, severity=severity)

    result = dg.materialize(
        [daily_report, daily_report_reconciled],
        instance=instance,
        partition_key=session,
        raise_on_error=False,
    )
    assert result.success


def test_reconciliation_of_the_latest_closed_session(pinned_afternoon: str) -> None:
    with dg.instance_for_test() as instance:
        report = health.collect_health(instance=instance, check_vendors=False)
        check = report["checks"]["reconciliation"]
        assert check["status"] == "OK" and check["session"] == REPORT_SESSION
        assert "not evaluated" in check["detail"]

        # An evaluation of another session says nothing about this one.
        materialize_daily_report(instance, "2026-11-27", passed=False)
        check = health.collect_health(instance=instance, check_vendors=False)["checks"]["reconciliation"]
        assert check["status"] == "OK" and "not evaluated" in check["detail"]

        materialize_daily_report(instance, REPORT_SESSION, passed=False)
        report = health.collect_health(instance=instance, check_vendors=False)
        check = report["checks"]["reconciliation"]
        assert (
            check["status"] == "FAIL" and check["required"] is True and "reconciliation" in report["failed"]
        )
        assert (
            "AAPL: trade volume 81% of the daily bar." in check["detail"]
            and REPORT_SESSION in check["detail"]
        )

        materialize_daily_report(instance, REPORT_SESSION, passed=True)
        check = health.collect_health(instance=instance, check_vendors=False)["checks"]["reconciliation"]
        assert check["status"] == "OK" and "All 3 active ticker(s) reconciled." in check["detail"]

        # A failed evaluation of WARN severity (the check's "not reconciled yet" before the close) warns.
        materialize_daily_report(instance, REPORT_SESSION, passed=False, severity=dg.AssetCheckSeverity.WARN)
        report = health.collect_health(instance=instance, check_vendors=False)
        check = report["checks"]["reconciliation"]
        assert (
            check["status"] == "WARN"
            and check["required"] is False
            and "reconciliation" not in report["failed"]
        )


def test_reconciliation_is_unknown_without_an_instance(pinned_afternoon: str) -> None:
    check = health.collect_health(use_dagster_home=False, check_vendors=False)["checks"]["reconciliation"]
    assert check["status"] == "WARN" and check["required"] is False and check["session"] == REPORT_SESSION


@pytest.mark.parametrize(
    ("variable", "value"),
    [("TRADING_DATA_SCHEMA", "information_schema"), ("TRADING_DATA_STORAGE_MODE", "fast")],
)
def test_invalid_database_settings_fail_health_once(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    clean_market: str,
    variable: str,
    value: str,
) -> None:
    monkeypatch.setenv("TRADING_DATA_DATABASE_URL", clean_market)
    monkeypatch.setenv(variable, value)
    assert health.main(json_output=False) == 1
    out = capsys.readouterr().out
    line = next(line for line in out.splitlines() if line.startswith("settings"))
    assert " FAIL " in line and f"(from {variable}={value!r})" in line
    assert out.count(f"{variable}={value!r}") == 1  # said once, in the settings check


@pytest.mark.parametrize(
    "moment",
    [
        SESSION_AFTERNOON,
        "2026-12-01T08:00:00-05:00",  # pre-market
        "2026-11-27T14:00:00-05:00",  # after the 13:00 early close
        "2026-11-27T18:00:00-05:00",  # after-hours over 4 hours after the early close
        "2026-11-26T12:00:00-05:00",  # Thanksgiving
        "2026-11-28T12:00:00-05:00",  # Saturday
    ],
)
def test_health_against_the_simulator_reports_its_status_at_the_platform_clock(
    monkeypatch: pytest.MonkeyPatch, clean_market: str, moment: str
) -> None:
    """The in-process simulator (what ``trading-data health`` uses without keys) at a pinned clock."""
    monkeypatch.setenv("TRADING_DATA_NOW", moment)
    monkeypatch.setenv("TRADING_DATA_DATABASE_URL", clean_market)
    report = health.collect_health(use_dagster_home=False)
    market = report["checks"]["market"]
    expected = health.calendar_market_status(dt.datetime.fromisoformat(moment))
    assert market["status"] == "OK", market["detail"]
    assert market["vendor"] == expected == report["checks"]["vendor:polygon"]["market"]


def test_a_bad_vendor_setting_fails_health(monkeypatch: pytest.MonkeyPatch) -> None:
    from trading_data.health import check_settings

    monkeypatch.setenv("POLYGON_RATE_LIMIT_PER_MINUTE", "0")
    result = check_settings("market")
    assert result["status"] == "FAIL" and "POLYGON_RATE_LIMIT_PER_MINUTE" in result["detail"]
