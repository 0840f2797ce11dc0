"""A deterministic, lazily generated US equity (and options) market for the offline simulator.

Everything is a pure function of ``(seed, ticker, session date[, minute])``: random generators are
derived from a blake2b hash of those parts, never from Python's ``hash()``. Daily prices follow a
mean-reverting random walk laid out in blocks of sessions (so any date is reachable without walking
from the start), minute bars are a bridge from the day's open to its close that touches the day's
high and low, and quotes and trades are generated one minute block at a time, so a request for a
15-minute window or one page never generates the whole day.

A clock (``now``) truncates the session in progress: data exists only up to ``now``; later
sessions have no data.
"""

from __future__ import annotations

import bisect
import datetime as dt
import hashlib
import math
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np

from trading_data import calendar

NS_PER_MS = 1_000_000
NS_PER_MINUTE = 60_000_000_000
RISK_FREE_RATE = 0.04
# Quote sizes are in shares from this date, in round lots (100 shares) before it.
QUOTE_SIZES_IN_SHARES_FROM = dt.date(2025, 11, 3)
SESSION_BLOCK = 64  # sessions per random-walk block
WELL_KNOWN: dict[str, tuple[str, float, float, float, str, str]] = {
    # ticker: (name, price, average daily volume, annual volatility, primary exchange, type)
    "AAPL": ("Apple Inc.", 210.0, 55e6, 0.28, "XNAS", "CS"),
    "MSFT": ("Microsoft Corporation", 420.0, 22e6, 0.25, "XNAS", "CS"),
    "NVDA": ("NVIDIA Corporation", 130.0, 250e6, 0.50, "XNAS", "CS"),
    "SPY": ("SPDR S&P 500 ETF Trust", 560.0, 65e6, 0.16, "ARCX", "ETF"),
    "TSLA": ("Tesla, Inc. Common Stock", 250.0, 95e6, 0.60, "XNAS", "CS"),
    "AMZN": ("Amazon.com, Inc.", 190.0, 45e6, 0.32, "XNAS", "CS"),
    "META": ("Meta Platforms, Inc.", 560.0, 15e6, 0.38, "XNAS", "CS"),
    "GOOGL": ("Alphabet Inc. Class A", 170.0, 28e6, 0.30, "XNAS", "CS"),
    "AMD": ("Advanced Micro Devices, Inc.", 150.0, 45e6, 0.52, "XNAS", "CS"),
    "QQQ": ("Invesco QQQ Trust, Series 1", 480.0, 40e6, 0.20, "XNAS", "ETF"),
}
# A ticker-level override making SPY produce about 2,000,000 quotes in a full session.
DEFAULT_QUOTES_PER_MINUTE: dict[str, float] = {"SPY": 5200.0}
TAPE_BY_EXCHANGE = {"XNYS": 1, "ARCX": 2, "XNAS": 3}
QUOTE_EXCHANGES = np.array([1, 2, 3, 7, 8, 9, 10, 11, 12, 15, 17, 19, 20, 21], dtype=np.int64)
TRADE_EXCHANGES = np.array([4, 4, 4, 1, 2, 3, 7, 8, 10, 11, 12, 15, 17, 19, 21], dtype=np.int64)
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
_NAME_WORDS = [
    "Apex",
    "Blue",
    "Cedar",
    "Delta",
    "Echo",
    "Falcon",
    "Granite",
    "Harbor",
    "Iron",
    "Juniper",
    "Keystone",
    "Lumen",
    "Meridian",
    "Nova",
    "Orion",
    "Pioneer",
    "Quantum",
    "Ridge",
    "Summit",
    "Titan",
    "Union",
    "Vertex",
    "Willow",
    "Zenith",
    "Atlas",
    "Beacon",
    "Crest",
    "Frontier",
    "Horizon",
    "Liberty",
]
_NAME_SUFFIX = [
    "Holdings Inc.",
    "Corp.",
    "Technologies Inc.",
    "Group Inc.",
    "Therapeutics Inc.",
    "Energy Corp.",
    "Financial Corp.",
    "Industries Inc.",
    "Systems Inc.",
    "Bancorp",
]


def stable_rng(*parts: object) -> np.random.Generator:
    """A numpy Generator seeded from a blake2b hash of ``parts`` (stable across processes)."""
    digest = hashlib.blake2b(repr(parts).encode(), digest_size=16).digest()
    return np.random.default_rng(int.from_bytes(digest, "little"))


def _utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def to_ns(moment: dt.datetime) -> int:
    """Aware datetime -> ns since the epoch."""
    delta = moment - dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000_000 + delta.microseconds * 1000


def from_ns(ns: int) -> dt.datetime:
    """ns since the epoch -> aware UTC datetime (µs precision)."""
    return dt.datetime(1970, 1, 1, tzinfo=dt.UTC) + dt.timedelta(microseconds=ns // 1000)


def norm_cdf(x: np.ndarray) -> np.ndarray:
    """Standard normal CDF via math.erf, element-wise."""
    erf = np.vectorize(math.erf, otypes=[float])
    return 0.5 * (1.0 + erf(np.asarray(x, dtype=float) / math.sqrt(2.0)))


def norm_pdf(x: np.ndarray) -> np.ndarray:
    return np.exp(-0.5 * np.asarray(x, dtype=float) ** 2) / math.sqrt(2.0 * math.pi)


def black_scholes(
    spot: float | np.ndarray,
    strike: np.ndarray,
    years: np.ndarray,
    vol: np.ndarray,
    is_call: np.ndarray,
    rate: float = RISK_FREE_RATE,
) -> dict[str, np.ndarray]:
    """Price and greeks (delta, gamma, theta per calendar day, vega per vol point) for European options."""
    strike = np.asarray(strike, dtype=float)
    years = np.maximum(np.asarray(years, dtype=float), 1.0 / 365.0 / 24.0)
    vol = np.maximum(np.asarray(vol, dtype=float), 1e-4)
    spot_arr = np.asarray(spot, dtype=float) * np.ones_like(strike)
    sqrt_t = np.sqrt(years)
    d1 = (np.log(spot_arr / strike) + (rate + 0.5 * vol**2) * years) / (vol * sqrt_t)
    d2 = d1 - vol * sqrt_t
    nd1, nd2, pdf1 = norm_cdf(d1), norm_cdf(d2), norm_pdf(d1)
    discount = strike * np.exp(-rate * years)
    call = spot_arr * nd1 - discount * nd2
    put = call - spot_arr + discount
    price = np.where(is_call, call, put)
    delta = np.where(is_call, nd1, nd1 - 1.0)
    gamma = pdf1 / (spot_arr * vol * sqrt_t)
    vega = spot_arr * pdf1 * sqrt_t / 100.0
    theta_common = -spot_arr * pdf1 * vol / (2.0 * sqrt_t)
    theta = (
        np.where(is_call, theta_common - rate * discount * nd2, theta_common + rate * discount * (1.0 - nd2))
        / 365.0
    )
    return {"price": np.maximum(price, 0.0), "delta": delta, "gamma": gamma, "theta": theta, "vega": vega}


@dataclass(frozen=True)
class TickerProfile:
    """Static characteristics of one simulated ticker."""

    ticker: str
    index: int
    name: str
    base_price: float
    avg_volume: float
    volatility: float  # annualised
    primary_exchange: str
    type: str

    @property
    def tape(self) -> int:
        return TAPE_BY_EXCHANGE.get(self.primary_exchange, 3)

    @property
    def daily_volatility(self) -> float:
        return self.volatility / math.sqrt(252.0)


@dataclass(frozen=True)
class DailyBar:
    """One daily bar; ``t`` is ms at 00:00 New York of the session date."""

    ticker: str
    date: dt.date
    o: float
    h: float
    low: float
    c: float
    v: float
    vw: float
    n: int

    def as_polygon(self, t_ms: int, with_ticker: bool = False) -> dict[str, object]:
        row: dict[str, object] = {
            "v": self.v,
            "vw": self.vw,
            "o": self.o,
            "c": self.c,
            "h": self.h,
            "l": self.low,
            "t": t_ms,
            "n": self.n,
        }
        if with_ticker:
            row = {"T": self.ticker, **row}
        return row


@dataclass(frozen=True)
class MinuteBars:
    """Present minute bars of one ticker and session (possibly truncated by the clock)."""

    t_ms: np.ndarray
    o: np.ndarray
    h: np.ndarray
    low: np.ndarray
    c: np.ndarray
    v: np.ndarray
    vw: np.ndarray
    n: np.ndarray

    def __len__(self) -> int:
        return len(self.t_ms)


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


@lru_cache(maxsize=4096)
def session_close_ns(day: dt.date) -> int:
    """The session's close in ns (cached)."""
    return to_ns(calendar.session(day).close)


@lru_cache(maxsize=4096)
def session_open_ns(day: dt.date) -> int:
    """The session's open in ns (cached)."""
    return to_ns(calendar.session(day).open)


def _u_shape(minutes: int) -> np.ndarray:
    """Relative intraday activity: high at the open and the close, low at midday."""
    x = (np.arange(minutes) + 0.5) / minutes
    span = minutes / 390.0
    return 0.55 + 2.4 * np.exp(-x / (0.05 / span)) + 1.4 * np.exp(-(1.0 - x) / (0.045 / span))


def _synthetic_symbols(rng: np.random.Generator, count: int, taken: set[str]) -> list[str]:
    letters = np.array(list("ABCDEFGHIJKLMNOPQRSTUVWXYZ"))
    out: list[str] = []
    seen = set(taken)
    while len(out) < count:
        length = int(rng.choice([1, 2, 3, 4, 5], p=[0.005, 0.06, 0.38, 0.45, 0.105]))
        symbol = "".join(rng.choice(letters, size=length))
        if symbol not in seen:
            seen.add(symbol)
            out.append(symbol)
    return out


class SimulatedMarket:
    """The deterministic market: universe, daily and minute bars, quotes, trades, options, flow alerts."""

    def __init__(
        self,
        seed: int = 7,
        *,
        n_tickers: int = 3000,
        now: Callable[[], dt.datetime] | None = None,
        quotes_per_minute: Mapping[str, float] | None = None,
    ) -> None:
        self.seed = seed
        self.now: Callable[[], dt.datetime] = now or _utc_now
        self.quotes_per_minute = {**DEFAULT_QUOTES_PER_MINUTE, **(quotes_per_minute or {})}
        self.profiles = self._build_universe(n_tickers)
        self.by_ticker = {p.ticker: p for p in self.profiles}
        cal = calendar.nyse()
        self._sessions: list[dt.date] = calendar.sessions_between(
            cal.first_session.date(), cal.last_session.date()
        )
        self._session_index = {d: i for i, d in enumerate(self._sessions)}
        self._vol = np.array([p.volatility for p in self.profiles])
        self._avg_volume = np.array([p.avg_volume for p in self.profiles])
        self._log_base = np.log(np.array([p.base_price for p in self.profiles]))
        self._block_levels = self._build_block_levels()
        self.day_plan = lru_cache(maxsize=1024)(self._day_plan)
        self._block_paths = lru_cache(maxsize=16)(self._block_path)
        self._universe_daily = lru_cache(maxsize=128)(self._universe_daily_uncached)
        self._chain_cache = lru_cache(maxsize=256)(self._option_chain)
        self._alerts_cache = lru_cache(maxsize=8192)(self._session_alerts)

    # ----- universe ---------------------------------------------------------------------------
    def _build_universe(self, n_tickers: int) -> list[TickerProfile]:
        rng = stable_rng(self.seed, "universe")
        symbols = list(WELL_KNOWN)[: max(n_tickers, 0)]
        symbols += _synthetic_symbols(rng, max(n_tickers - len(symbols), 0), set(symbols))
        n = len(symbols)
        # Heavy tails: lognormal prices (clipped to $2..$900), lognormal volumes, lognormal vols.
        prices = np.clip(np.exp(rng.normal(math.log(35.0), 1.1, n)), 2.0, 900.0)
        volumes = np.exp(rng.normal(math.log(4e5), 1.6, n))
        vols = np.clip(np.exp(rng.normal(math.log(0.42), 0.5, n)), 0.10, 2.5)
        exchanges = rng.choice(["XNAS", "XNYS", "ARCX"], size=n, p=[0.55, 0.38, 0.07])
        word_a = rng.integers(0, len(_NAME_WORDS), n)
        word_b = rng.integers(0, len(_NAME_SUFFIX), n)
        profiles = []
        for i, symbol in enumerate(symbols):
            if symbol in WELL_KNOWN:
                name, price, volume, vol, exchange, kind = WELL_KNOWN[symbol]
            else:
                name = f"{_NAME_WORDS[word_a[i]]} {symbol.title()} {_NAME_SUFFIX[word_b[i]]}"
                price, volume, vol = float(prices[i]), float(volumes[i]), float(vols[i])
                exchange, kind = str(exchanges[i]), "CS"
            profiles.append(
                TickerProfile(symbol, i, name, round(price, 2), round(volume), vol, exchange, kind)
            )
        return profiles

    def profile(self, ticker: str) -> TickerProfile | None:
        return self.by_ticker.get(ticker)

    def universe(self) -> list[TickerProfile]:
        """All tickers, well-known ones first."""
        return list(self.profiles)

    # ----- clock ------------------------------------------------------------------------------
    def now_ns(self) -> int:
        return to_ns(self.now())

    def available_until_ns(self, day: dt.date) -> int:
        """The last ns of ``day``'s session with data (the close, or now in a live session); 0 if none."""
        if day not in self._session_index:
            return 0
        now_ns = self.now_ns()
        open_ns, close_ns = session_open_ns(day), session_close_ns(day)
        if now_ns <= open_ns:
            return 0
        return min(now_ns, close_ns)

    def is_complete(self, day: dt.date) -> bool:
        """Whether the session on ``day`` has closed according to the clock."""
        return day in self._session_index and session_close_ns(day) <= self.now_ns()

    def latest_session(self, on_or_before: dt.date | None = None) -> dt.date | None:
        """The latest session that has started at or before now (and on or before the date given)."""
        today = self.now().astimezone(calendar.NEW_YORK).date()
        day = min(today, on_or_before) if on_or_before else today
        idx = bisect.bisect_right(self._sessions, day) - 1
        while idx >= 0:
            cand = self._sessions[idx]
            if self.available_until_ns(cand) > 0:
                return cand
            idx -= 1
        return None

    # ----- daily walk -------------------------------------------------------------------------
    def _build_block_levels(self) -> np.ndarray:
        """Log price at each block boundary: an AR(1) around each ticker's base price."""
        n_blocks = len(self._sessions) // SESSION_BLOCK + 2
        rng = stable_rng(self.seed, "block-levels")
        shocks = rng.normal(0.0, 1.0, (n_blocks, len(self.profiles)))
        phi = 0.75
        scale = np.minimum(self._vol * math.sqrt(SESSION_BLOCK / 252.0), 0.6) * math.sqrt(1 - phi**2)
        levels = np.empty_like(shocks)
        levels[0] = self._log_base + 0.3 * shocks[0] * scale
        for j in range(1, n_blocks):
            levels[j] = self._log_base + phi * (levels[j - 1] - self._log_base) + shocks[j] * scale
        return np.clip(levels, math.log(1.5), math.log(1200.0))

    def _block_path(self, block: int) -> tuple[np.ndarray, np.ndarray]:
        """(log close, overnight gap) for every session of a block and every ticker."""
        rng = stable_rng(self.seed, "block", block)
        n = len(self.profiles)
        daily_vol = self._vol / math.sqrt(252.0)
        steps = rng.standard_t(4, (SESSION_BLOCK, n)) / math.sqrt(2.0) * daily_vol
        target = self._block_levels[block + 1] - self._block_levels[block]
        steps += (target - steps.sum(axis=0)) / SESSION_BLOCK
        log_close = self._block_levels[block] + np.cumsum(steps, axis=0)
        gap = (
            0.3 * steps
            + (rng.random((SESSION_BLOCK, n)) < 0.03) * rng.normal(0, 2.5, (SESSION_BLOCK, n)) * daily_vol
        )
        return log_close, gap

    def _universe_daily_uncached(self, day: dt.date) -> dict[str, np.ndarray]:
        """Full-session daily o/h/l/c/v/vw/n for every ticker on ``day``."""
        k = self._session_index[day]
        log_close, gap = self._block_paths(k // SESSION_BLOCK)
        lc = log_close[k % SESSION_BLOCK]
        if k % SESSION_BLOCK:
            prev = log_close[k % SESSION_BLOCK - 1]
        else:
            prev = self._block_paths(k // SESSION_BLOCK - 1)[0][-1] if k else self._block_levels[0]
        lo = prev + gap[k % SESSION_BLOCK]
        rng = stable_rng(self.seed, "daily", day.isoformat())
        n = len(self.profiles)
        daily_vol = self._vol / math.sqrt(252.0)
        open_, close = np.round(np.exp(lo), 2), np.round(np.exp(lc), 2)
        high = np.round(
            np.maximum(open_, close) * np.exp(np.abs(rng.normal(0, 0.6, n)) * daily_vol + 0.0005), 2
        )
        low = np.round(
            np.minimum(open_, close) * np.exp(-np.abs(rng.normal(0, 0.6, n)) * daily_vol - 0.0005), 2
        )
        move = np.abs(lc - prev) / daily_vol
        volume = np.round(
            self._avg_volume * np.exp(rng.normal(-0.06, 0.35, n)) * (0.8 + 0.25 * np.minimum(move, 4))
        )
        volume = np.maximum(volume, 100.0)
        trade_size = np.clip(20000.0 / np.maximum(close, 1.0), 40, 400) * np.exp(rng.normal(0, 0.2, n))
        trades = np.maximum(np.round(volume / trade_size), 1)
        vwap = np.round((high + low + 2 * close) / 4, 4)
        return {
            "o": open_,
            "h": np.maximum(high, np.maximum(open_, close)),
            "l": np.minimum(low, np.minimum(open_, close)),
            "c": close,
            "v": volume,
            "vw": vwap,
            "n": trades,
        }

    def daily_bar(self, ticker: str, day: dt.date) -> DailyBar | None:
        """The daily bar (partial in a live session); None for unknown tickers and days without data."""
        prof = self.by_ticker.get(ticker)
        if prof is None or day not in self._session_index or self.available_until_ns(day) == 0:
            return None
        if not self.is_complete(day):
            bars = self.minute_bars(ticker, day)
            if not len(bars):
                return None
            volume = float(bars.v.sum())
            vwap = float((bars.vw * bars.v).sum() / volume) if volume else float(bars.c[-1])
            return DailyBar(
                ticker,
                day,
                float(bars.o[0]),
                float(bars.h.max()),
                float(bars.low.min()),
                float(bars.c[-1]),
                volume,
                round(vwap, 4),
                int(bars.n.sum()),
            )
        u = self._universe_daily(day)
        i = prof.index
        return DailyBar(
            ticker,
            day,
            float(u["o"][i]),
            float(u["h"][i]),
            float(u["l"][i]),
            float(u["c"][i]),
            float(u["v"][i]),
            float(u["vw"][i]),
            int(u["n"][i]),
        )

    def grouped_daily(self, day: dt.date) -> list[DailyBar]:
        """Daily bars of the whole universe on ``day`` (empty on non-sessions and future days)."""
        if day not in self._session_index or self.available_until_ns(day) == 0:
            return []
        if not self.is_complete(day):
            return self._partial_grouped(day, self.now_ns() // NS_PER_MINUTE)
        u = self._universe_daily(day)
        cols = {k: v.tolist() for k, v in u.items()}
        return [
            DailyBar(
                p.ticker,
                day,
                cols["o"][i],
                cols["h"][i],
                cols["l"][i],
                cols["c"][i],
                cols["v"][i],
                cols["vw"][i],
                int(cols["n"][i]),
            )
            for i, p in enumerate(self.profiles)
        ]

    @lru_cache(maxsize=4)  # noqa: B019 - one market per process in practice; bounded
    def _partial_grouped(self, day: dt.date, now_minute: int) -> list[DailyBar]:
        return [bar for p in self.profiles if (bar := self.daily_bar(p.ticker, day)) is not None]

    # ----- minute bars ------------------------------------------------------------------------
    def _day_plan(self, ticker: str, day: dt.date) -> DayPlan:
        prof = self.by_ticker[ticker]
        sess = calendar.session(day)
        u = self._universe_daily(day)
        i = prof.index
        o, h, low, c = (float(u[k][i]) for k in ("o", "h", "l", "c"))
        volume, trades = float(u["v"][i]), float(u["n"][i])
        m = sess.minutes
        rng = stable_rng(self.seed, ticker, day.isoformat(), "plan")
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
        qpm = self.quotes_per_minute.get(ticker)
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

    def session_minutes(self, day: dt.date) -> int:
        return calendar.session(day).minutes if calendar.is_session(day) else 0

    def minute_bars(self, ticker: str, day: dt.date) -> MinuteBars:
        """Minute bars that exist (no trade, no bar) and have finished by now."""
        empty = np.array([], dtype=float)
        until = self.available_until_ns(day)
        if ticker not in self.by_ticker or until == 0 or day not in self._session_index:
            return MinuteBars(*(empty,) * 8)
        plan = self.day_plan(ticker, day)
        idx = np.arange(plan.minutes)
        ends = plan.open_ns + (idx + 1) * NS_PER_MINUTE
        keep = plan.present & (ends <= until)
        t_ms = (plan.open_ns + idx[keep] * NS_PER_MINUTE) // NS_PER_MS
        return MinuteBars(
            t_ms,
            plan.o[keep],
            plan.h[keep],
            plan.low[keep],
            plan.c[keep],
            plan.v[keep],
            plan.vw[keep],
            plan.n[keep],
        )

    # ----- quotes and trades ------------------------------------------------------------------
    def quote_block(self, ticker: str, day: dt.date, minute: int) -> QuoteBlock:
        """All quotes of one minute (not clock-truncated), generated from a (seed, ticker, date, minute) rng."""
        plan = self.day_plan(ticker, day)
        rng = stable_rng(self.seed, ticker, day.isoformat(), minute, "quotes")
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

    def trade_block(self, ticker: str, day: dt.date, minute: int) -> TradeBlock:
        """All trades of one minute, priced inside the prevailing quote of the same minute block."""
        plan = self.day_plan(ticker, day)
        count = int(plan.n[minute])
        if count == 0:
            z = np.array([], dtype=np.int64)
            return TradeBlock(z, z, z, z.astype(float), z.astype(float), z, z, z)
        quotes = self.quote_block(ticker, day, minute)
        rng = stable_rng(self.seed, ticker, day.isoformat(), minute, "trades")
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

    def minute_blocks(
        self, ticker: str, lo_ns: int, hi_ns: int, descending: bool = False
    ) -> Iterator[tuple[dt.date, int, int]]:
        """(session date, minute index, minute start ns) overlapping [lo_ns, hi_ns], clock-truncated."""
        if ticker not in self.by_ticker or hi_ns < lo_ns:
            return
        first = from_ns(max(lo_ns, 0)).astimezone(calendar.NEW_YORK).date()
        last = from_ns(hi_ns).astimezone(calendar.NEW_YORK).date()
        lo_i = bisect.bisect_left(self._sessions, first)
        hi_i = bisect.bisect_right(self._sessions, last)
        days = self._sessions[lo_i:hi_i]
        for day in reversed(days) if descending else days:
            until = self.available_until_ns(day)
            if until == 0:
                continue
            sess = calendar.session(day)
            open_ns = to_ns(sess.open)
            lo_m = max(0, (lo_ns - open_ns) // NS_PER_MINUTE)
            hi_m = min(sess.minutes - 1, (min(hi_ns, until - 1) - open_ns) // NS_PER_MINUTE)
            if hi_m < lo_m:
                continue
            minutes = range(hi_m, lo_m - 1, -1) if descending else range(lo_m, hi_m + 1)
            for minute in minutes:
                yield day, minute, open_ns + minute * NS_PER_MINUTE

    # ----- options ----------------------------------------------------------------------------
    def spot(self, ticker: str, at_ns: int | None = None) -> float | None:
        """Last price at ``at_ns`` (default now): the latest finished minute bar's close."""
        at_ns = self.now_ns() if at_ns is None else at_ns
        day = self.latest_session(from_ns(at_ns).astimezone(calendar.NEW_YORK).date())
        if day is None or ticker not in self.by_ticker:
            return None
        plan = self.day_plan(ticker, day)
        until = min(self.available_until_ns(day), at_ns)
        done = int((until - plan.open_ns) // NS_PER_MINUTE)
        if done <= 0:
            bar = self.daily_bar(ticker, self._sessions[self._session_index[day] - 1])
            return bar.c if bar else None
        return float(plan.c[min(done, plan.minutes) - 1])

    def expiries(self, day: dt.date) -> list[dt.date]:
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

    def option_chain(self, ticker: str, at_ns: int | None = None) -> OptionChain | None:
        """The chain (6 expiries x 21 strikes x call/put) priced at the spot of ``at_ns`` (default now)."""
        at_ns = self.now_ns() if at_ns is None else at_ns
        day = self.latest_session(from_ns(at_ns).astimezone(calendar.NEW_YORK).date())
        spot = self.spot(ticker, at_ns)
        if day is None or spot is None:
            return None
        minute_ns = (at_ns // NS_PER_MINUTE) * NS_PER_MINUTE
        return self._chain_cache(ticker, day, round(spot, 2), minute_ns)

    def _option_chain(self, ticker: str, day: dt.date, spot: float, at_ns: int) -> OptionChain:
        prof = self.by_ticker[ticker]
        step = next(
            s for limit, s in ((5, 0.5), (25, 1.0), (100, 2.5), (250, 5.0), (1e9, 10.0)) if spot < limit
        )
        centre = round(spot / step) * step
        strikes = np.array([centre + k * step for k in range(-10, 11) if centre + k * step > 0])
        expiries = self.expiries(day)
        rows = [(e, k, call) for e in expiries for k in strikes for call in (True, False)]
        expiry = [r[0] for r in rows]
        strike = np.array([r[1] for r in rows], dtype=float)
        is_call = np.array([r[2] for r in rows])
        close_ns = np.array([session_close_ns(e) for e in expiry], dtype=float)
        years = np.maximum(close_ns - at_ns, 3.6e12) / (365.0 * 86_400e9)
        rng = stable_rng(self.seed, ticker, day.isoformat(), "chain")
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
        codes = {e: f"{ticker}{e:%y%m%d}" for e in expiries}
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

    # ----- flow alerts ------------------------------------------------------------------------
    def flow_alerts(self, ticker: str, day: dt.date) -> list[dict[str, Any]]:
        """Unusual Whales flow alerts of one ticker and session created by now, newest first."""
        if ticker not in self.by_ticker or self.available_until_ns(day) == 0:
            return []
        now_ms = self.now_ns() // NS_PER_MS
        return [a for a in self._alerts_cache(ticker, day) if int(a["_created_ms"]) <= now_ms]

    def _session_alerts(self, ticker: str, day: dt.date) -> list[dict[str, Any]]:
        prof = self.by_ticker[ticker]
        sess = calendar.session(day)
        rng = stable_rng(self.seed, ticker, day.isoformat(), "alerts")
        rate = min(0.2 + 6.0 * math.sqrt(prof.avg_volume / 2e7), 40.0)
        count = int(rng.poisson(rate))
        if count == 0:
            return []
        open_ms, close_ms = to_ns(sess.open) // NS_PER_MS, to_ns(sess.close) // NS_PER_MS
        start_ms = np.sort(rng.integers(open_ms + 60_000, close_ms - 1_000, count))
        plan = self.day_plan(ticker, day)
        first_chain = self._option_chain(ticker, day, float(plan.o[0]), to_ns(sess.open))
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


def decimal_string(value: float, places: int | None = None) -> str:
    """A vendor-style decimal string: ``375``, ``187.5``, ``4.05``; ``places`` fixes the digits."""
    if places is not None:
        text = f"{value:.{places}f}"
        if "." in text and places > 2:
            text = text.rstrip("0").rstrip(".") or "0"
        return text
    if float(value).is_integer():
        return str(int(value))
    return repr(float(value))
