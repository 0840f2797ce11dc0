"""``volatility_burst_sensor``: extra quotes and trades runs for today's session on a volatility or volume
burst (the rules: ``trading_data.monitoring.bursts``). Its jobs and their tags come from the schedule table."""

import datetime as dt
from collections.abc import Callable, Sequence
from typing import Any

import dagster as dg
import pandas as pd

from trading_data.calendar import NEW_YORK, session
from trading_data.clock import utc_now
from trading_data.db import queries
from trading_data.db.resources import MarketDatabase
from trading_data.monitoring.bursts import (
    BURST_JOBS,
    BurstThresholds,
    burst_metrics,
    decide_burst,
    session_gate,
)
from trading_data.orchestration.schedules import JOBS
from trading_data.redact import clip
from trading_data.scheduling import SPECS_BY_NAME, TAG_FEED, TAG_PRIORITY, TAG_SESSION

TAG_BURST = "trading_data/burst"
MAX_TAG_CHARS = 200


def load_burst_inputs(
    database: MarketDatabase, now: dt.datetime, window_minutes: int
) -> tuple[pd.DataFrame, dict[str, float], dt.datetime]:
    """Today's active tickers' minute bars in the window, their session volume so far, and the open."""
    sess = session(now.astimezone(NEW_YORK).date())
    window = (max(now - dt.timedelta(minutes=window_minutes), sess.open), now)
    bars, volume = database.run(queries.burst_window, sess.date, window, sess.open)
    return bars, volume, sess.open


def build_volatility_burst_sensor(
    clock: Callable[[], dt.datetime] = utc_now,
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
        "show a volatility or volume burst (at most N per hour, see trading_data.monitoring.bursts).",
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
            tags = {TAG_SESSION: decision.session, TAG_BURST: clip(summary, MAX_TAG_CHARS)}
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
