"""Polygon options: the chain snapshot and the contracts reference."""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable
from typing import Any

import numpy as np

from trading_data import calendar
from trading_data.sources.simulator.market import NS_PER_MINUTE, OptionChain, SimulatedMarket, to_ns
from trading_data.sources.simulator.protocol import (
    BadRequest,
    Call,
    Reply,
    next_url,
    offset_next,
    offset_page,
    parse_bool,
    polygon_ok,
)


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


def options_snapshot(market: SimulatedMarket, call: Call) -> Reply:
    """``/v3/snapshot/options/{underlying}`` (limit <= 250)."""
    underlying = call.path_params["underlying"]
    params, offset, limit, _ = offset_page(call, 10, 250)
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
    link = offset_next(call, f"/v3/snapshot/options/{underlying}", params, offset, limit, len(rows))
    return polygon_ok({}, results, next_url=link)


def options_contracts(market: SimulatedMarket, call: Call) -> Reply:
    """``/v3/reference/options/contracts`` (underlying_ticker, expiration_date, limit <= 1000)."""
    params, offset, limit, _ = offset_page(call, 10, 1000)
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
