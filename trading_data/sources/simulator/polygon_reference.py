"""Polygon reference data and market status: tickers, ``/v1/marketstatus/now`` and ``/upcoming``."""

from __future__ import annotations

import datetime as dt
import hashlib
import uuid
from typing import Any

from trading_data import calendar
from trading_data.sources.simulator.market import SimulatedMarket, TickerProfile
from trading_data.sources.simulator.protocol import (
    Call,
    Reply,
    dumps,
    offset_next,
    offset_page,
    parse_bool,
    polygon_ok,
)

# Extended hours as Polygon reports them: pre-market from 04:00, post-market for four hours after the
# close (to 20:00; to 17:00 after a 13:00 early close, when the exchanges' late sessions end early too).
INDEX_GROUPS = (
    "s_and_p",
    "societe_generale",
    "msci",
    "ftse_russell",
    "mstar",
    "mstarc",
    "cccy",
    "cgi",
    "nasdaq",
    "dow_jones",
)


def _figi(rng_seed: str) -> str:
    digest = uuid.uuid5(uuid.NAMESPACE_OID, rng_seed).hex.upper()
    return "BBG" + "".join(c if c.isalpha() or c.isdigit() else "0" for c in digest[:9])


def _cik(seed: int, profile: TickerProfile) -> str:
    if profile.index >= 0:
        number = profile.index * 7919 + seed
    else:  # a symbol outside the universe: stable across processes
        number = int.from_bytes(hashlib.blake2b(f"{seed}:{profile.ticker}".encode(), digest_size=8).digest())
    return f"{number % 10**7 + 10**6:010d}"


def reference_tickers(market: SimulatedMarket, call: Call) -> Reply:
    """``/v3/reference/tickers`` (market=stocks, active default true, limit <= 1000)."""
    params, offset, limit, _ = offset_page(call, 100, 1000)
    wanted = params.get("ticker")
    if wanted and wanted not in market.by_ticker:  # a symbol asked for by name, outside the universe
        profile = market.profile(wanted)
        profiles = [profile] if profile is not None else []
    else:
        profiles = sorted(market.profiles, key=lambda p: p.ticker)
    if params.get("market", "stocks") != "stocks" or not parse_bool(params.get("active"), True):
        profiles = []
    for key, attr in (("ticker", "ticker"), ("type", "type"), ("exchange", "primary_exchange")):
        if params.get(key):
            profiles = [p for p in profiles if getattr(p, attr) == params[key]]
    for key, op in ((".gte", "__ge__"), (".gt", "__gt__"), (".lte", "__le__"), (".lt", "__lt__")):
        if params.get("ticker" + key):
            bound = params["ticker" + key]
            profiles = [p for p in profiles if getattr(p.ticker, op)(bound)]
    if params.get("search"):
        needle = params["search"].lower()
        profiles = [p for p in profiles if needle in p.ticker.lower() or needle in p.name.lower()]
    if params.get("order") == "desc":
        profiles = profiles[::-1]
    updated = market.now().astimezone(dt.UTC).strftime("%Y-%m-%dT00:00:00Z")
    results = []
    for p in profiles[offset : offset + limit]:
        results.append(
            {
                "ticker": p.ticker,
                "name": p.name,
                "market": "stocks",
                "locale": "us",
                "primary_exchange": p.primary_exchange,
                "type": p.type,
                "active": True,
                "currency_name": "usd",
                "cik": _cik(market.seed, p),
                "composite_figi": _figi(f"{market.seed}:{p.ticker}:c"),
                "share_class_figi": _figi(f"{market.seed}:{p.ticker}:s"),
                "last_updated_utc": updated,
            }
        )
    link = offset_next(call, "/v3/reference/tickers", params, offset, limit, len(profiles))
    return polygon_ok({}, results, count=len(results), next_url=link)


def fx_state(now: dt.datetime) -> str:
    """Spot FX trades from Sunday 17:00 to Friday 17:00 New York."""
    ny = now.astimezone(calendar.NEW_YORK)
    weekday, evening = ny.weekday(), ny.time() >= dt.time(17)
    closed = weekday == 5 or (weekday == 4 and evening) or (weekday == 6 and not evening)
    return "closed" if closed else "open"


def market_status_now(market: SimulatedMarket, call: Call) -> Reply:
    """``/v1/marketstatus/now`` at the simulator's clock, in Polygon's shape."""
    now = market.now().astimezone(calendar.NEW_YORK)
    state, early, after = calendar.market_status(now)
    regular = "open" if state == "open" else "closed"  # OTC and the index groups have no extended hours
    body = {
        "market": state,
        "earlyHours": early,
        "afterHours": after,
        "serverTime": now.replace(microsecond=0).isoformat(),
        "exchanges": {"nyse": state, "nasdaq": state, "otc": regular},
        "currencies": {"fx": fx_state(now), "crypto": "open"},
        "indicesGroups": dict.fromkeys(INDEX_GROUPS, regular),
    }
    return Reply(200, dumps(body))


def market_status_upcoming(market: SimulatedMarket, call: Call) -> Reply:
    """``/v1/marketstatus/upcoming``: a bare array of holidays and early closes, NYSE and NASDAQ."""
    today = market.now().astimezone(calendar.NEW_YORK).date()
    end = min(today + dt.timedelta(days=365), dt.date(2030, 12, 31))
    out: list[dict[str, Any]] = []
    if today > end:
        return Reply(200, dumps(out))
    sessions = set(calendar.sessions_between(today, end))
    early = {ts.date() for ts in calendar.nyse().early_closes}
    day = today
    while day <= end:
        entry: dict[str, Any] | None = None
        if day.weekday() < 5 and day not in sessions:
            entry = {
                "name": calendar.holiday_name(day) or "Market Holiday",
                "date": day.isoformat(),
                "status": "closed",
            }
        elif day in early and day in sessions:
            sess = calendar.session(day)
            near = [calendar.holiday_name(day + dt.timedelta(days=k)) for k in (-1, 1, -2, 2, -3, 3)]
            name = next((n for n in near if n), "Early Close")
            entry = {
                "name": name,
                "date": day.isoformat(),
                "status": "early-close",
                "open": sess.open.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z"),
                "close": sess.close.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z"),
            }
        if entry:
            out.extend({"exchange": exchange, **entry} for exchange in ("NYSE", "NASDAQ"))
        day += dt.timedelta(days=1)
    return Reply(200, dumps(out))
