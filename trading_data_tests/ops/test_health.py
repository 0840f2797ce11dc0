"""``trading-data health``: the report's shape, the exit code, and the daemon/freshness sections."""

import datetime as dt
import json
import time

import dagster as dg
import pytest
from dagster._daemon.types import DaemonHeartbeat

from trading_data.calendar import NEW_YORK
from trading_data.ops import health
from trading_data.ops.breaker import CircuitBreaker


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
    assert checks["freshness:daily_report"]["status"] == "OK"  # not due before 16:30
    assert set(report["warnings"]) >= {"breaker:polygon", "freshness:quotes"}
