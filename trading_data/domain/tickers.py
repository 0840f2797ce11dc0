"""What a ticker symbol is, the fallback tickers, and the symbol hygiene of selection: dropping vendor junk,
normalizing a list of symbols (pure functions every layer may use)."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

import pandas as pd

TICKER_PATTERN = re.compile(r"\A[A-Z][A-Z0-9.\-]{0,9}\Z")  # \Z: "AAPL\n" is no symbol
"""A letter, then up to 9 letters, digits, ``.`` or ``-`` (``BRK.B``, ``BF-B``)."""
DEFAULT_TICKERS: tuple[str, ...] = ("SPY", "QQQ", "AAPL", "MSFT", "NVDA")
"""The fallback when dynamic selection fails or finds nothing (the ``default_tickers`` option's default)."""
DROPPED_EXAMPLES = 3  # invalid symbols quoted in the message and metadata


@dataclass(frozen=True)
class DroppedSymbols:
    """Daily-bar rows whose ticker cannot be a ticker symbol (vendor junk), dropped before ranking."""

    rows: int = 0
    symbols: int = 0  # distinct invalid values
    examples: tuple[str, ...] = ()  # the first few, as ASCII-safe literals (junk may be binary)

    def describe(self) -> str:
        return (
            f"{self.rows} row(s) of {self.symbols} invalid ticker symbol(s) dropped "
            f"(e.g. {', '.join(self.examples)})"
        )


def not_a_ticker(value: object) -> ValueError:
    """The error for a value that cannot be a ticker symbol, naming it."""
    return ValueError(f"not a ticker symbol: {value!r} (a letter, then letters, digits, '.' or '-')")


def normalize_symbols(symbols: str | Iterable[str]) -> list[str]:
    """Upper-case, strip and de-duplicate (first wins); a comma-separated string is accepted. Users type
    ``spy``; every stored symbol is upper case."""
    items = symbols.split(",") if isinstance(symbols, str) else list(symbols)
    out: list[str] = []
    for raw in items:
        symbol = str(raw).strip().upper()
        if not symbol:
            continue
        if not TICKER_PATTERN.fullmatch(symbol):
            raise not_a_ticker(raw)
        if symbol not in out:
            out.append(symbol)
    return out


def printable(text: str) -> str:
    """``text`` with every character outside printable ASCII escaped: vendor junk may be binary, and
    a NUL cannot go into a log line or the event log."""
    return "".join(c if " " <= c <= "~" else ascii(c)[1:-1] for c in text)


def _is_ticker(value: object) -> bool:
    return isinstance(value, str) and TICKER_PATTERN.fullmatch(value) is not None


def drop_invalid_tickers(bars: pd.DataFrame) -> tuple[pd.DataFrame, DroppedSymbols]:
    """Drop rows whose ``ticker`` cannot be a symbol (``TICKER_PATTERN``): vendors have served
    lowercase, padded and binary tickers in whole-market bars (polygon-io/issues#138)."""
    if bars.empty or "ticker" not in bars.columns:
        return bars, DroppedSymbols()
    valid = bars["ticker"].map(_is_ticker).astype(bool)
    if valid.all():
        return bars, DroppedSymbols()
    invalid = bars.loc[~valid, "ticker"]
    distinct = list(dict.fromkeys(invalid.map(lambda v: v if isinstance(v, str) else repr(v))))
    examples = tuple(ascii(v[:20]) for v in distinct[:DROPPED_EXAMPLES])
    return bars[valid], DroppedSymbols(int((~valid).sum()), len(distinct), examples)
