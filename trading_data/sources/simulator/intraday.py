"""One ticker's session minute by minute: the day plan, then quotes and trades one minute block at a time.

The plan (minute bars, trade and quote counts, sequence bases, spreads) is a bridge from the day's
open to its close that touches the day's high and low. Quotes and trades of a minute come from a
generator seeded by (seed, ticker, date, minute), so a request for one page never generates the day.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from trading_data import calendar
from trading_data.sources.simulator.units import NS_PER_MINUTE, stable_rng, to_ns
from trading_data.sources.simulator.universe import TickerProfile

# Quote sizes are in shares from this date, in round lots (100 shares) before it.
QUOTE_SIZES_IN_SHARES_FROM = dt.date(2025, 11, 3)
QUOTE_EXCHANGES = np.array([1, 2, 3, 7, 8, 9, 10, 11, 12, 15, 17, 19, 20, 21], dtype=np.int64)
TRADE_EXCHANGES = np.array([4, 4, 4, 1, 2, 3, 7, 8, 10, 11, 12, 15, 17, 19, 21], dtype=np.int64)


@dataclass(frozen=True)
class DayPlan:
    """Everything per (ticker, session) that minute blocks need: bars, counts, sequence bases."""

    ticker: str
    date: dt.date
    open_ns: int
    minutes: int
    present: np.ndarray  # bool per minute: a bar exists
    o: np.ndarray
    h: np.ndarray
    low: np.ndarray
    c: np.ndarray
    v: np.ndarray
    vw: np.ndarray
    n: np.ndarray  # trades per minute
    q: np.ndarray  # quotes per minute
    seq_base: np.ndarray  # first sequence number per minute
    spread: np.ndarray  # quoted spread per minute, dollars


@dataclass(frozen=True)
class QuoteBlock:
    """Quotes of one minute, ascending by time."""

    sip_ns: np.ndarray
    participant_ns: np.ndarray
    sequence: np.ndarray
    bid: np.ndarray
    ask: np.ndarray
    bid_size: np.ndarray
    ask_size: np.ndarray
    bid_exchange: np.ndarray
    ask_exchange: np.ndarray

    def __len__(self) -> int:
        return len(self.sip_ns)


@dataclass(frozen=True)
class TradeBlock:
    """Trades of one minute, ascending by time."""

    sip_ns: np.ndarray
    participant_ns: np.ndarray
    sequence: np.ndarray
    price: np.ndarray
    size: np.ndarray
    exchange: np.ndarray
    condition_code: np.ndarray  # 0 none, 1 odd lot [37], 2 ISO [14, 41]
    trade_id: np.ndarray

    def __len__(self) -> int:
        return len(self.sip_ns)


def _u_shape(minutes: int) -> np.ndarray:
    """Relative intraday activity: high at the open and the close, low at midday."""
    x = (np.arange(minutes) + 0.5) / minutes
    span = minutes / 390.0
    return 0.55 + 2.4 * np.exp(-x / (0.05 / span)) + 1.4 * np.exp(-(1.0 - x) / (0.045 / span))


def build_day_plan(
    seed: int, prof: TickerProfile, day: dt.date, daily: Mapping[str, float], quotes_per_minute: float | None
) -> DayPlan:
    """The minute plan of one ticker and session from its full-session daily bar ``daily`` (o h l c v n)."""
    ticker = prof.ticker
    sess = calendar.session(day)
    o, h, low, c = (float(daily[k]) for k in ("o", "h", "l", "c"))
    volume, trades = float(daily["v"]), float(daily["n"])
    m = sess.minutes
    rng = stable_rng(seed, ticker, day.isoformat(), "plan")
    shape = _u_shape(m)
    weights = shape * np.exp(rng.normal(0, 0.35, m))
    weights /= weights.sum()
    # Bridge in log space from open to close, excursions scaled to touch the day's high/low.
    steps = rng.normal(0, 1, m) * np.sqrt(shape)
    walk = np.cumsum(steps)
    bridge = walk - walk[-1] * (np.arange(1, m + 1) / m)
    line = math.log(o) + (math.log(c) - math.log(o)) * np.arange(1, m + 1) / m
    up, down = np.maximum(bridge, 0), np.minimum(bridge, 0)
    room_up = math.log(h) - max(math.log(o), math.log(c))
    room_down = min(math.log(o), math.log(c)) - math.log(low)
    a = room_up / up.max() if up.max() > 0 else 0.0
    b = room_down / -down.min() if down.min() < 0 else 0.0
    closes = np.round(np.exp(line + a * up + b * down), 2)
    closes[-1] = c
    opens = np.concatenate([[o], closes[:-1]])
    wiggle = np.abs(rng.normal(0, 0.15, (2, m))) * prof.daily_volatility / math.sqrt(m) * 3
    highs = np.minimum(np.round(np.maximum(opens, closes) * (1 + wiggle[0]), 2), h)
    lows = np.maximum(np.round(np.minimum(opens, closes) * (1 - wiggle[1]), 2), low)
    n_per_min = rng.poisson(trades * weights)
    n_per_min[0] = max(n_per_min[0], 1)
    n_per_min[-1] = max(n_per_min[-1], 1)
    present = n_per_min > 0
    highs[int(np.argmax(np.where(present, closes, -np.inf)))] = h
    lows[int(np.argmin(np.where(present, closes, np.inf)))] = low
    vol_w = np.where(present, weights, 0.0)
    vols = np.floor(volume * vol_w / vol_w.sum())
    vols = np.maximum(vols, n_per_min).astype(float)
    vols[int(np.argmax(vols))] += max(volume - vols.sum(), 0.0)
    vwaps = np.round((highs + lows + 2 * closes) / 4, 4)
    qpm = quotes_per_minute
    quotes_day = qpm * m if qpm is not None else float(np.clip(volume / 25.0, 200.0, 1.5e6))
    q_per_min = np.maximum(rng.poisson(quotes_day * weights), 1)
    seq_base = 1000 + np.concatenate([[0], np.cumsum(q_per_min + n_per_min)[:-1]])
    bps = 1.0 + 300.0 / math.sqrt(max(volume, 1.0) / 1000.0)
    widen = 1.0 + 3.0 * np.exp(-np.arange(m) / 5.0)
    spreads = np.maximum(np.round(closes * bps / 1e4 * widen, 2), 0.01)
    return DayPlan(
        ticker,
        day,
        to_ns(sess.open),
        m,
        present,
        opens,
        highs,
        lows,
        closes,
        vols,
        vwaps,
        n_per_min,
        q_per_min,
        seq_base,
        spreads,
    )


def quote_block(seed: int, plan: DayPlan, minute: int) -> QuoteBlock:
    """All quotes of one minute (not clock-truncated), generated from a (seed, ticker, date, minute) rng."""
    day = plan.date
    rng = stable_rng(seed, plan.ticker, day.isoformat(), minute, "quotes")
    count = int(plan.q[minute])
    start = plan.open_ns + minute * NS_PER_MINUTE
    offsets = np.sort(rng.random(count)) * (NS_PER_MINUTE - 1000)
    offsets[0] = min(offsets[0], 5_000_000.0)
    sip = start + (offsets.astype(np.int64) // 100) * 100
    participant = sip - rng.integers(80_000, 600_000, count)
    frac = offsets / NS_PER_MINUTE
    o, c = plan.o[minute], plan.c[minute]
    noise = np.cumsum(rng.normal(0, 1, count)) / math.sqrt(max(count, 1))
    noise -= frac * noise[-1]
    mid = o + (c - o) * frac + noise * max(plan.h[minute] - plan.low[minute], 0.01) * 0.25
    mid = np.clip(mid, plan.low[minute], plan.h[minute])
    spread = plan.spread[minute] * np.where(rng.random(count) < 0.15, 2.0, 1.0)
    bid = np.maximum(np.round(mid - spread / 2, 2), 0.01)
    ask = np.round(bid + np.maximum(np.round(spread, 2), 0.01), 2)
    lots = rng.geometric(0.35, (2, count))
    sizes = lots * 100 + np.where(rng.random((2, count)) < 0.1, rng.integers(1, 99, (2, count)), 0)
    if day < QUOTE_SIZES_IN_SHARES_FROM:
        sizes = np.maximum(sizes // 100, 1)
    exchanges = QUOTE_EXCHANGES[rng.integers(0, len(QUOTE_EXCHANGES), (2, count))]
    seq = plan.seq_base[minute] + np.arange(count, dtype=np.int64)
    return QuoteBlock(sip, participant, seq, bid, ask, sizes[0], sizes[1], exchanges[0], exchanges[1])


def trade_block(seed: int, plan: DayPlan, minute: int, quotes: QuoteBlock | None = None) -> TradeBlock:
    """All trades of one minute, priced inside the prevailing quote of the same minute's ``quotes``."""
    count = int(plan.n[minute])
    if count == 0:
        z = np.array([], dtype=np.int64)
        return TradeBlock(z, z, z, z.astype(float), z.astype(float), z, z, z)
    quotes = quote_block(seed, plan, minute) if quotes is None else quotes
    rng = stable_rng(seed, plan.ticker, plan.date.isoformat(), minute, "trades")
    start = plan.open_ns + minute * NS_PER_MINUTE
    offsets = np.sort(rng.random(count)) * (NS_PER_MINUTE - 1000)
    sip = start + (offsets.astype(np.int64) // 100) * 100
    participant = sip - rng.integers(50_000, 400_000, count)
    prevailing = np.maximum(np.searchsorted(quotes.sip_ns, sip, side="right") - 1, 0)
    bid, ask = quotes.bid[prevailing], quotes.ask[prevailing]
    side = rng.random(count)
    price = np.where(side < 0.45, bid, np.where(side < 0.9, ask, np.round((bid + ask) / 2, 4)))
    volume = int(plan.v[minute])
    weights = rng.pareto(1.6, count) + 0.2
    sizes = rng.multinomial(max(volume - count, 0), weights / weights.sum()) + 1
    exchange = TRADE_EXCHANGES[rng.integers(0, len(TRADE_EXCHANGES), count)]
    condition = np.where(sizes < 100, 1, np.where(rng.random(count) < 0.12, 2, 0))
    seq = plan.seq_base[minute] + plan.q[minute] + np.arange(count, dtype=np.int64)
    trade_id = rng.integers(1, 10**14, count)
    return TradeBlock(sip, participant, seq, price, sizes.astype(float), exchange, condition, trade_id)
