"""Recently built minute blocks of quotes and trades, kept by (kind, ticker, session, minute) up to a row budget.

Paging through a session asks for the block a page ended in again on the next page, a trades block needs
the quotes block of its minute, and clients fetching the same window twice (retries, benchmarks, tests)
ask for the very same blocks: all of these come from here instead of being generated again. Cached
arrays are read-only, so no caller can change what the next one gets.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import fields
from typing import TypeVar

from trading_data.sources.simulator.intraday import QuoteBlock, TradeBlock

Block = TypeVar("Block", QuoteBlock, TradeBlock)
BlockKey = tuple[str, str, dt.date, int]  # (kind, ticker, session, minute)

# About 36 MB of quotes (9 columns of 8 bytes): a few 50,000-row pages, or a 15-minute window of
# hundreds of mid-activity tickers; a whole SPY session (2 million quotes) is deliberately not kept.
DEFAULT_MAX_ROWS = 500_000


class BlockCache:
    """A least-recently-used cache of minute blocks holding at most ``max_rows`` rows (thread-safe)."""

    def __init__(self, max_rows: int = DEFAULT_MAX_ROWS) -> None:
        self.max_rows = max_rows
        self.rows = 0
        self._blocks: OrderedDict[BlockKey, QuoteBlock | TradeBlock] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: BlockKey, build: Callable[[], Block]) -> Block:
        """The block under ``key``, built by ``build()`` (outside the lock) when it is not cached."""
        with self._lock:
            block = self._blocks.get(key)
            if block is not None:
                self._blocks.move_to_end(key)
                return block  # type: ignore[return-value]  # a key's kind fixes its block's type
        block = build()
        for field in fields(block):
            getattr(block, field.name).setflags(write=False)
        with self._lock:
            if key not in self._blocks and len(block) <= self.max_rows:
                self._blocks[key] = block
                self.rows += len(block)
                while self.rows > self.max_rows:
                    _, evicted = self._blocks.popitem(last=False)
                    self.rows -= len(evicted)
        return block
