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

from trading_data.calendar import NEW_YORK
from trading_data.ops import health
from trading_data.ops.breaker import CircuitBreaker
from trading_data.sources.simulator.server import SimulatorServer


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
