"""Time units, stable random generators and vendor decimal strings shared by the simulator's modules."""

from __future__ import annotations

import datetime as dt
import hashlib
from functools import lru_cache

import numpy as np

from trading_data import calendar

NS_PER_MS = 1_000_000
NS_PER_MINUTE = 60_000_000_000
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def stable_rng(*parts: object) -> np.random.Generator:
    """A numpy Generator seeded from a blake2b hash of ``parts`` (stable across processes, unlike hash())."""
    digest = hashlib.blake2b(repr(parts).encode(), digest_size=16).digest()
    return np.random.default_rng(int.from_bytes(digest, "little"))


def to_ns(moment: dt.datetime) -> int:
    """Aware datetime -> ns since the epoch."""
    delta = moment - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000_000 + delta.microseconds * 1000


def from_ns(ns: int) -> dt.datetime:
    """ns since the epoch -> aware UTC datetime (µs precision)."""
    return _EPOCH + dt.timedelta(microseconds=ns // 1000)


@lru_cache(maxsize=4096)
def session_close_ns(day: dt.date) -> int:
    """The session's close in ns (cached)."""
    return to_ns(calendar.session(day).close)


@lru_cache(maxsize=4096)
def session_open_ns(day: dt.date) -> int:
    """The session's open in ns (cached)."""
    return to_ns(calendar.session(day).open)


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
