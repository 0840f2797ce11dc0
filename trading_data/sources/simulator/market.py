"""A deterministic, lazily generated US equity (and options) market for the offline simulator.

Everything is a pure function of ``(seed, ticker, session date[, minute])``: random generators are
derived from a blake2b hash of those parts, never from Python's ``hash()``. The universe is fixed
(``universe.py``); any other valid symbol gets a market of its own seeded by the symbol. Daily prices
come from ``walk.py``, minutes, quotes and trades from ``intraday.py``, chains from ``options.py`` and
flow alerts from ``flow.py``; this module ties them to the calendar and the clock.

A clock (``now``, by default :func:`trading_data.clock.utc_now`, which honours ``TRADING_DATA_NOW``)
truncates the session in progress: data exists only up to ``now``; later sessions have no data.
"""

from __future__ import annotations

import bisect
import datetime as dt
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from functools import lru_cache, partial
from typing import Any

import numpy as np

from trading_data import calendar
from trading_data.clock import utc_now
from trading_data.sources.simulator import flow, intraday
from trading_data.sources.simulator.block_cache import BlockCache
from trading_data.sources.simulator.intraday import DayPlan, QuoteBlock, TradeBlock, build_day_plan
from trading_data.sources.simulator.options import OptionChain, build_chain, expiries, option_symbol
from trading_data.sources.simulator.pricing import RISK_FREE_RATE, black_scholes
from trading_data.sources.simulator.units import (
    NS_PER_MINUTE,
    NS_PER_MS,
    decimal_string,
    from_ns,
    session_close_ns,
    session_open_ns,
    stable_rng,
    to_ns,
)
from trading_data.sources.simulator.universe import (
    WELL_KNOWN,
    TickerProfile,
    build_universe,
    is_valid_symbol,
    symbol_profile,
)
from trading_data.sources.simulator.walk import DailyWalk

__all__ = [  # the names other modules and tests have always imported from here
    "NS_PER_MINUTE",
    "NS_PER_MS",
    "RISK_FREE_RATE",
    "WELL_KNOWN",
    "DailyBar",
    "DayPlan",
    "MinuteBars",
    "OptionChain",
    "QuoteBlock",
    "SimulatedMarket",
    "TickerProfile",
    "TradeBlock",
    "black_scholes",
    "decimal_string",
    "from_ns",
    "option_symbol",
    "session_close_ns",
    "session_open_ns",
    "stable_rng",
    "to_ns",
]

# A ticker-level override making SPY produce about 2,000,000 quotes in a full session.
DEFAULT_QUOTES_PER_MINUTE: dict[str, float] = {"SPY": 5200.0}


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


# The simulated market's first day: it has data from here to the calendar's end (2020 and on).
SIMULATED_HISTORY_START = "2020-01-01"


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
        self.now: Callable[[], dt.datetime] = now or utc_now
        self.quotes_per_minute = {**DEFAULT_QUOTES_PER_MINUTE, **(quotes_per_minute or {})}
        self.profiles = build_universe(seed, n_tickers)
        self.by_ticker = {p.ticker: p for p in self.profiles}
        # The calendar's session table: building exchange_calendars' XNYS here cost every step ~0.3 s.
        # Session numbers count from the simulator's own epoch, not the calendar's first session, so the
        # simulated market stays the same when the calendar reaches further back.
        self._sessions: list[dt.date] = calendar.sessions_between(
            SIMULATED_HISTORY_START, calendar.CALENDAR_END
        )
        self._session_index = {d: i for i, d in enumerate(self._sessions)}
        self._walk = self._new_walk(self.profiles)
        self._symbol_profile = lru_cache(maxsize=4096)(partial(symbol_profile, seed))
        self._symbol_walk = lru_cache(maxsize=256)(
            lambda ticker: self._new_walk([self.profile(ticker)], ticker)
        )
        self.day_plan = lru_cache(maxsize=1024)(self._day_plan)
        self._chain_cache = lru_cache(maxsize=256)(self._option_chain)
        self._alerts_cache = lru_cache(maxsize=8192)(self._session_alerts)
        self._blocks = BlockCache()

    def _new_walk(self, profiles: list[Any], *key: str) -> DailyWalk:
        return DailyWalk(
            self.seed,
            len(self._sessions),
            np.array([p.volatility for p in profiles]),
            np.array([p.avg_volume for p in profiles]),
            np.array([p.base_price for p in profiles]),
            key,
        )

    # ----- tickers ----------------------------------------------------------------------------
    def profile(self, ticker: str) -> TickerProfile | None:
        """The universe's profile, one seeded by the symbol for any other valid symbol, else None."""
        found = self.by_ticker.get(ticker)
        if found is None and is_valid_symbol(ticker):
            found = self._symbol_profile(ticker)
        return found

    def universe(self) -> list[TickerProfile]:
        """All tickers of the fixed universe, well-known ones first."""
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

    # ----- daily bars -------------------------------------------------------------------------
    def _full_day(self, prof: TickerProfile, day: dt.date) -> dict[str, float]:
        """The full-session daily o/h/l/c/v/vw/n of one ticker (from its group's walk)."""
        k = self._session_index[day]
        if prof.index >= 0:
            columns, i = self._walk.daily(k, day), prof.index
        else:
            columns, i = self._symbol_walk(prof.ticker).daily(k, day), 0
        return {name: float(values[i]) for name, values in columns.items()}

    def daily_bar(self, ticker: str, day: dt.date) -> DailyBar | None:
        """The daily bar (partial in a live session); None for unknown tickers and days without data."""
        prof = self.profile(ticker)
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
        u = self._full_day(prof, day)
        return DailyBar(ticker, day, u["o"], u["h"], u["l"], u["c"], u["v"], u["vw"], int(u["n"]))

    def grouped_daily(self, day: dt.date) -> list[DailyBar]:
        """Daily bars of the whole (fixed) universe on ``day`` (empty on non-sessions and future days)."""
        if day not in self._session_index or self.available_until_ns(day) == 0:
            return []
        if not self.is_complete(day):
            return self._partial_grouped(day, self.now_ns() // NS_PER_MINUTE)
        u = self._walk.daily(self._session_index[day], day)
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
        prof = self.profile(ticker)
        if prof is None:
            raise KeyError(f"{ticker!r} is not a valid ticker symbol")
        full_day = self._full_day(prof, day)
        return build_day_plan(self.seed, prof, day, full_day, self.quotes_per_minute.get(ticker))

    def session_minutes(self, day: dt.date) -> int:
        return calendar.session(day).minutes if calendar.is_session(day) else 0

    def minute_bars(self, ticker: str, day: dt.date) -> MinuteBars:
        """Minute bars that exist (no trade, no bar) and have finished by now."""
        empty = np.array([], dtype=float)
        until = self.available_until_ns(day)
        if self.profile(ticker) is None or until == 0 or day not in self._session_index:
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
        """All quotes of one minute (not clock-truncated; cached, read-only arrays)."""
        return self._blocks.get(
            ("quotes", ticker, day, minute),
            lambda: intraday.quote_block(self.seed, self.day_plan(ticker, day), minute),
        )

    def trade_block(self, ticker: str, day: dt.date, minute: int) -> TradeBlock:
        """All trades of one minute, priced inside the prevailing quote of the same minute block (cached)."""
        return self._blocks.get(
            ("trades", ticker, day, minute),
            lambda: intraday.trade_block(
                self.seed, self.day_plan(ticker, day), minute, self.quote_block(ticker, day, minute)
            ),
        )

    def minute_blocks(
        self, ticker: str, lo_ns: int, hi_ns: int, descending: bool = False
    ) -> Iterator[tuple[dt.date, int, int]]:
        """(session date, minute index, minute start ns) overlapping [lo_ns, hi_ns], clock-truncated."""
        if self.profile(ticker) is None or hi_ns < lo_ns:
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
        if day is None or self.profile(ticker) is None:
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
        return expiries(day)

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
        prof = self.profile(ticker)
        assert prof is not None  # option_chain found a spot, so the ticker has a market
        return build_chain(self.seed, prof, day, spot, at_ns)

    # ----- flow alerts ------------------------------------------------------------------------
    def flow_alerts(self, ticker: str, day: dt.date) -> list[dict[str, Any]]:
        """Unusual Whales flow alerts of one ticker and session created by now, newest first."""
        if self.profile(ticker) is None or self.available_until_ns(day) == 0:
            return []
        now_ms = self.now_ns() // NS_PER_MS
        return [a for a in self._alerts_cache(ticker, day) if int(a["_created_ms"]) <= now_ms]

    def _session_alerts(self, ticker: str, day: dt.date) -> list[dict[str, Any]]:
        prof = self.profile(ticker)
        assert prof is not None  # flow_alerts checked it
        return flow.session_alerts(self.seed, prof, self.day_plan(ticker, day))
