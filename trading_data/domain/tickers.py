"""What a ticker symbol is, and the fallback tickers: plain constants every layer may use."""

from __future__ import annotations

import re

TICKER_PATTERN = re.compile(r"\A[A-Z][A-Z0-9.\-]{0,9}\Z")  # \Z: "AAPL\n" is no symbol
"""A letter, then up to 9 letters, digits, ``.`` or ``-`` (``BRK.B``, ``BF-B``)."""
DEFAULT_TICKERS: tuple[str, ...] = ("SPY", "QQQ", "AAPL", "MSFT", "NVDA")
"""The fallback when dynamic selection fails or finds nothing (the ``default_tickers`` option's default)."""
