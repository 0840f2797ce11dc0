"""The failure-alert sensor (against a local webhook receiver) and the volatility-burst sensor."""

import datetime as dt
import json
import math
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

import dagster as dg
import numpy as np
import pandas as pd
import psycopg
import pytest

from trading_data.calendar import NEW_YORK
from trading_data.db.resources import MarketDatabase
from trading_data.definitions import SENSORS
from trading_data.defs.monitoring.alerts import run_failure_alert_sensor
from trading_data.defs.monitoring.bursts import build_volatility_burst_sensor
from trading_data.monitoring.alerts import ALERT_WEBHOOK_ENV, scrub_text
from trading_data.monitoring.bursts import BurstThresholds, TickerBurst, burst_metrics, decide_burst


def ny(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=NEW_YORK)


# --- failure alerts ------------------------------------------------------------------------------------


class Receiver:
    """A tiny webhook endpoint: answers ``statuses`` in turn (then 200) and keeps the bodies."""

    def __init__(self, statuses: list[int] | None = None):
        self.bodies: list[dict[str, Any]] = []
        self.statuses = list(statuses or [])
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                length = int(self.headers.get("Content-Length", 0))
                receiver.bodies.append(json.loads(self.rfile.read(length)))
                status = receiver.statuses.pop(0) if receiver.statuses else 200
                self.send_response(status)
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args: object) -> None:
                pass

        self.server = HTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> "Receiver":
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


@dg.op
def fetch_quotes() -> None:
    raise RuntimeError(
        "polygon GET https://api.polygon.io/v3/quotes/AAPL?apiKey=sekrit-key-123&limit=50000: "
        "503 after 5 attempts; db postgresql://writer:hunter2@db.internal:5432/market"
    )


@dg.job
def failing_job() -> None:
    fetch_quotes()


@pytest.fixture
def failure_context() -> Iterator[Any]:
    with dg.instance_for_test() as instance:
        result = failing_job.execute_in_process(
            instance=instance, raise_on_error=False, tags={"dagster/partition": "2026-11-24"}
        )
        assert not result.success
        yield dg.build_run_status_sensor_context(
            sensor_name="run_failure_alert_sensor",
            dagster_instance=instance,
            dagster_run=result.dagster_run,
            dagster_event=result.get_run_failure_event(),
        )


def test_failure_alert_is_posted_without_secrets(
    failure_context: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("POLYGON_API_KEY", "sekrit-key-123")
    with Receiver(statuses=[503]) as receiver:  # the first attempt fails; the one retry delivers
        monkeypatch.setenv(ALERT_WEBHOOK_ENV, receiver.url)
        run_failure_alert_sensor(failure_context)
    assert len(receiver.bodies) == 2
    body = receiver.bodies[-1]
    assert set(body) == {"text", "blocks"} and body["blocks"][0]["type"] == "header"
    everything = json.dumps(body)
    run_id = failure_context.dagster_run.run_id
    for expected in ("failing_job", run_id, "2026-11-24", "fetch_quotes", "503 after 5 attempts"):
        assert expected in everything
    assert "sekrit" not in everything and "hunter2" not in everything
    assert "writer:***@db.internal" in everything


def test_failure_alert_logs_without_a_webhook(
    failure_context: Any, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.delenv(ALERT_WEBHOOK_ENV, raising=False)
    run_failure_alert_sensor(failure_context)  # must not raise


def test_failure_alert_survives_a_dead_webhook(failure_context: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ALERT_WEBHOOK_ENV, "http://127.0.0.1:9/hook")
    run_failure_alert_sensor(failure_context)  # logged, not raised


def test_scrub_text() -> None:
    text = scrub_text("see https://h/x?apiKey=abc&limit=1 and Bearer abc.def and api_token=zzz", environ={})
    assert "abc" not in text and "zzz" not in text and "limit=1" in text


# --- volatility bursts: the pure decision --------------------------------------------------------------

LIMITS = BurstThresholds(volatility=1.0, volume_ratio=3.0)


def bars(ticker: str, end: dt.datetime, closes: list[float], volume: float = 1000.0) -> pd.DataFrame:
    ts = [end - dt.timedelta(minutes=len(closes) - i) for i in range(len(closes))]
    return pd.DataFrame({"ticker": ticker, "ts": ts, "close": closes, "volume": volume})


def test_metrics_volatility_is_annualized_and_volume_is_relative() -> None:
    now = ny("2026-11-24 11:00")
    rng = np.random.default_rng(0)
    calm = list(100 * np.exp(np.cumsum(rng.normal(0, 0.0002, 15))))  # ~0.2 %/√min → ~0.0002·√98280 ≈ 0.06
    wild = list(100 * np.exp(np.cumsum(rng.normal(0, 0.01, 15))))  # ≈ 3.1 annualized
    frame = pd.concat([bars("CALM", now, calm), bars("WILD", now, wild, volume=1000.0)])
    session_volume = {"CALM": 90 * 1000.0, "WILD": 90 * 1000.0}  # the same rate all session: ratio 1
    metrics = {m.ticker: m for m in burst_metrics(frame, session_volume, now, ny("2026-11-24 09:30"), LIMITS)}
    assert metrics["CALM"].volatility is not None and metrics["CALM"].volatility < 0.2
    assert metrics["WILD"].volatility is not None and metrics["WILD"].volatility > 1.5
    assert metrics["CALM"].volume_ratio == pytest.approx(15 * 1000 / 15 / (90_000 / 90))
    assert not metrics["CALM"].bursting and metrics["WILD"].bursting
    # A volume spike alone bursts: 15 min at 5x the session's average rate.
    spike = burst_metrics(
        bars("CALM", now, calm, volume=5000.0),
        {"CALM": 90 * 1000.0 + 15 * 4000.0},
        now,
        ny("2026-11-24 09:30"),
        LIMITS,
    )[0]
    assert spike.volume_ratio == pytest.approx(3.0) and spike.bursting
    expected = float(np.std(np.diff(np.log(wild)), ddof=1) * math.sqrt(252 * 390))
    assert metrics["WILD"].volatility == pytest.approx(expected)


def test_decision_is_silent_on_closed_days_and_outside_the_session() -> None:
    burst = [TickerBurst("AAPL", 5.0, 10.0, True)]
    for moment, words in [
        ("2026-11-26 11:00", "not an NYSE session"),
        ("2026-11-28 11:00", "weekend"),
        ("2026-11-24 09:20", "outside the regular session"),
        ("2026-11-24 16:00", "outside the regular session"),
        ("2026-11-27 13:30", "outside the regular session"),
    ]:  # after the early close
        decision = decide_burst(ny(moment), burst, LIMITS)
        assert decision.skip_reason and words in decision.skip_reason and not decision.run_keys


def test_decision_requests_both_jobs_once_per_slot() -> None:
    burst = [TickerBurst("AAPL", 5.0, 10.0, True), TickerBurst("MSFT", 0.1, 1.0, False)]
    first = decide_burst(ny("2026-11-24 11:02"), burst, LIMITS)
    assert first.run_keys == {
        "quotes_job": "burst:quotes_job:2026-11-24:11:0",
        "trades_job": "burst:trades_job:2026-11-24:11:0",
    }
    assert (
        decide_burst(ny("2026-11-24 11:14"), burst, LIMITS).run_keys == first.run_keys
    )  # same slot: deduped
    keys = {
        decide_burst(ny(f"2026-11-24 11:{m:02d}"), burst, LIMITS).run_keys["quotes_job"] for m in range(60)
    }
    assert len(keys) == 4  # at most 4 extra runs per job per hour
    assert [m.ticker for m in first.bursting] == ["AAPL"]
    calm = decide_burst(ny("2026-11-24 11:02"), [TickerBurst("MSFT", 0.1, 1.0, False)], LIMITS)
    assert calm.skip_reason and "no burst" in calm.skip_reason


def test_thresholds_from_env() -> None:
    limits = BurstThresholds.from_env(
        {"TRADING_DATA_BURST_VOLATILITY": "0.8", "TRADING_DATA_BURST_VOLUME_RATIO": "2.5"}
    )
    assert (limits.volatility, limits.volume_ratio, limits.max_per_hour) == (0.8, 2.5, 4)
    with pytest.raises(ValueError, match="TRADING_DATA_BURST_VOLATILITY"):
        BurstThresholds.from_env({"TRADING_DATA_BURST_VOLATILITY": "lots"})


# --- volatility bursts: the sensor against the database ------------------------------------------------


def store_session(url: str, session: str, rows: dict[str, list[float]], now: dt.datetime) -> None:
    """Active tickers with a minute bar (volume 1000) every minute from the open to ``now``: flat at the
    first close, then ``closes`` for the last minutes."""
    opened = ny(f"{session} 09:30")
    minutes = int((now - opened).total_seconds() // 60)
    with psycopg.connect(url) as conn:
        for rank, (ticker, last) in enumerate(rows.items(), start=1):
            conn.execute(
                "INSERT INTO market.selected_tickers (session, ticker, rank, in_focus, is_active, is_fallback, "
                "selection_source, selected_at) VALUES (%s, %s, %s, true, true, false, 'selection', %s)",
                (dt.date.fromisoformat(session), ticker, rank, now),
            )
            closes = [last[0]] * (minutes - len(last)) + last
            for i, close in enumerate(closes):
                ts = now - dt.timedelta(minutes=len(closes) - i)
                conn.execute(
                    "INSERT INTO market.prices (ts, ticker, timespan, open, high, low, close, volume) "
                    "VALUES (%s, %s, 'minute', %s, %s, %s, %s, 1000)",
                    (ts, ticker, close, close * 1.001, close * 0.999, close),
                )
        # A day bar and an inactive ticker's wild bars must be ignored.
        conn.execute(
            "INSERT INTO market.selected_tickers (session, ticker, in_focus, is_active, is_fallback, "
            "selection_source, selected_at) VALUES (%s, 'IDLE', false, false, false, 'selection', %s)",
            (dt.date.fromisoformat(session), now),
        )
        for i in range(15):
            close = 10.0 * (1.5 if i % 2 else 1.0)
            conn.execute(
                "INSERT INTO market.prices (ts, ticker, timespan, open, high, low, close, volume) "
                "VALUES (%s, 'IDLE', 'minute', %s, %s, %s, %s, 1)",
                (now - dt.timedelta(minutes=15 - i), close, close, close, close),
            )


def evaluate(url: str, now: dt.datetime) -> Any:
    sensor = build_volatility_burst_sensor(clock=lambda: now, thresholds=LIMITS)
    context = dg.build_sensor_context(resources={"database": MarketDatabase(database_url=url)})
    return sensor(context)


def test_sensor_requests_extra_runs_on_a_burst(clean_market: str) -> None:
    now = ny("2026-11-24 11:02")
    wild = [100.0 * (1.02 if i % 2 else 1.0) for i in range(15)]  # ±2 % a minute
    store_session(
        clean_market, "2026-11-24", {"AAPL": wild, "MSFT": [300.0 + 0.01 * i for i in range(15)]}, now
    )
    result = evaluate(clean_market, now)
    assert isinstance(result, dg.SensorResult)
    requests = {r.job_name: r for r in result.run_requests or []}
    assert set(requests) == {"quotes_job", "trades_job"}
    assert requests["quotes_job"].run_key == "burst:quotes_job:2026-11-24:11:0"
    assert requests["quotes_job"].partition_key == "2026-11-24"
    assert "AAPL" in requests["trades_job"].tags["trading_data/burst"]
    assert "MSFT" not in requests["trades_job"].tags["trading_data/burst"]
    assert requests["quotes_job"].tags["feed"] == "quotes"


def test_sensor_skips_calm_markets_and_closed_days(clean_market: str) -> None:
    now = ny("2026-11-24 11:02")
    store_session(clean_market, "2026-11-24", {"MSFT": [300.0 + 0.01 * i for i in range(15)]}, now)
    calm = evaluate(clean_market, now)
    assert isinstance(calm, dg.SkipReason) and "no burst" in (calm.skip_message or "")
    holiday = evaluate(clean_market, ny("2026-11-26 11:02"))
    assert isinstance(holiday, dg.SkipReason) and "Thanksgiving" in (holiday.skip_message or "")


def test_exports() -> None:
    names = {s.name for s in SENSORS}
    assert names == {"run_failure_alert_sensor", "volatility_burst_sensor", "freshness_sensor"}
    assert all(s.default_status == dg.DefaultSensorStatus.RUNNING for s in SENSORS)
