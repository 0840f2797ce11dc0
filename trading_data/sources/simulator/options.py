"""Option chains of the simulated market: weekly and monthly expiries, strikes around the spot, Black-Scholes."""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass

import numpy as np

from trading_data import calendar
from trading_data.sources.simulator.pricing import black_scholes
from trading_data.sources.simulator.units import session_close_ns, stable_rng
from trading_data.sources.simulator.universe import TickerProfile


@dataclass(frozen=True)
class OptionChain:
    """All contracts of one underlying as of one moment, with Black-Scholes values."""

    underlying: str
    as_of: dt.date
    spot: float
    symbols: list[str]  # OSI without "O:"
    expiry: list[dt.date]
    strike: np.ndarray
    is_call: np.ndarray
    iv: np.ndarray
    price: np.ndarray
    delta: np.ndarray
    gamma: np.ndarray
    theta: np.ndarray
    vega: np.ndarray
    open_interest: np.ndarray
    prev_open_interest: np.ndarray
    volume: np.ndarray

    def __len__(self) -> int:
        return len(self.symbols)


def option_symbol(underlying: str, expiry: dt.date, is_call: bool, strike: float) -> str:
    """OSI symbol without Polygon's ``O:`` prefix, e.g. ``AAPL230616C00150000``."""
    return f"{underlying}{expiry:%y%m%d}{'C' if is_call else 'P'}{round(strike * 1000):08d}"


def expiries(day: dt.date) -> list[dt.date]:
    """Four weekly expiries then two monthly (third-Friday) ones, moved to a session if a holiday."""
    out: list[dt.date] = []
    friday = day + dt.timedelta(days=(4 - day.weekday()) % 7)
    while len(out) < 4:
        out.append(friday)
        friday += dt.timedelta(days=7)
    month = dt.date(friday.year, friday.month, 1)
    while len(out) < 6:
        third = month + dt.timedelta(days=(4 - month.weekday()) % 7 + 14)
        if third > out[-1]:
            out.append(third)
        month = dt.date(month.year + (month.month // 12), month.month % 12 + 1, 1)
    moved = []
    for expiry in out:
        while not calendar.is_session(expiry):
            expiry -= dt.timedelta(days=1)
        moved.append(expiry)
    return sorted(set(moved))


def build_chain(seed: int, prof: TickerProfile, day: dt.date, spot: float, at_ns: int) -> OptionChain:
    """The chain (6 expiries x 21 strikes x call/put) of ``prof`` on ``day`` at ``spot``, as of ``at_ns``."""
    ticker = prof.ticker
    step = next(s for limit, s in ((5, 0.5), (25, 1.0), (100, 2.5), (250, 5.0), (1e9, 10.0)) if spot < limit)
    centre = round(spot / step) * step
    strikes = np.array([centre + k * step for k in range(-10, 11) if centre + k * step > 0])
    expiry_dates = expiries(day)
    rows = [(e, k, call) for e in expiry_dates for k in strikes for call in (True, False)]
    expiry = [r[0] for r in rows]
    strike = np.array([r[1] for r in rows], dtype=float)
    is_call = np.array([r[2] for r in rows])
    close_ns = np.array([session_close_ns(e) for e in expiry], dtype=float)
    years = np.maximum(close_ns - at_ns, 3.6e12) / (365.0 * 86_400e9)
    rng = stable_rng(seed, ticker, day.isoformat(), "chain")
    moneyness = np.log(strike / spot) / (prof.volatility * np.sqrt(np.maximum(years, 30 / 365)))
    iv = (
        prof.volatility
        * (1 + 0.08 * moneyness**2 - 0.04 * moneyness)
        * np.exp(rng.normal(0, 0.02, len(rows)))
    )
    iv = np.clip(iv, 0.05, 4.0)
    bs = black_scholes(spot, strike, years, iv, is_call)
    liquidity = math.sqrt(prof.avg_volume / 1e4)
    base_oi = liquidity * 40 * np.exp(-0.5 * moneyness**2) * np.exp(rng.normal(0, 0.6, len(rows)))
    oi = np.round(base_oi).astype(np.int64)
    prev_oi = np.maximum(np.round(oi * np.exp(rng.normal(0, 0.1, len(rows)))), 0).astype(np.int64)
    volume = np.round(base_oi * rng.gamma(0.8, 0.4, len(rows))).astype(np.int64)
    codes = {e: f"{ticker}{e:%y%m%d}" for e in expiry_dates}
    symbols = [f"{codes[e]}{'C' if cp else 'P'}{round(k * 1000):08d}" for e, k, cp in rows]
    return OptionChain(
        ticker,
        day,
        spot,
        symbols,
        expiry,
        strike,
        is_call,
        iv,
        bs["price"],
        bs["delta"],
        bs["gamma"],
        bs["theta"],
        bs["vega"],
        oi,
        prev_oi,
        volume,
    )
