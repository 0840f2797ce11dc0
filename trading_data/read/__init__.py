"""Read the stored market data: plain functions, no Dagster needed.

>>> from trading_data import read
>>> read.bars(["AAPL"], sessions="2026-11-25")                 # minute bars of one session, UTC
>>> read.bars(["AAPL"], "2026-11-02", "2026-11-06", timespan="day", tz="America/New_York")
>>> for chunk in read.quotes(["SPY"], sessions=("2026-11-02", "2026-11-27"), chunk_rows=1_000_000): ...
>>> read.latest_nbbo(), read.bars_so_far()                     # the trading system's two questions
>>> read.read_table("bars_5m", "AAPL", sessions="2026-11-25")  # the 5-minute (or bars_1h) aggregates

Bounds: ``start`` is inclusive, ``end`` exclusive. See :mod:`trading_data.read.api` for the rules.
"""

from trading_data.read.api import (
    bars,
    bars_so_far,
    indicators,
    latest_nbbo,
    options_flow,
    positions,
    quotes,
    read_table,
    selections,
    trades,
)

__all__ = [
    "bars",
    "bars_so_far",
    "indicators",
    "latest_nbbo",
    "options_flow",
    "positions",
    "quotes",
    "read_table",
    "selections",
    "trades",
]
