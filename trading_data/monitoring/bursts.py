"""Volatility bursts: when today's active tickers move enough to warrant extra collection runs.

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
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from trading_data.calendar import NEW_YORK, closed_reason, is_session, session
from trading_data.settings.platform import BURST_MAX_PER_HOUR, BURST_VOLATILITY, BURST_VOLUME_RATIO

MINUTES_PER_YEAR = 252 * 390

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
