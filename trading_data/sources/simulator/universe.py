"""Who trades in the simulated market: the fixed universe and a profile for any other valid symbol.

The universe (what the whole-market endpoints list) is the well-known tickers followed by synthetic
names, all drawn from one generator. Any other symbol matching the platform's ticker pattern gets a
profile of its own, drawn from a generator seeded by the symbol, so ``IBM`` is the same everywhere.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import numpy as np

from trading_data.domain.tickers import TICKER_PATTERN
from trading_data.sources.simulator.units import stable_rng

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
TAPE_BY_EXCHANGE = {"XNYS": 1, "ARCX": 2, "XNAS": 3}
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


def build_universe(seed: int, n_tickers: int) -> list[TickerProfile]:
    """The fixed universe: the well-known tickers first, then synthetic names (heavy-tailed sizes)."""
    rng = stable_rng(seed, "universe")
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
        profiles.append(TickerProfile(symbol, i, name, round(price, 2), round(volume), vol, exchange, kind))
    return profiles


_SYMBOL_PATTERN = re.compile(TICKER_PATTERN)


def is_valid_symbol(ticker: str) -> bool:
    """Whether ``ticker`` is a symbol the platform accepts (``trading_data.domain.tickers.TICKER_PATTERN``)."""
    return bool(_SYMBOL_PATTERN.fullmatch(ticker))


def symbol_profile(seed: int, symbol: str) -> TickerProfile:
    """A profile for a valid symbol outside the universe, drawn from a generator seeded by the symbol.

    Somebody asking for a symbol by name usually means a listed, liquid stock, so sizes are drawn
    around a mid-cap rather than the universe's long tail of thin names. ``index`` is -1: the symbol
    is not part of the universe's arrays.
    """
    rng = stable_rng(seed, "symbol", symbol)
    price = float(np.clip(math.exp(rng.normal(math.log(60.0), 0.9)), 5.0, 900.0))
    volume = float(np.clip(math.exp(rng.normal(math.log(3e6), 0.9)), 2e5, 6e7))
    vol = float(np.clip(math.exp(rng.normal(math.log(0.32), 0.35)), 0.12, 1.2))
    exchange = str(rng.choice(["XNYS", "XNAS", "ARCX"], p=[0.5, 0.45, 0.05]))
    word, suffix = (
        _NAME_WORDS[int(rng.integers(len(_NAME_WORDS)))],
        _NAME_SUFFIX[int(rng.integers(len(_NAME_SUFFIX)))],
    )
    name = f"{word} {symbol.title()} {suffix}"
    return TickerProfile(symbol, -1, name, round(price, 2), round(volume), vol, exchange, "CS")
