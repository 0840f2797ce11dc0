"""Unusual Whales endpoints (flow alerts, option contracts) and the ``x-uw-*`` usage counters."""

from __future__ import annotations

import datetime as dt
import threading
from typing import Any

import numpy as np

from trading_data import calendar
from trading_data.sources.simulator.market import NS_PER_MS, SimulatedMarket, decimal_string
from trading_data.sources.simulator.protocol import (
    BadRequest,
    Call,
    Reply,
    dumps,
    ms_date,
    parse_bool,
    parse_int,
    parse_unix_or_iso_ms,
)

UW_DAILY_LIMIT = 15_000
UW_MINUTE_LIMIT = 120


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
        candidates = sorted(t for t in wanted if market.profile(t) is not None)
    end_day = ms_date(min(older, now_ms))
    start_day = ms_date(newer) if newer is not None else end_day - dt.timedelta(days=45)
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
