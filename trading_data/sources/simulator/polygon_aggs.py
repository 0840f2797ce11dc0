"""Polygon aggregates: ``/v2/aggs/ticker/.../range/...`` and the grouped daily bars of the whole market."""

from __future__ import annotations

import datetime as dt
from typing import Any

import numpy as np

from trading_data import calendar
from trading_data.sources.simulator.market import NS_PER_MS, SimulatedMarket, to_ns
from trading_data.sources.simulator.protocol import (
    BadRequest,
    Call,
    Reply,
    decode_cursor,
    ms_date,
    next_url,
    ny_midnight_ms,
    parse_bool,
    parse_int,
    polygon_ok,
)


def _path_time_ms(raw: str, end: bool) -> int:
    if raw.isdigit():
        return int(raw)
    try:
        day = dt.date.fromisoformat(raw)
    except ValueError as exc:
        raise BadRequest(f"invalid date {raw!r}") from exc
    return ny_midnight_ms(day + dt.timedelta(days=1)) - 1 if end else ny_midnight_ms(day)


def aggregates(market: SimulatedMarket, call: Call) -> Reply:
    """``/v2/aggs/ticker/{ticker}/range/{multiplier}/{timespan}/{from}/{to}``."""
    pp = call.path_params
    ticker, timespan = pp["ticker"], pp["timespan"]
    try:
        multiplier = int(pp["multiplier"])
    except ValueError as exc:
        raise BadRequest("multiplier must be an integer") from exc
    if multiplier < 1 or timespan not in ("minute", "hour", "day"):
        raise BadRequest(f"unsupported range {multiplier}/{timespan}")
    params = dict(call.params)
    if "cursor" in params:
        params.update({k: str(v) for k, v in decode_cursor(params.pop("cursor")).items()})
    adjusted = parse_bool(params.get("adjusted"), True)
    sort = params.get("sort", "asc")
    if sort not in ("asc", "desc"):
        raise BadRequest("sort must be asc or desc")
    limit = parse_int(params, "limit", 5000, 1, 50000)
    from_ms, to_ms = _path_time_ms(pp["from"], False), _path_time_ms(pp["to"], True)
    origin_ms = int(params.get("origin", from_ms if sort == "asc" else to_ms))
    if from_ms > to_ms or ms_date(to_ms) < dt.date(2020, 1, 2):
        days: list[dt.date] = []
    else:
        days = calendar.sessions_between(
            max(ms_date(from_ms), dt.date(2020, 1, 2)), min(ms_date(to_ms), dt.date(2030, 12, 31))
        )
    if timespan == "day":
        bars = [b for d in days if (b := market.daily_bar(ticker, d)) is not None]
        t = np.array([ny_midnight_ms(b.date) for b in bars], dtype=np.int64)
        cols = {
            k: np.array([getattr(b, k) for b in bars], dtype=float) for k in ("o", "h", "low", "c", "v", "vw")
        }
        cols["n"] = np.array([b.n for b in bars], dtype=float)
        size_ms = 86_400_000 * multiplier
        first_day = ms_date(from_ms)
        keys = np.array(
            [
                ny_midnight_ms(
                    first_day + dt.timedelta(days=((b.date - first_day).days // multiplier) * multiplier)
                )
                for b in bars
            ],
            dtype=np.int64,
        )
    else:
        parts = [market.minute_bars(ticker, d) for d in days]
        t = (
            np.concatenate([p.t_ms for p in parts]).astype(np.int64)
            if parts
            else np.array([], dtype=np.int64)
        )
        cols = {
            k: np.concatenate([getattr(p, k) for p in parts]) if parts else np.array([])
            for k in ("o", "h", "low", "c", "v", "vw", "n")
        }
        size_ms = 60_000 * multiplier * (60 if timespan == "hour" else 1)
        keys = (t // size_ms) * size_ms
    keep = (t >= from_ms) & (t <= to_ms)
    t, keys = t[keep], keys[keep]
    cols = {k: v[keep] for k, v in cols.items()}
    results: list[dict[str, Any]] = []
    more = False
    base_count = 0
    if len(t):
        starts = np.concatenate([[0], np.flatnonzero(np.diff(keys)) + 1])
        ends = np.concatenate([starts[1:], [len(t)]]) - 1
        volume = np.add.reduceat(cols["v"], starts)
        vw_num = np.add.reduceat(cols["vw"] * cols["v"], starts)
        agg = {
            "v": volume,
            "vw": np.round(np.where(volume > 0, vw_num / np.maximum(volume, 1e-12), cols["c"][ends]), 4),
            "o": cols["o"][starts],
            "c": cols["c"][ends],
            "h": np.maximum.reduceat(cols["h"], starts),
            "l": np.minimum.reduceat(cols["low"], starts),
            "t": keys[starts],
            "n": np.add.reduceat(cols["n"], starts),
        }
        counts = ends - starts + 1
        order = np.arange(len(starts))[::-1] if sort == "desc" else np.arange(len(starts))
        cumulative = np.cumsum(counts[order])
        take = max(int(np.searchsorted(cumulative, limit, side="right")), 1)
        chosen = order[:take]
        more = take < len(order)
        base_count = int(counts[chosen].sum())
        lists = {k: v[chosen].tolist() for k, v in agg.items()}
        lists["n"] = [int(x) for x in lists["n"]]
        results = [dict(zip(lists, row, strict=True)) for row in zip(*lists.values(), strict=True)]
    link = None
    if more:
        last_t = int(results[-1]["t"])
        repeat = "cursor" in call.params and call.page_fault("repeat_last_row")
        cycle = call.page_fault("next_url_cycle")
        state = {"adjusted": str(adjusted).lower(), "sort": sort, "limit": limit, "origin": origin_ms}
        base = f"/v2/aggs/ticker/{ticker}/range/{multiplier}/{timespan}"
        if sort == "asc":
            if cycle:
                new_from = origin_ms
            elif repeat:
                new_from = last_t
            else:
                new_from = int(np.min(keys[keys > last_t]))
            link = next_url(f"{base}/{new_from}/{pp['to']}", state)
        else:
            new_to = origin_ms if cycle else (last_t + size_ms - 1 if repeat else last_t - 1)
            link = next_url(f"{base}/{pp['from']}/{new_to}", state)
    count = len(results) if results else None
    return polygon_ok(
        {"ticker": ticker, "queryCount": base_count, "resultsCount": len(results), "adjusted": adjusted},
        results,
        count=count,
        next_url=link,
    )


def grouped_daily(market: SimulatedMarket, call: Call) -> Reply:
    """``/v2/aggs/grouped/locale/us/market/stocks/{date}``: t = 16:00 New York."""
    try:
        day = dt.date.fromisoformat(call.path_params["date"])
    except ValueError as exc:
        raise BadRequest("date must be YYYY-MM-DD") from exc
    adjusted = parse_bool(call.params.get("adjusted"), True)
    bars = market.grouped_daily(day)
    t_ms = to_ns(dt.datetime.combine(day, dt.time(16), tzinfo=calendar.NEW_YORK)) // NS_PER_MS
    results = [b.as_polygon(t_ms, with_ticker=True) for b in bars]
    return polygon_ok(
        {"queryCount": len(results), "resultsCount": len(results), "adjusted": adjusted},
        results,
        count=len(results) if results else None,
    )
