"""What an OSI option symbol is (``AAPL230616C00150000``), and how to read one from either vendor.

Option symbols are stored as OSI without Polygon's ``O:`` prefix (Unusual Whales sends none).
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

OSI_PATTERN = re.compile(r"^(?P<root>[A-Z][A-Z0-9.]{0,5})(?P<date>\d{6})(?P<cp>[CP])(?P<strike>\d{8})$")
"""Root (a letter, then up to 5 letters, digits or ``.``), expiry ``YYMMDD``, ``C``/``P``, strike × 1000."""


@dataclass(frozen=True)
class OptionSymbol:
    """A parsed OSI option symbol (``AAPL230616C00150000``)."""

    symbol: str
    root: str
    expiry: dt.date
    option_type: str  # "call" | "put"
    strike: float


def normalize_option_symbol(symbol: str) -> str:
    """The vendor-neutral form: upper case OSI without Polygon's ``O:`` prefix or padding spaces."""
    s = symbol.strip().upper()
    s = s.removeprefix("O:")
    return s.replace(" ", "")


def parse_option_symbol(symbol: str) -> OptionSymbol:
    """Parse an OSI symbol from either vendor; raises ValueError naming the symbol if it is not OSI."""
    s = normalize_option_symbol(symbol)
    m = OSI_PATTERN.match(s)
    if not m:
        raise ValueError(f"not an OSI option symbol: {symbol!r}")
    d = m["date"]
    expiry = dt.date(2000 + int(d[:2]), int(d[2:4]), int(d[4:6]))
    return OptionSymbol(s, m["root"], expiry, "call" if m["cp"] == "C" else "put", int(m["strike"]) / 1000)
