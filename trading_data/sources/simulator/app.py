"""The simulator's HTTP face: a Starlette app speaking Polygon and Unusual Whales REST JSON.

Polygon paths (``/v1``, ``/v2``, ``/v3``) and Unusual Whales paths (``/api``) share one app. Every
vendor request goes through the same pipeline: stats, server-side rate limit, faults, auth, recorded
responses (Polygon), the endpoint, then body faults. ``/_sim/...`` admin endpoints are exempt.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import datetime as dt
import json
import math
import socket
import struct
import threading
import uuid
from collections.abc import Callable, MutableMapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import numpy as np
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Match, Route

from trading_data import calendar
from trading_data.sources.simulator.faults import (
    RESPONSE_FAULTS,
    Fault,
    FaultInjector,
    RequestStats,
)
from trading_data.sources.simulator.market import (
    NS_PER_MINUTE,
    NS_PER_MS,
    OptionChain,
    SimulatedMarket,
    decimal_string,
    from_ns,
    to_ns,
)

try:  # orjson is optional: much faster for 50,000-row pages when installed.
    import orjson

    def dumps(obj: Any) -> bytes:
        """Compact JSON bytes."""
        return orjson.dumps(obj)
except ImportError:  # pragma: no cover - depends on the environment

    def dumps(obj: Any) -> bytes:
        """Compact JSON bytes."""
        return json.dumps(obj, separators=(",", ":")).encode()


DEFAULT_RECORDED_DIR = Path("/work/shared/reference/polygon/recorded-responses")
NEXT_URL_HOSTS = (
    "https://api.polygon.io",
    "https://api.massive.com:443",
    "https://api.massive.com",
    "https://api.polygon.io:443",
)
MSG_429 = (
    "You've exceeded the maximum requests per minute, please wait or upgrade your subscription to "
    "continue. https://polygon.io/pricing"
)
MSG_403 = "You are not entitled to this data. Please upgrade your plan at https://polygon.io/pricing"
NGINX_TITLES = {
    500: "500 Internal Server Error",
    502: "502 Bad Gateway",
    503: "503 Service Temporarily Unavailable",
    504: "504 Gateway Time-out",
}
UW_DAILY_LIMIT = 15_000
UW_MINUTE_LIMIT = 120
POLYGON = "polygon"
UNUSUAL_WHALES = "unusualwhales"
TRANSPORT_KEY = "trading_data.sim.transport"


class BadRequest(Exception):
    """A parameter the vendor would reject (Polygon 400, Unusual Whales 422)."""


@dataclass
class Reply:
    """An endpoint's answer before body faults: status, body bytes, content type, extra headers."""

    status: int
    body: bytes
    media_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Call:
    """One vendor request as the endpoints see it."""

    path: str
    vendor: str
    params: dict[str, str]
    path_params: dict[str, str]
    query_string: str
    faults: FaultInjector

    def page_fault(self, kind: str) -> bool:
        """Spend a ``repeat_last_row`` / ``next_url_cycle`` fault hitting this request, if any."""
        return self.faults.take_one(kind, self.path, self.vendor) is not None


# ----- small helpers ---------------------------------------------------------------------------
def request_id() -> str:
    return uuid.uuid4().hex


def encode_cursor(state: dict[str, Any]) -> str:
    """Opaque cursor: URL-safe base64 of compact JSON, unpadded."""
    return base64.urlsafe_b64encode(json.dumps(state, separators=(",", ":")).encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> dict[str, Any]:
    """Inverse of :func:`encode_cursor`; raises BadRequest on garbage."""
    try:
        data = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadRequest("invalid cursor") from exc
    if not isinstance(data, dict):
        raise BadRequest("invalid cursor")
    return data


_host_counter = iter(range(1 << 62))
_host_lock = threading.Lock()


def next_url(path: str, state: dict[str, Any]) -> str:
    """An absolute next_url on a rotating vendor host, carrying only ``cursor=``."""
    with _host_lock:
        host = NEXT_URL_HOSTS[next(_host_counter) % len(NEXT_URL_HOSTS)]
    return f"{host}{path}?cursor={encode_cursor(state)}"


def polygon_ok(payload: dict[str, Any], results: list[Any] | None, **extra: Any) -> Reply:
    """A Polygon success envelope; no ``results`` key when empty."""
    body: dict[str, Any] = dict(payload)
    if results:
        body["results"] = results
    body["status"] = "OK"
    body["request_id"] = request_id()
    for key, value in extra.items():
        if value is not None:
            body[key] = value
    return Reply(200, dumps(body))


def polygon_error(status: int, message: str, key: str = "error", label: str = "ERROR") -> Reply:
    return Reply(status, dumps({"status": label, "request_id": request_id(), key: message}))


def parse_int(
    params: dict[str, str], name: str, default: int, low: int, high: int | None = None, clamp: bool = True
) -> int:
    """An integer query parameter; out-of-range values are clamped (Polygon) or rejected."""
    raw = params.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError as exc:
        raise BadRequest(f"{name}={raw} is not an integer") from exc
    if value < low or (high is not None and value > high):
        if not clamp:
            raise BadRequest(f"{name}={raw} out of range")
        value = max(low, min(value, high if high is not None else value))
    return value


def parse_bool(raw: str | None, default: bool) -> bool:
    if raw is None or raw == "":
        return default
    if raw.lower() in ("true", "1", "yes"):
        return True
    if raw.lower() in ("false", "0", "no"):
        return False
    raise BadRequest(f"invalid boolean {raw!r}")


def ny_midnight_ms(day: dt.date) -> int:
    return to_ns(dt.datetime.combine(day, dt.time(0), tzinfo=calendar.NEW_YORK)) // NS_PER_MS


def parse_ns(raw: str) -> int:
    """A v3 timestamp value: ns integer, ``YYYY-MM-DD`` (UTC midnight) or an ISO datetime."""
    raw = raw.strip()
    if raw.isdigit():
        value = int(raw)
        return value * NS_PER_MS if value < 10**14 else value
    try:
        if len(raw) == 10:
            return to_ns(dt.datetime.combine(dt.date.fromisoformat(raw), dt.time(0), tzinfo=dt.UTC))
        text = raw.replace("Z", "+00:00")
        frac_ns = 0
        if "." in text:  # keep nanoseconds that datetime cannot hold
            head, _, tail = text.partition(".")
            digits = "".join(ch for ch in tail if ch.isdigit())
            rest = tail[len(digits) :]
            frac_ns = int((digits + "000000000")[:9])
            text = head + rest
        moment = dt.datetime.fromisoformat(text)
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=dt.UTC)
        return to_ns(moment) + frac_ns
    except ValueError as exc:
        raise BadRequest(f"invalid timestamp {raw!r}") from exc


def parse_unix_or_iso_ms(raw: str) -> int:
    """Unusual Whales ``newer_than``/``older_than``: unix s or ms, ISO date or datetime -> ms."""
    raw = raw.strip()
    if raw.isdigit():
        value = int(raw)
        return value * 1000 if value < 10**11 else value
    return parse_ns(raw) // NS_PER_MS


# ----- Polygon: aggregates ---------------------------------------------------------------------
def _path_time_ms(raw: str, end: bool) -> int:
    if raw.isdigit():
        return int(raw)
    try:
        day = dt.date.fromisoformat(raw)
    except ValueError as exc:
        raise BadRequest(f"invalid date {raw!r}") from exc
    return ny_midnight_ms(day + dt.timedelta(days=1)) - 1 if end else ny_midnight_ms(day)


def _ms_date(ms: int) -> dt.date:
    return from_ns(ms * NS_PER_MS).astimezone(calendar.NEW_YORK).date()


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
    if from_ms > to_ms or _ms_date(to_ms) < dt.date(2020, 1, 2):
        days: list[dt.date] = []
    else:
        days = calendar.sessions_between(
            max(_ms_date(from_ms), dt.date(2020, 1, 2)), min(_ms_date(to_ms), dt.date(2030, 12, 31))
        )
    if timespan == "day":
        bars = [b for d in days if (b := market.daily_bar(ticker, d)) is not None]
        t = np.array([ny_midnight_ms(b.date) for b in bars], dtype=np.int64)
        cols = {
            k: np.array([getattr(b, k) for b in bars], dtype=float) for k in ("o", "h", "low", "c", "v", "vw")
        }
        cols["n"] = np.array([b.n for b in bars], dtype=float)
        size_ms = 86_400_000 * multiplier
        first_day = _ms_date(from_ms)
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


# ----- Polygon: v3 trades and quotes -----------------------------------------------------------
def _tick_bounds(params: dict[str, str]) -> tuple[int, int]:
    lo, hi = 0, 2**62
    if params.get("timestamp"):
        raw = params["timestamp"]
        value = parse_ns(raw)
        if len(raw.strip()) == 10 and "-" in raw:
            lo, hi = value, value + 86_400 * 10**9 - 1
        else:
            lo = hi = value
    for suffix, adjust in ((".gte", 0), (".gt", 1)):
        if params.get("timestamp" + suffix):
            lo = max(lo, parse_ns(params["timestamp" + suffix]) + adjust)
    for suffix, adjust in ((".lte", 0), (".lt", -1)):
        if params.get("timestamp" + suffix):
            hi = min(hi, parse_ns(params["timestamp" + suffix]) + adjust)
    return lo, hi


def ticks(market: SimulatedMarket, call: Call, kind: str) -> Reply:
    """``/v3/quotes/{ticker}`` and ``/v3/trades/{ticker}``, paged with an opaque cursor."""
    ticker = call.path_params["ticker"]
    params = call.params
    if "cursor" in params:
        state = decode_cursor(params["cursor"])
        lo, hi, order, limit = int(state["lo"]), int(state["hi"]), state["o"], int(state["l"])
        position = state.get("p")
        inclusive = call.page_fault("repeat_last_row")
    else:
        lo, hi = _tick_bounds(params)
        order = params.get("order", "desc")
        if order not in ("asc", "desc"):
            raise BadRequest("order must be asc or desc")
        if params.get("sort", "timestamp") != "timestamp":
            raise BadRequest("sort must be timestamp")
        limit = parse_int(params, "limit", 1000, 1, 50000)
        position, inclusive = None, False
    descending = order == "desc"
    hi_eff = min(hi, market.now_ns())
    scan_lo, scan_hi = lo, hi_eff
    if position is not None:
        if descending:
            scan_hi = min(scan_hi, int(position[0]) + NS_PER_MINUTE - 1)
        else:
            scan_lo = max(scan_lo, int(position[0]))
    chunks: list[dict[str, np.ndarray]] = []
    got = 0
    last_pos: tuple[int, int] | None = None
    more = False
    for day, minute, start_ns in market.minute_blocks(ticker, scan_lo, scan_hi, descending):
        block = (market.quote_block if kind == "quotes" else market.trade_block)(ticker, day, minute)
        if not len(block):
            continue
        idx = np.arange(len(block))
        mask = (block.sip_ns >= lo) & (block.sip_ns <= hi_eff)
        if position is not None and start_ns == int(position[0]):
            p = int(position[1])
            if descending:
                mask &= (idx <= p) if inclusive else (idx < p)
            else:
                mask &= (idx >= p) if inclusive else (idx > p)
        sel = idx[mask]
        if descending:
            sel = sel[::-1]
        if got >= limit:
            if len(sel):
                more = True
                break
            continue
        if len(sel) > limit - got:
            more = True
            sel = sel[: limit - got]
        if not len(sel):
            continue
        chunks.append({name: getattr(block, name)[sel] for name in block.__dataclass_fields__})
        got += len(sel)
        last_pos = (start_ns, int(sel[-1]))
    results: list[dict[str, Any]] = []
    if chunks:
        cols = {name: np.concatenate([c[name] for c in chunks]) for name in chunks[0]}
        tape = market.by_ticker[ticker].tape
        results = _quote_rows(cols, tape) if kind == "quotes" else _trade_rows(cols, tape)
    link = None
    if more and last_pos is not None:
        pos: list[int] | None = list(last_pos)
        if call.page_fault("next_url_cycle"):
            pos = None
        link = next_url(f"/v3/{kind}/{ticker}", {"lo": lo, "hi": hi, "o": order, "l": limit, "p": pos})
    return polygon_ok({}, results, next_url=link)


def _quote_rows(cols: dict[str, np.ndarray], tape: int) -> list[dict[str, Any]]:
    names = (
        "ask_exchange",
        "ask_price",
        "ask_size",
        "bid_exchange",
        "bid_price",
        "bid_size",
        "participant_timestamp",
        "sequence_number",
        "sip_timestamp",
    )
    values = (
        cols["ask_exchange"].tolist(),
        cols["ask"].tolist(),
        cols["ask_size"].tolist(),
        cols["bid_exchange"].tolist(),
        cols["bid"].tolist(),
        cols["bid_size"].tolist(),
        cols["participant_ns"].tolist(),
        cols["sequence"].tolist(),
        cols["sip_ns"].tolist(),
    )
    return [{**dict(zip(names, row, strict=True)), "tape": tape} for row in zip(*values, strict=True)]


def _trade_rows(cols: dict[str, np.ndarray], tape: int) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    conditions = {1: [37], 2: [14, 41]}
    size = cols["size"]
    sizes = size.astype(np.int64).tolist() if np.all(size == np.round(size)) else size.tolist()
    for sip, part, seq, price, qty, exch, cond, tid in zip(
        cols["sip_ns"].tolist(),
        cols["participant_ns"].tolist(),
        cols["sequence"].tolist(),
        cols["price"].tolist(),
        sizes,
        cols["exchange"].tolist(),
        cols["condition_code"].tolist(),
        cols["trade_id"].tolist(),
        strict=True,
    ):
        row: dict[str, Any] = {}
        if cond:
            row["conditions"] = conditions[cond]
        row.update(
            {
                "exchange": exch,
                "id": str(tid),
                "participant_timestamp": part,
                "price": price,
                "sequence_number": seq,
                "sip_timestamp": sip,
                "size": qty,
                "tape": tape,
            }
        )
        if exch == 4:
            row["trf_id"] = 201 + tid % 3
            row["trf_timestamp"] = part - 20_000
        rows.append(row)
    return rows


# ----- Polygon: options ------------------------------------------------------------------------
def _range_filter(
    values: np.ndarray, params: dict[str, str], name: str, cast: Callable[[str], Any]
) -> np.ndarray:
    mask = np.ones(len(values), dtype=bool)
    ops = {"": np.equal, ".gte": np.greater_equal, ".gt": np.greater, ".lte": np.less_equal, ".lt": np.less}
    for suffix, op in ops.items():
        raw = params.get(name + suffix)
        if raw:
            try:
                mask &= op(values, cast(raw))
            except ValueError as exc:
                raise BadRequest(f"invalid {name}{suffix}") from exc
    return mask


def _chain_mask(chain: OptionChain, params: dict[str, str]) -> np.ndarray:
    expiry = np.array([e.isoformat() for e in chain.expiry])
    mask = _range_filter(chain.strike, params, "strike_price", float)
    mask &= _range_filter(expiry, params, "expiration_date", lambda s: dt.date.fromisoformat(s).isoformat())
    kind = params.get("contract_type")
    if kind:
        if kind not in ("call", "put"):
            raise BadRequest("contract_type must be call or put")
        mask &= chain.is_call == (kind == "call")
    return mask


def _offset_page(call: Call, default_limit: int, max_limit: int) -> tuple[dict[str, str], int, int, bool]:
    """(effective params, offset, limit, from_cursor) for offset-paged endpoints."""
    params = dict(call.params)
    offset = 0
    from_cursor = "cursor" in params
    if from_cursor:
        state = decode_cursor(params.pop("cursor"))
        params = {k: str(v) for k, v in state["q"].items()}
        offset = int(state["off"])
        if call.page_fault("repeat_last_row"):
            offset = max(offset - 1, 0)
    limit = parse_int(params, "limit", default_limit, 1, max_limit)
    return params, offset, limit, from_cursor


def _offset_next(
    call: Call, path: str, params: dict[str, str], offset: int, limit: int, total: int
) -> str | None:
    if offset + limit >= total:
        return None
    new_offset = 0 if call.page_fault("next_url_cycle") else offset + limit
    return next_url(path, {"q": params, "off": new_offset})


def options_snapshot(market: SimulatedMarket, call: Call) -> Reply:
    """``/v3/snapshot/options/{underlying}`` (limit <= 250)."""
    underlying = call.path_params["underlying"]
    params, offset, limit, _ = _offset_page(call, 10, 250)
    at_ns = int(params.get("_at", market.now_ns()))
    params["_at"] = str(at_ns)
    chain = market.option_chain(underlying, at_ns)
    if chain is None:
        return polygon_ok({}, [])
    rows = np.flatnonzero(_chain_mask(chain, params))
    if params.get("order", "asc") == "desc":
        rows = rows[::-1]
    page = rows[offset : offset + limit]
    updated_ns = (at_ns // NS_PER_MINUTE) * NS_PER_MINUTE
    results = []
    for k in page.tolist():
        price = max(round(float(chain.price[k]), 2), 0.01)
        spread = max(round(price * 0.03, 2), 0.01)
        bid = max(round(price - spread / 2, 2), 0.0)
        ask = round(bid + spread, 2)
        strike = float(chain.strike[k])
        is_call = bool(chain.is_call[k])
        break_even = strike + price if is_call else strike - price
        volume = int(chain.volume[k])
        day_open = max(round(price * (1 + 0.05 * math.sin(k + 1)), 2), 0.01)
        results.append(
            {
                "break_even_price": round(break_even, 4),
                "day": {
                    "change": round(price - day_open, 4),
                    "change_percent": round((price / day_open - 1) * 100, 4),
                    "close": price,
                    "high": max(price, day_open),
                    "last_updated": updated_ns,
                    "low": min(price, day_open),
                    "open": day_open,
                    "previous_close": day_open,
                    "volume": volume,
                    "vwap": round((price + day_open) / 2, 4),
                },
                "details": {
                    "contract_type": "call" if is_call else "put",
                    "exercise_style": "american",
                    "expiration_date": chain.expiry[k].isoformat(),
                    "shares_per_contract": 100,
                    "strike_price": strike,
                    "ticker": "O:" + chain.symbols[k],
                },
                "greeks": {
                    "delta": float(chain.delta[k]),
                    "gamma": float(chain.gamma[k]),
                    "theta": float(chain.theta[k]),
                    "vega": float(chain.vega[k]),
                },
                "implied_volatility": float(chain.iv[k]),
                "last_quote": {
                    "ask": ask,
                    "ask_size": 10 + k % 190,
                    "bid": bid,
                    "bid_size": 10 + (k * 7) % 290,
                    "last_updated": updated_ns,
                    "midpoint": round((bid + ask) / 2, 4),
                    "timeframe": "REAL-TIME",
                },
                "last_trade": {
                    "price": price,
                    "sip_timestamp": updated_ns - 1_500_000_000,
                    "size": 1 + k % 9,
                    "conditions": [209],
                    "exchange": 300 + k % 15,
                    "timeframe": "REAL-TIME",
                },
                "open_interest": int(chain.open_interest[k]),
                "underlying_asset": {
                    "change_to_break_even": round(break_even - chain.spot, 4),
                    "last_updated": updated_ns,
                    "price": chain.spot,
                    "ticker": underlying,
                    "timeframe": "REAL-TIME",
                },
            }
        )
    link = _offset_next(call, f"/v3/snapshot/options/{underlying}", params, offset, limit, len(rows))
    return polygon_ok({}, results, next_url=link)


def options_contracts(market: SimulatedMarket, call: Call) -> Reply:
    """``/v3/reference/options/contracts`` (underlying_ticker, expiration_date, limit <= 1000)."""
    params, offset, limit, _ = _offset_page(call, 10, 1000)
    now_ns = market.now_ns()
    as_of = params.get("as_of")
    if as_of:
        try:
            day = dt.date.fromisoformat(as_of)
        except ValueError as exc:
            raise BadRequest("as_of must be YYYY-MM-DD") from exc
        at_ns = min(now_ns, to_ns(dt.datetime.combine(day, dt.time(16), tzinfo=calendar.NEW_YORK)))
    else:
        at_ns = int(params.get("_at", now_ns))
    params["_at"] = str(at_ns)
    if parse_bool(params.get("expired"), False):
        return polygon_ok({}, [])
    underlying = params.get("underlying_ticker")
    tickers = [underlying] if underlying else sorted(p.ticker for p in market.profiles)
    # Walk tickers lazily: skip whole chains before the offset.
    results: list[dict[str, Any]] = []
    seen = 0
    total_known = False
    for ticker in tickers:
        chain = market.option_chain(ticker, at_ns)
        if chain is None:
            continue
        rows = np.flatnonzero(_chain_mask(chain, params))
        if seen + len(rows) <= offset:
            seen += len(rows)
            continue
        for k in rows[max(offset - seen, 0) :].tolist():
            if len(results) >= limit:
                break
            is_call = bool(chain.is_call[k])
            results.append(
                {
                    "cfi": "OCASPS" if is_call else "OPASPS",
                    "contract_type": "call" if is_call else "put",
                    "exercise_style": "american",
                    "expiration_date": chain.expiry[k].isoformat(),
                    "primary_exchange": "BATO",
                    "shares_per_contract": 100,
                    "strike_price": float(chain.strike[k]),
                    "ticker": "O:" + chain.symbols[k],
                    "underlying_ticker": ticker,
                }
            )
        seen += len(rows)
        if len(results) >= limit:
            total_known = seen > offset + limit or ticker != tickers[-1]
            break
    link = None
    if total_known:
        new_offset = 0 if call.page_fault("next_url_cycle") else offset + limit
        link = next_url("/v3/reference/options/contracts", {"q": params, "off": new_offset})
    return polygon_ok({}, results, next_url=link)


# ----- Polygon: reference and market status ----------------------------------------------------
def _figi(rng_seed: str) -> str:
    digest = uuid.uuid5(uuid.NAMESPACE_OID, rng_seed).hex.upper()
    return "BBG" + "".join(c if c.isalpha() or c.isdigit() else "0" for c in digest[:9])


def reference_tickers(market: SimulatedMarket, call: Call) -> Reply:
    """``/v3/reference/tickers`` (market=stocks, active default true, limit <= 1000)."""
    params, offset, limit, _ = _offset_page(call, 100, 1000)
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
                "cik": f"{(p.index * 7919 + market.seed) % 10**7 + 10**6:010d}",
                "composite_figi": _figi(f"{market.seed}:{p.ticker}:c"),
                "share_class_figi": _figi(f"{market.seed}:{p.ticker}:s"),
                "last_updated_utc": updated,
            }
        )
    link = _offset_next(call, "/v3/reference/tickers", params, offset, limit, len(profiles))
    return polygon_ok({}, results, count=len(results), next_url=link)


def market_status_now(market: SimulatedMarket, call: Call) -> Reply:
    """``/v1/marketstatus/now`` from the clock and the NYSE calendar."""
    now = market.now().astimezone(calendar.NEW_YORK)
    state = "closed"
    early = after = False
    if calendar.is_session(now.date()):
        sess = calendar.session(now.date())
        pre_open = now.replace(hour=4, minute=0, second=0, microsecond=0)
        post_close = now.replace(hour=20, minute=0, second=0, microsecond=0)
        if sess.open <= now < sess.close:
            state = "open"
        elif pre_open <= now < sess.open:
            state, early = "extended-hours", True
        elif sess.close <= now < post_close:
            state, after = "extended-hours", True
    body = {
        "market": state,
        "earlyHours": early,
        "afterHours": after,
        "serverTime": now.replace(microsecond=0).isoformat(),
        "exchanges": {"nyse": state, "nasdaq": state, "otc": state},
        "currencies": {"fx": "open", "crypto": "open"},
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


# ----- Unusual Whales ---------------------------------------------------------------------------
def uw_flow_alerts(market: SimulatedMarket, call: Call) -> Reply:
    """``/api/option-trades/flow-alerts``: newest first, both time bounds inclusive (clients dedupe by id)."""
    params = call.params
    limit = parse_int(params, "limit", 100, 1, 200, clamp=False)
    min_premium = parse_int(params, "min_premium", 0, 0, None, clamp=False)
    now_ms = market.now_ns() // NS_PER_MS
    older = parse_unix_or_iso_ms(params["older_than"]) if params.get("older_than") else now_ms
    newer = parse_unix_or_iso_ms(params["newer_than"]) if params.get("newer_than") else None
    raw_tickers = params.get("ticker_symbol", "").strip()
    exclude = raw_tickers.startswith("-")
    wanted = {t.strip().upper() for t in raw_tickers.lstrip("-").split(",") if t.strip()}
    if exclude or not wanted:
        candidates = [
            p.ticker
            for p in market.profiles
            if (p.avg_volume >= 2e6 or p.index < 10) and p.ticker not in wanted
        ]
    else:
        candidates = sorted(t for t in wanted if t in market.by_ticker)
    end_day = _ms_date(min(older, now_ms))
    start_day = _ms_date(newer) if newer is not None else end_day - dt.timedelta(days=45)
    out: list[dict[str, Any]] = []
    if start_day <= end_day and end_day >= dt.date(2020, 1, 2):
        days = calendar.sessions_between(
            max(start_day, dt.date(2020, 1, 2)), min(end_day, dt.date(2030, 12, 31))
        )
        for day in reversed(days):
            day_alerts = [a for t in candidates for a in market.flow_alerts(t, day)]
            day_alerts.sort(key=lambda a: -int(a["_created_ms"]))
            for alert in day_alerts:
                created = int(alert["_created_ms"])
                if created > older or (newer is not None and created < newer):
                    continue
                if int(str(alert["total_premium"])) < min_premium:
                    continue
                out.append({k: v for k, v in alert.items() if not k.startswith("_")})
                if len(out) >= limit:
                    break
            if len(out) >= limit:
                break
    return Reply(200, dumps({"data": out}))


def uw_option_contracts(market: SimulatedMarket, call: Call) -> Reply:
    """``/api/stock/{ticker}/option-contracts`` (page from 0, limit <= 500)."""
    params = call.params
    ticker = call.path_params["ticker"].upper()
    if not ticker.replace(".", "").isalnum() or len(ticker) > 10:
        raise BadRequest(f"Invalid path input: {ticker} (valid example: AAPL)")
    limit = parse_int(params, "limit", 500, 1, 500, clamp=False)
    page = parse_int(params, "page", 0, 0, None, clamp=False)
    chain = market.option_chain(ticker)
    if chain is None:
        return Reply(200, dumps({"data": []}))
    mask = np.ones(len(chain), dtype=bool)
    if params.get("expiry"):
        mask &= np.array([e.isoformat() == params["expiry"] for e in chain.expiry])
    if params.get("option_type"):
        if params["option_type"] not in ("call", "put"):
            raise BadRequest(
                f"Invalid query input(s): option_type={params['option_type']} (valid example: option_type=call)"
            )
        mask &= chain.is_call == (params["option_type"] == "call")
    if parse_bool(params.get("exclude_zero_vol_chains"), False):
        mask &= chain.volume > 0
    if parse_bool(params.get("exclude_zero_oi_chains"), False):
        mask &= chain.open_interest > 0
    rows = np.flatnonzero(mask)[page * limit : (page + 1) * limit]
    data = []
    for k in rows.tolist():
        price = max(round(float(chain.price[k]), 2), 0.01)
        volume = int(chain.volume[k])
        ask_volume = volume * 4 // 10
        bid_volume = volume * 4 // 10
        mid_volume = volume - ask_volume - bid_volume
        spread = max(round(price * 0.03, 2), 0.01)
        data.append(
            {
                "ask_volume": ask_volume,
                "avg_price": decimal_string(price * 0.98, 8),
                "bid_volume": bid_volume,
                "cross_volume": 0,
                "floor_volume": volume // 20,
                "high_price": decimal_string(price * 1.08, 2),
                "implied_volatility": decimal_string(float(chain.iv[k]), 15),
                "last_price": decimal_string(price, 2),
                "low_price": decimal_string(price * 0.9, 2),
                "mid_volume": mid_volume,
                "multi_leg_volume": volume // 12,
                "nbbo_ask": decimal_string(price + spread / 2, 2),
                "nbbo_bid": decimal_string(max(price - spread / 2, 0), 2),
                "no_side_volume": mid_volume,
                "open_interest": int(chain.open_interest[k]),
                "option_symbol": chain.symbols[k],
                "prev_oi": int(chain.prev_open_interest[k]),
                "stock_multi_leg_volume": volume // 200,
                "sweep_volume": volume // 9,
                "total_premium": f"{price * 0.98 * volume * 100:.2f}",
                "volume": volume,
            }
        )
    return Reply(200, dumps({"data": data}))


# ----- the app -----------------------------------------------------------------------------------
def load_recorded(directory: Path | str | None) -> dict[tuple[str, tuple[tuple[str, str], ...]], bytes]:
    """Recorded Polygon responses keyed by (path, sorted query pairs); file ``a/b&x=1;y.json`` = ``/a/b?x=1:y``."""
    out: dict[tuple[str, tuple[tuple[str, str], ...]], bytes] = {}
    if directory is None or not Path(directory).is_dir():
        return out
    root = Path(directory)
    for file in root.rglob("*.json"):
        rel = file.relative_to(root).as_posix()[: -len(".json")].replace(";", ":")
        path, _, query = rel.partition("&")
        pairs = tuple(sorted((k, v) for k, v in parse_qsl(query, keep_blank_values=True) if k != "apiKey"))
        out[("/" + path, pairs)] = file.read_bytes()
    return out


def _nginx_html(status: int) -> bytes:
    title = NGINX_TITLES.get(status, f"{status} Error")
    return (
        f"<html>\r\n<head><title>{title}</title></head>\r\n<body>\r\n<center><h1>{title}</h1></center>\r\n"
        "<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"
    ).encode()


def _abort_connection(scope: MutableMapping[str, Any]) -> bool:
    """Reset the TCP connection (RST) when running under the simulator's uvicorn protocol."""
    transport = scope.get("extensions", {}).get(TRANSPORT_KEY)
    if transport is None:
        return False
    sock = transport.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    transport.abort()
    return True


class SimulatedConnectionReset(ConnectionResetError):
    """Raised in-process (no socket to reset) for a ``connection_reset`` fault."""


class UsageCounter:
    """Unusual Whales usage counters (daily resets at 20:00 New York, per-minute window)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._day_key = ""
        self._daily = 0
        self._minute_key = -1
        self._minute = 0

    def headers(self, now: dt.datetime) -> dict[str, str]:
        ny = now.astimezone(calendar.NEW_YORK)
        day_key = (ny + dt.timedelta(hours=4)).date().isoformat()
        minute_key = int(now.timestamp() // 60)
        with self._lock:
            if day_key != self._day_key:
                self._day_key, self._daily = day_key, 0
            if minute_key != self._minute_key:
                self._minute_key, self._minute = minute_key, 0
            self._daily += 1
            self._minute += 1
            daily, minute = self._daily, self._minute
        reset_ms = int((minute_key + 1) * 60_000 - now.timestamp() * 1000)
        return {
            "x-uw-daily-req-count": str(daily),
            "x-uw-token-req-limit": str(UW_DAILY_LIMIT),
            "x-uw-minute-req-counter": str(minute),
            "x-uw-req-per-minute-remaining": str(max(UW_MINUTE_LIMIT - minute, 0)),
            "x-uw-req-per-minute-reset": str(max(reset_ms, 0)),
        }


Endpoint = Callable[[SimulatedMarket, Call], Reply]


def create_app(
    market: SimulatedMarket | None = None,
    faults: FaultInjector | None = None,
    *,
    seed: int = 7,
    now: Callable[[], dt.datetime] | None = None,
    stats: RequestStats | None = None,
    recorded_dir: Path | str | None = DEFAULT_RECORDED_DIR,
) -> Starlette:
    """The simulator app. ``app.state`` holds ``market``, ``faults`` and ``stats``.

    ``recorded_dir``: Polygon recordings answered verbatim on an exact path+query match (apiKey
    ignored); None disables them.
    """
    market = market or SimulatedMarket(seed, now=now)
    faults = faults or FaultInjector()
    stats = stats or RequestStats()
    recorded = load_recorded(recorded_dir)
    usage = UsageCounter()

    def vendor_route(path: str, endpoint: Endpoint) -> Route:
        async def handle(request: Request) -> Response:
            return await _pipeline(request, endpoint)

        return Route(path, handle, methods=["GET"])

    async def _pipeline(request: Request, endpoint: Endpoint) -> Response:
        path = request.url.path
        vendor = UNUSUAL_WHALES if path.startswith("/api/") else POLYGON
        stats.record(path)
        if not stats.admit(faults.rate_limit_per_second):
            return _send(Reply(429, dumps({"status": "ERROR", "request_id": request_id(), "error": MSG_429})))
        hits = faults.take(path, vendor, RESPONSE_FAULTS | {"latency", "timeout", "truncated_json"})
        kinds = {f.kind: f for f in hits}
        if "latency" in kinds:
            await asyncio.sleep(kinds["latency"].seconds if kinds["latency"].seconds is not None else 0.5)
        if "timeout" in kinds:
            await asyncio.sleep(kinds["timeout"].seconds if kinds["timeout"].seconds is not None else 30.0)
        if "connection_reset" in kinds:
            if _abort_connection(request.scope):
                return Response(b"", status_code=200)  # never reaches the client: the socket is gone
            raise SimulatedConnectionReset("simulated connection reset")
        fault_reply = _fault_reply(kinds, vendor)
        if fault_reply is not None:
            return _send(fault_reply)
        auth_reply = _check_auth(request, vendor)
        if auth_reply is not None:
            return _send(auth_reply)
        params = {k: v for k, v in request.query_params.items() if k != "apiKey"}
        reply: Reply | None = None
        if vendor == POLYGON and recorded:
            key = (
                path,
                tuple(
                    sorted(
                        (k, v)
                        for k, v in parse_qsl(request.url.query, keep_blank_values=True)
                        if k != "apiKey"
                    )
                ),
            )
            body = recorded.get(key)
            if body is not None:
                reply = Reply(200, body)
        if reply is None:
            query = "&".join(f"{k}={v}" for k, v in params.items())
            call = Call(path, vendor, params, dict(request.path_params), query, faults)
            try:
                reply = await run_in_threadpool(endpoint, market, call)
            except BadRequest as exc:
                if vendor == UNUSUAL_WHALES:
                    reply = Reply(
                        422,
                        dumps(
                            {
                                "msg": str(exc),
                                "path": path,
                                "query": query,
                                "url": f"{request.url.netloc}{path}" + (f"?{query}" if query else ""),
                            }
                        ),
                    )
                else:
                    reply = polygon_error(400, str(exc))
            except Exception:
                if vendor == UNUSUAL_WHALES:
                    reply = Reply(500, b"Something went wrong", "text/plain")
                else:
                    raise
        if "truncated_json" in kinds and reply.status == 200:
            reply = Reply(200, reply.body[: max(len(reply.body) // 2, 1)], reply.media_type, reply.headers)
        if vendor == UNUSUAL_WHALES and reply.status == 200:
            reply.headers.update(usage.headers(market.now()))
        return _send(reply)

    def _check_auth(request: Request, vendor: str) -> Reply | None:
        header = request.headers.get("authorization", "")
        token = header[7:].strip() if header.lower().startswith("bearer ") else ""
        if vendor == POLYGON:
            if not token and not request.query_params.get("apiKey"):
                return polygon_error(401, "API Key was not provided")
            return None
        if not token:
            return Reply(401, dumps({"code": "unauthorized", "message": "Missing or invalid API token"}))
        return None

    async def set_faults(request: Request) -> Response:
        payload = await request.json()
        if isinstance(payload, dict):
            items = payload.get("faults", [])
            if "rate_limit_per_second" in payload:
                faults.rate_limit_per_second = payload["rate_limit_per_second"]
        else:
            items = payload
        try:
            plan = [Fault.from_dict(item) for item in items]
        except (TypeError, ValueError) as exc:
            return Response(dumps({"error": str(exc)}), 400, media_type="application/json")
        faults.replace(plan)
        return Response(
            dumps(
                {"faults": [f.to_dict() for f in plan], "rate_limit_per_second": faults.rate_limit_per_second}
            ),
            media_type="application/json",
        )

    async def get_faults(request: Request) -> Response:
        return Response(
            dumps(
                {
                    "faults": [f.to_dict() for f in faults.faults],
                    "rate_limit_per_second": faults.rate_limit_per_second,
                }
            ),
            media_type="application/json",
        )

    async def clear_faults(request: Request) -> Response:
        faults.clear()
        return Response(dumps({"faults": []}), media_type="application/json")

    async def get_stats(request: Request) -> Response:
        return Response(dumps(stats.snapshot()), media_type="application/json")

    async def reset_stats(request: Request) -> Response:
        stats.reset()
        return Response(dumps(stats.snapshot()), media_type="application/json")

    routes = [
        vendor_route("/v2/aggs/ticker/{ticker}/range/{multiplier}/{timespan}/{from}/{to}", aggregates),
        vendor_route("/v2/aggs/grouped/locale/us/market/stocks/{date}", grouped_daily),
        vendor_route("/v3/trades/{ticker}", lambda m, c: ticks(m, c, "trades")),
        vendor_route("/v3/quotes/{ticker}", lambda m, c: ticks(m, c, "quotes")),
        vendor_route("/v3/snapshot/options/{underlying}", options_snapshot),
        vendor_route("/v3/reference/options/contracts", options_contracts),
        vendor_route("/v3/reference/tickers", reference_tickers),
        vendor_route("/v1/marketstatus/now", market_status_now),
        vendor_route("/v1/marketstatus/upcoming", market_status_upcoming),
        vendor_route("/api/option-trades/flow-alerts", uw_flow_alerts),
        vendor_route("/api/stock/{ticker}/option-contracts", uw_option_contracts),
        Route("/_sim/faults", set_faults, methods=["POST"]),
        Route("/_sim/faults", get_faults, methods=["GET"]),
        Route("/_sim/faults", clear_faults, methods=["DELETE"]),
        Route("/_sim/stats", get_stats, methods=["GET"]),
        Route("/_sim/stats", reset_stats, methods=["DELETE"]),
    ]
    recorded_paths = {path for path, _ in recorded}

    async def recorded_only(request: Request) -> Response:
        return await _pipeline(request, _not_found)

    routes += [
        Route(p, recorded_only, methods=["GET"])
        for p in sorted(recorded_paths)
        if not any(r.matches({"type": "http", "path": p, "method": "GET"})[0] == Match.FULL for r in routes)
    ]
    app = Starlette(routes=routes)
    app.state.market = market
    app.state.faults = faults
    app.state.stats = stats
    return app


def _not_found(market: SimulatedMarket, call: Call) -> Reply:
    return polygon_error(404, "Not Found", label="NOT_FOUND")


def _fault_reply(kinds: dict[str, Fault], vendor: str) -> Reply | None:
    if "http_401" in kinds:
        return Reply(401, dumps({"status": "ERROR", "request_id": request_id(), "error": "Unknown API Key"}))
    if "http_403" in kinds:
        return Reply(403, dumps({"status": "NOT_AUTHORIZED", "request_id": request_id(), "message": MSG_403}))
    if "http_429" in kinds:
        fault = kinds["http_429"]
        headers = {"Retry-After": str(math.ceil(fault.retry_after))} if fault.retry_after is not None else {}
        return Reply(
            429, dumps({"status": "ERROR", "request_id": request_id(), "error": MSG_429}), headers=headers
        )
    if "http_5xx_html" in kinds:
        status = kinds["http_5xx_html"].status or 502
        return Reply(status, _nginx_html(status), "text/html")
    if "http_5xx_empty" in kinds:
        return Reply(kinds["http_5xx_empty"].status or 503, b"", "application/json")
    if "http_500_text" in kinds:
        return Reply(kinds["http_500_text"].status or 500, b"Something went wrong", "text/plain")
    return None


def _send(reply: Reply) -> Response:
    return Response(reply.body, status_code=reply.status, media_type=reply.media_type, headers=reply.headers)
