"""Operational sensors: failure alerts to a chat webhook, and extra collection runs on volatility bursts.

``run_failure_alert_sensor`` (a run-failure sensor, on by default) posts a Slack-compatible message
(``{"text": …, "blocks": […]}``; Mattermost, Rocket.Chat and Teams' Slack-compatible hooks accept it too)
to ``TRADING_DATA_ALERT_WEBHOOK`` when set, with one retry; otherwise it logs the same text. The message
names the job, run id, partition, failed steps and their errors; URLs in it lose credential query
parameters and passwords, and the values of the vendor key variables are replaced by ``***``.

``volatility_burst_sensor`` checks every minute during the regular session whether any of today's
active tickers is bursting, from the last 15 minutes of stored minute bars:

- realized volatility = standard deviation of the 1-minute log returns of ``close`` in the window,
  **annualized** with sqrt(252 × 390) (so 0.30 reads as 30 %/year; a calm large cap is ~0.15-0.40);
- volume ratio = the window's volume per minute ÷ the session's volume per minute since the open.

A ticker bursts when its volatility ≥ ``TRADING_DATA_BURST_VOLATILITY`` (default 1.0) **or** its volume
ratio ≥ ``TRADING_DATA_BURST_VOLUME_RATIO`` (default 3.0). On a burst the sensor requests an extra run of
``quotes_job`` and ``trades_job`` for today's session partition, with run key
``burst:<job>:<session>:<hour>:<slot>`` where ``slot`` is the minute // (60 / max per hour): Dagster
drops a run request whose run key this sensor already used, so there are at most
``TRADING_DATA_BURST_MAX_PER_HOUR`` (default 4) extra runs per job per hour. The feeds are incremental
from their watermarks, so an extra run costs only the rows that are new.
"""

import datetime as dt
import logging
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import dagster as dg
import httpx
import numpy as np
import pandas as pd
from psycopg import sql

from trading_data.calendar import NEW_YORK, closed_reason, is_session, session
from trading_data.db.resources import MarketDatabase
from trading_data.defs.schedules import JOBS
from trading_data.redact import redact
from trading_data.scheduling import SPECS_BY_NAME, TAG_FEED, TAG_PRIORITY, TAG_SESSION
from trading_data.settings import secret_values
from trading_data.settings.platform import (
    ALERT_WEBHOOK,
    BURST_MAX_PER_HOUR,
    BURST_VOLATILITY,
    BURST_VOLUME_RATIO,
)

log = logging.getLogger(__name__)

ALERT_WEBHOOK_ENV = ALERT_WEBHOOK.env_var
TAG_BURST = "trading_data/burst"
MINUTES_PER_YEAR = 252 * 390
MAX_ERROR_CHARS = 1500

# --- (a) failure alerts --------------------------------------------------------------------------------

# Shorter values are not scrubbed: replacing a one-letter "secret" everywhere would garble the alert.
MIN_SCRUBBED_SECRET_CHARS = 6


def scrub_text(text: str, environ: Mapping[str, str] | None = None) -> str:
    """``text`` safe to post: URLs without credentials or passwords, no bearer tokens, no key values
    (in any letter case)."""
    secrets = secret_values(environ)  # the keys, tokens and webhook set in the environment
    return redact(text, [s for s in secrets if len(s) >= MIN_SCRUBBED_SECRET_CHARS])


def _clip(text: str, limit: int = MAX_ERROR_CHARS) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


@dataclass(frozen=True)
class FailureSummary:
    job: str
    run_id: str
    partition: str | None
    error: str
    failed_steps: list[tuple[str, str]] = field(default_factory=list)
    """(step key, error message) per failed step."""


def _root_cause(error: Any) -> str:
    """``Class: message`` of the innermost cause (Dagster wraps user errors in a step-execution error)."""
    while getattr(error, "cause", None) is not None:
        error = error.cause
    return f"{error.cls_name}: {error.message.strip()}" if error.cls_name else error.message.strip()


def failure_summary(context: dg.RunFailureSensorContext) -> FailureSummary:
    run = context.dagster_run
    steps: list[tuple[str, str]] = []
    for event in context.get_step_failure_events():
        data = event.step_failure_data
        # The error's message says what went wrong; stack traces stay in Dagster.
        message = _root_cause(data.error) if data and data.error else (event.message or "")
        steps.append((event.step_key or "?", message))
    error = context.failure_event.message or "run failed"
    job_failure = context.failure_event.event_specific_data
    err_info = getattr(job_failure, "error", None)
    if err_info is not None:
        error = f"{error}: {_root_cause(err_info)}"
    return FailureSummary(
        job=run.job_name,
        run_id=run.run_id,
        partition=run.tags.get("dagster/partition"),
        error=error,
        failed_steps=steps,
    )


def alert_payload(summary: FailureSummary, environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The Slack-compatible message for a failed run, scrubbed of secrets."""
    partition = summary.partition or "—"
    title = f":red_circle: Dagster run failed: {summary.job} (partition {partition})"
    error = _clip(scrub_text(summary.error, environ))
    lines = [
        f"*Job:* `{summary.job}`",
        f"*Run:* `{summary.run_id}`",
        f"*Partition:* `{partition}`",
        f"*Error:* {error}",
    ]
    steps_text = "\n".join(
        f"• `{key}`: {_clip(scrub_text(msg, environ), 500)}" for key, msg in summary.failed_steps[:10]
    )
    if len(summary.failed_steps) > 10:
        steps_text += f"\n… and {len(summary.failed_steps) - 10} more failed steps"
    blocks: list[dict[str, Any]] = [
        {
            "type": "header",
            "text": {"type": "plain_text", "text": _clip(title.replace(":red_circle: ", ""), 150)},
        },
        {"type": "section", "text": {"type": "mrkdwn", "text": "\n".join(lines)}},
    ]
    if steps_text:
        blocks.append(
            {"type": "section", "text": {"type": "mrkdwn", "text": "*Failed steps:*\n" + steps_text}}
        )
    text = (
        f"{title}. Run {summary.run_id}. "
        f"Failed steps: {', '.join(k for k, _ in summary.failed_steps) or 'none'}. Error: {error}"
    )
    return {"text": text, "blocks": blocks}


def post_alert(
    url: str,
    payload: Mapping[str, Any],
    *,
    timeout: float = 10.0,
    attempts: int = 2,
    client: httpx.Client | None = None,
) -> bool:
    """POST ``payload`` as JSON; one retry on a transport error, 429 or 5xx. True when delivered.
    Never raises (a broken webhook must not break the sensor); failures are logged without the URL."""
    owns = client is None
    client = client or httpx.Client(timeout=timeout)
    try:
        for attempt in range(1, attempts + 1):
            try:
                response = client.post(url, json=payload, timeout=timeout)
            except httpx.HTTPError as exc:
                log.warning("alert webhook attempt %d/%d failed: %s", attempt, attempts, type(exc).__name__)
                continue
            if response.status_code < 300:
                return True
            log.warning(
                "alert webhook attempt %d/%d answered HTTP %d", attempt, attempts, response.status_code
            )
            if response.status_code != 429 and response.status_code < 500:
                return False
        return False
    finally:
        if owns:
            client.close()


@dg.run_failure_sensor(
    name="run_failure_alert_sensor",
    default_status=dg.DefaultSensorStatus.RUNNING,
    description=f"Posts failed runs to the chat webhook in {ALERT_WEBHOOK_ENV} (logs them when unset).",
)
def run_failure_alert_sensor(context: dg.RunFailureSensorContext) -> None:
    payload = alert_payload(failure_summary(context))
    url = ALERT_WEBHOOK.get()
    if not url:
        context.log.warning(f"{ALERT_WEBHOOK_ENV} is not set; failure alert: {payload['text']}")
        return
    if post_alert(url, payload):
        context.log.info(f"failure alert posted for run {context.dagster_run.run_id}")
    else:
        context.log.error(f"failure alert could not be posted (see warnings); alert: {payload['text']}")


# --- (b) adaptive scheduling on volatility bursts ------------------------------------------------------

BURST_JOBS: tuple[str, ...] = ("quotes_job", "trades_job")


@dataclass(frozen=True)
class BurstThresholds:
    volatility: float = BURST_VOLATILITY.default
    """Annualized realized volatility of 1-minute log returns in the window."""
    volume_ratio: float = BURST_VOLUME_RATIO.default
    """Window volume per minute ÷ session volume per minute so far."""
    window_minutes: int = 15
    max_per_hour: int = BURST_MAX_PER_HOUR.default
    min_returns: int = 5
    """Fewer returns than this in the window: no volatility estimate for the ticker."""

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> "BurstThresholds":
        """The thresholds set in the environment (SettingsError naming a bad variable)."""
        return cls(
            volatility=BURST_VOLATILITY.get(environ),
            volume_ratio=BURST_VOLUME_RATIO.get(environ),
            max_per_hour=BURST_MAX_PER_HOUR.get(environ),
        )


@dataclass(frozen=True)
class TickerBurst:
    ticker: str
    volatility: float | None
    volume_ratio: float | None
    bursting: bool


@dataclass(frozen=True)
class BurstDecision:
    skip_reason: str | None = None
    session: str | None = None
    run_keys: dict[str, str] = field(default_factory=dict)
    """job name -> run key of the extra run to request."""
    bursting: list[TickerBurst] = field(default_factory=list)


def burst_metrics(
    window_bars: pd.DataFrame,
    session_volume: Mapping[str, float],
    now: dt.datetime,
    session_open: dt.datetime,
    thresholds: BurstThresholds,
) -> list[TickerBurst]:
    """Per ticker: annualized realized volatility and volume ratio (see the module docstring).

    ``window_bars``: minute bars (ticker, ts, close, volume) from the last ``window_minutes``;
    ``session_volume``: ticker -> volume from the open to ``now``.
    """
    elapsed = max((now - session_open).total_seconds() / 60, 1.0)
    window = min(float(thresholds.window_minutes), elapsed)
    out: list[TickerBurst] = []
    if window_bars.empty:
        return out
    for ticker, bars in window_bars.sort_values("ts").groupby("ticker", sort=True):
        closes = bars["close"].astype(float).to_numpy()
        returns = np.diff(np.log(closes)) if len(closes) > 1 else np.array([])
        vol = (
            float(np.std(returns, ddof=1) * math.sqrt(MINUTES_PER_YEAR))
            if len(returns) >= thresholds.min_returns
            else None
        )
        total = float(session_volume.get(str(ticker), 0.0))
        ratio = ((float(bars["volume"].sum()) / window) / (total / elapsed)) if total > 0 else None
        bursting = (vol is not None and vol >= thresholds.volatility) or (
            ratio is not None and ratio >= thresholds.volume_ratio
        )
        out.append(TickerBurst(str(ticker), vol, ratio, bursting))
    return out


def burst_slot(now: dt.datetime, max_per_hour: int) -> tuple[int, int]:
    """(hour, slot) of ``now`` in New York: at most ``max_per_hour`` slots per hour."""
    ny = now.astimezone(NEW_YORK)
    return ny.hour, ny.minute // (60 // max_per_hour)


def session_gate(now: dt.datetime) -> str | None:
    """Why no burst runs are requested at ``now`` (a non-session, outside the regular session), or None."""
    ny = now.astimezone(NEW_YORK)
    day = ny.date()
    if not is_session(day):
        return f"{day.isoformat()} is not an NYSE session: {closed_reason(day)}"
    sess = session(day)
    if not sess.open <= ny < sess.close:
        return (
            f"outside the regular session ({sess.open:%H:%M}-{sess.close:%H:%M} ET on {sess.key}; "
            f"now {ny:%H:%M} ET)"
        )
    return None


def decide_burst(
    now: dt.datetime,
    metrics: Sequence[TickerBurst],
    thresholds: BurstThresholds,
    jobs: Sequence[str] = BURST_JOBS,
) -> BurstDecision:
    """Request an extra run of every job in ``jobs`` when any ticker bursts, once per (hour, slot)."""
    gate = session_gate(now)
    if gate:
        return BurstDecision(skip_reason=gate)
    key = now.astimezone(NEW_YORK).date().isoformat()
    bursting = [m for m in metrics if m.bursting]
    if not metrics:
        return BurstDecision(
            skip_reason=f"no minute bars for active tickers in the last {thresholds.window_minutes} minutes",
            session=key,
        )
    if not bursting:
        top = max(metrics, key=lambda m: m.volatility or 0.0)
        return BurstDecision(
            skip_reason=(
                f"no burst among {len(metrics)} tickers (highest volatility {top.ticker} "
                f"{(top.volatility or 0):.2f} < {thresholds.volatility}; volume ratio threshold "
                f"{thresholds.volume_ratio})"
            ),
            session=key,
        )
    hour, slot = burst_slot(now, thresholds.max_per_hour)
    return BurstDecision(
        session=key, bursting=bursting, run_keys={job: f"burst:{job}:{key}:{hour:02d}:{slot}" for job in jobs}
    )


def load_burst_inputs(
    database: MarketDatabase, now: dt.datetime, window_minutes: int
) -> tuple[pd.DataFrame, dict[str, float], dt.datetime]:
    """Today's active tickers' minute bars in the window, their session volume so far, and the open."""
    ny = now.astimezone(NEW_YORK)
    sess = session(ny.date())
    schema = sql.Identifier(database.schema_name)
    window_start = max(now - dt.timedelta(minutes=window_minutes), sess.open)
    active = sql.SQL("SELECT ticker FROM {}.selected_tickers WHERE session = %s AND is_active").format(schema)
    bars = database.read_sql(
        sql.SQL(
            "SELECT ticker, ts, close, volume FROM {}.prices WHERE timespan = 'minute' AND ts >= %s "
            "AND ts < %s AND ticker IN ("
        ).format(schema)
        + active
        + sql.SQL(") ORDER BY ticker, ts"),
        (window_start, now, sess.date),
    )
    totals = database.read_sql(
        sql.SQL(
            "SELECT ticker, sum(volume) AS volume FROM {}.prices WHERE timespan = 'minute' AND ts >= %s "
            "AND ts < %s AND ticker IN ("
        ).format(schema)
        + active
        + sql.SQL(") GROUP BY ticker"),
        (sess.open, now, sess.date),
    )
    volume = {
        str(t): float(v) for t, v in zip(totals.get("ticker", []), totals.get("volume", []), strict=True)
    }
    return bars, volume, sess.open


def _utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def build_volatility_burst_sensor(
    clock: Callable[[], dt.datetime] = _utc_now,
    jobs: Sequence[Any] | None = None,
    thresholds: BurstThresholds | None = None,
    name: str = "volatility_burst_sensor",
) -> dg.SensorDefinition:
    """The burst sensor. ``jobs`` defaults to ``quotes_job`` and ``trades_job`` from the schedule table;
    ``thresholds`` None reads the environment at each evaluation."""
    by_name = {job.name: job for job in JOBS}
    targets = list(jobs) if jobs is not None else [by_name[j] for j in BURST_JOBS]
    job_names = [job.name for job in targets]
    feeds = {spec.job_name: spec for spec in SPECS_BY_NAME.values()}

    @dg.sensor(
        name=name,
        jobs=targets,
        minimum_interval_seconds=60,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="Extra quotes/trades runs for today's session when active tickers' minute bars "
        "show a volatility or volume burst (at most N per hour, see trading_data.ops.sensors).",
    )
    def _burst(
        context: dg.SensorEvaluationContext, database: MarketDatabase
    ) -> dg.SensorResult | dg.SkipReason:
        now = clock()
        gate = session_gate(now)
        if gate:
            return dg.SkipReason(gate)
        limits = thresholds or BurstThresholds.from_env()
        bars, volume, opened = load_burst_inputs(database, now, limits.window_minutes)
        metrics = burst_metrics(bars, volume, now, opened, limits)
        decision = decide_burst(now, metrics, limits, job_names)
        if decision.skip_reason:
            return dg.SkipReason(decision.skip_reason)
        assert decision.session is not None
        summary = ", ".join(
            f"{m.ticker} vol {m.volatility:.2f}" if m.volatility is not None else m.ticker
            for m in decision.bursting[:10]
        )
        requests = []
        for job_name, run_key in decision.run_keys.items():
            spec = feeds.get(job_name)
            tags = {TAG_SESSION: decision.session, TAG_BURST: _clip(summary, 200)}
            if spec is not None:
                tags[TAG_FEED] = spec.feed
                if spec.priority is not None:
                    tags[TAG_PRIORITY] = str(spec.priority)
            # The feed jobs also hold the selection assets (for catch-up): select only the feed.
            targets = [dg.AssetKey(t) for t in spec.targets] if spec is not None else None
            requests.append(
                dg.RunRequest(
                    run_key=run_key,
                    job_name=job_name,
                    partition_key=decision.session,
                    tags=tags,
                    asset_selection=targets,
                )
            )
        context.log.info(f"burst: {summary}; requesting {sorted(decision.run_keys.values())}")
        return dg.SensorResult(run_requests=requests)

    return _burst


volatility_burst_sensor = build_volatility_burst_sensor()

SENSORS: list[dg.SensorDefinition] = [run_failure_alert_sensor, volatility_burst_sensor]
