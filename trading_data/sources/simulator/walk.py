"""Daily prices: a mean-reverting random walk laid out in blocks of sessions.

Any session is reachable without walking from the start: block boundaries are an AR(1) around each
ticker's base price, and inside a block a fat-tailed walk is bent to land on the next boundary. One
:class:`DailyWalk` covers a group of tickers at once (the whole universe, or one symbol asked for by
name); ``key`` tells the groups' random generators apart.
"""

from __future__ import annotations

import datetime as dt
import math
from functools import lru_cache

import numpy as np

from trading_data.sources.simulator.units import stable_rng

SESSION_BLOCK = 64  # sessions per random-walk block


class DailyWalk:
    """Full-session daily o/h/l/c/v/vw/n of a group of tickers, session by session (cached)."""

    def __init__(
        self,
        seed: int,
        n_sessions: int,
        volatility: np.ndarray,
        avg_volume: np.ndarray,
        base_price: np.ndarray,
        key: tuple[str, ...] = (),
    ) -> None:
        self.seed = seed
        self.key = key
        self._vol = volatility
        self._avg_volume = avg_volume
        self._log_base = np.log(base_price)
        self._block_levels = self._build_block_levels(n_sessions // SESSION_BLOCK + 2)
        self._block_paths = lru_cache(maxsize=16)(self._block_path)
        self.daily = lru_cache(maxsize=128)(self._daily)

    def _build_block_levels(self, n_blocks: int) -> np.ndarray:
        """Log price at each block boundary: an AR(1) around each ticker's base price."""
        rng = stable_rng(self.seed, "block-levels", *self.key)
        shocks = rng.normal(0.0, 1.0, (n_blocks, len(self._vol)))
        phi = 0.75
        scale = np.minimum(self._vol * math.sqrt(SESSION_BLOCK / 252.0), 0.6) * math.sqrt(1 - phi**2)
        levels = np.empty_like(shocks)
        levels[0] = self._log_base + 0.3 * shocks[0] * scale
        for j in range(1, n_blocks):
            levels[j] = self._log_base + phi * (levels[j - 1] - self._log_base) + shocks[j] * scale
        return np.clip(levels, math.log(1.5), math.log(1200.0))

    def _block_path(self, block: int) -> tuple[np.ndarray, np.ndarray]:
        """(log close, overnight gap) for every session of a block and every ticker."""
        rng = stable_rng(self.seed, "block", block, *self.key)
        n = len(self._vol)
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

    def _daily(self, k: int, day: dt.date) -> dict[str, np.ndarray]:
        """Columns ``o h l c v vw n`` for session number ``k`` (which falls on ``day``)."""
        log_close, gap = self._block_paths(k // SESSION_BLOCK)
        lc = log_close[k % SESSION_BLOCK]
        if k % SESSION_BLOCK:
            prev = log_close[k % SESSION_BLOCK - 1]
        else:
            prev = self._block_paths(k // SESSION_BLOCK - 1)[0][-1] if k else self._block_levels[0]
        lo = prev + gap[k % SESSION_BLOCK]
        rng = stable_rng(self.seed, "daily", day.isoformat(), *self.key)
        n = len(self._vol)
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
