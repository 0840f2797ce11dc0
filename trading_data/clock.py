"""The platform's one clock: the real time, or a fixed instant named by ``TRADING_DATA_NOW``.

Every piece of domain code that asks "what time is it" (which session is live, which tick is due,
how far a feed fetches, what the simulator has already published) asks :func:`utc_now`. Setting
``TRADING_DATA_NOW`` to an ISO 8601 instant with an offset (``2026-12-01T14:09:00-05:00``) pins it,
so a test, a CI job or a demo can run the platform as it would run at that moment: mid-session,
after the close, on a holiday. Dagster's own clock (schedule ticks, run timestamps) is not affected.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Mapping

from trading_data.errors import ConfigurationError

NOW_ENV = "TRADING_DATA_NOW"


class ClockError(ConfigurationError):
    """``TRADING_DATA_NOW`` is not an ISO 8601 instant with an offset (the settings' message format).

    The clock is below the settings layer, so it reads its variable itself; ``trading_data.settings``
    declares it (``platform.NOW``) for the README and the checks."""


def pinned_now(environ: Mapping[str, str] | None = None) -> dt.datetime | None:
    """The instant ``TRADING_DATA_NOW`` pins (UTC), or None when it is unset or empty."""
    raw = (os.environ if environ is None else environ).get(NOW_ENV, "").strip()
    if not raw:
        return None
    try:
        moment = dt.datetime.fromisoformat(raw)
    except ValueError:
        raise ClockError(
            f"invalid setting {NOW_ENV}={raw!r}: not an ISO 8601 time (e.g. 2026-12-01T14:09:00-05:00)"
        ) from None
    if moment.tzinfo is None:
        raise ClockError(
            f"invalid setting {NOW_ENV}={raw!r}: has no UTC offset (e.g. 2026-12-01T14:09:00-05:00)"
        )
    return moment.astimezone(dt.UTC)


def utc_now() -> dt.datetime:
    """Now, as an aware UTC datetime: ``TRADING_DATA_NOW`` when set, else the system clock."""
    return pinned_now() or dt.datetime.now(dt.UTC)
