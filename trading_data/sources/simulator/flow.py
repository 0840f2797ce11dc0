"""Unusual Whales flow alerts of the simulated market: unusual option prints on each ticker's chain."""

from __future__ import annotations

import datetime as dt
import math
import uuid
from typing import Any

import numpy as np

from trading_data import calendar
from trading_data.sources.simulator.intraday import DayPlan
from trading_data.sources.simulator.options import build_chain
from trading_data.sources.simulator.pricing import black_scholes
from trading_data.sources.simulator.units import (
    NS_PER_MS,
    decimal_string,
    session_close_ns,
    stable_rng,
    to_ns,
)
from trading_data.sources.simulator.universe import TickerProfile

ALERT_RULES = [
    "RepeatedHits",
    "RepeatedHitsAscendingFill",
    "RepeatedHitsDescendingFill",
    "FloorTradeLargeCap",
    "FloorTradeMidCap",
    "SweepsFollowedByFloor",
    "OtmEarningsFloor",
    "LowHistoricVolumeFloor",
]


def session_alerts(seed: int, prof: TickerProfile, plan: DayPlan) -> list[dict[str, Any]]:
    """Every flow alert of one ticker's session, newest first; ``_created_ms`` says when each appears."""
    ticker, day = prof.ticker, plan.date
    sess = calendar.session(day)
    rng = stable_rng(seed, ticker, day.isoformat(), "alerts")
    rate = min(0.2 + 6.0 * math.sqrt(prof.avg_volume / 2e7), 40.0)
    count = int(rng.poisson(rate))
    if count == 0:
        return []
    open_ms, close_ms = to_ns(sess.open) // NS_PER_MS, to_ns(sess.close) // NS_PER_MS
    start_ms = np.sort(rng.integers(open_ms + 60_000, close_ms - 1_000, count))
    first_chain = build_chain(seed, prof, day, float(plan.o[0]), to_ns(sess.open))
    near = np.exp(-2.0 * (np.log(first_chain.strike / first_chain.spot) / prof.daily_volatility / 8) ** 2)
    near = np.where(first_chain.price >= 0.10, near, 0.0) + 1e-12
    picks = rng.choice(len(first_chain), size=count, p=near / near.sum())
    alerts: list[dict[str, Any]] = []
    for j in range(count):
        k = int(picks[j])
        minute = min(int((start_ms[j] - open_ms) // 60_000), plan.minutes - 1)
        spot = float(plan.c[minute])
        years = max((session_close_ns(first_chain.expiry[k]) / 1e6 - start_ms[j]) / 3.1536e10, 1e-4)
        value = black_scholes(
            spot,
            np.array([first_chain.strike[k]]),
            np.array([years]),
            np.array([first_chain.iv[k]]),
            np.array([first_chain.is_call[k]]),
        )
        price = max(round(float(value["price"][0]), 2), 0.01)
        size = int(min(max(10, round(np.exp(rng.normal(math.log(60_000), 0.9)) / (price * 100))), 20_000))
        trade_count = int(rng.integers(1, 60))
        premium = round(price * size * 100)
        ask_share = float(rng.beta(3, 2))
        duration = int(rng.integers(50, 120_000))
        end_ms = int(start_ms[j]) + duration
        created_ms = end_ms + int(rng.integers(200, 4000))
        oi = int(first_chain.open_interest[k])
        volume = int(first_chain.volume[k]) + size
        created = dt.datetime.fromtimestamp(created_ms / 1000, dt.UTC)
        alert: dict[str, Any] = {
            "id": str(uuid.UUID(bytes=rng.bytes(16), version=4)),
            "alert_rule": ALERT_RULES[int(rng.integers(0, len(ALERT_RULES)))],
            "all_opening_trades": bool(rng.random() < 0.1),
            "created_at": created.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            "expiry": first_chain.expiry[k].isoformat(),
            "expiry_count": 1,
            "has_floor": bool(rng.random() < 0.15),
            "has_multileg": bool(rng.random() < 0.1),
            "has_singleleg": True,
            "has_sweep": bool(rng.random() < 0.4),
            "issue_type": "ETF" if prof.type == "ETF" else "Common Stock",
            "open_interest": oi,
            "option_chain": first_chain.symbols[k],
            "price": decimal_string(price, 2),
            "strike": decimal_string(float(first_chain.strike[k])),
            "ticker": ticker,
            "total_ask_side_prem": decimal_string(round(premium * ask_share)),
            "total_bid_side_prem": decimal_string(round(premium * (1 - ask_share) * 0.8)),
            "total_premium": decimal_string(premium),
            "total_size": size,
            "trade_count": trade_count,
            "type": "call" if first_chain.is_call[k] else "put",
            "underlying_price": decimal_string(spot, 2),
            "volume": volume,
            "volume_oi_ratio": decimal_string(volume / oi if oi else 0.0, 14),
            "start_time": int(start_ms[j]),
            "end_time": end_ms,
            "_created_ms": created_ms,
        }
        alerts.append(alert)
    alerts.sort(key=lambda a: (-int(a["_created_ms"]), str(a["id"])))
    return alerts
