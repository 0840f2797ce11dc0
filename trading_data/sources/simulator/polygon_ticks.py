"""Polygon v3 trades and quotes (``/v3/trades/{ticker}``, ``/v3/quotes/{ticker}``), paged by cursor."""

from __future__ import annotations

from typing import Any

import numpy as np

from trading_data.sources.simulator.market import NS_PER_MINUTE, SimulatedMarket
from trading_data.sources.simulator.protocol import (
    BadRequest,
    Call,
    Reply,
    decode_cursor,
    next_url,
    parse_int,
    parse_ns,
    polygon_ok,
)


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
        profile = market.profile(ticker)
        tape = profile.tape if profile is not None else 3
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


def quotes(market: SimulatedMarket, call: Call) -> Reply:
    """``/v3/quotes/{ticker}``."""
    return ticks(market, call, "quotes")


def trades(market: SimulatedMarket, call: Call) -> Reply:
    """``/v3/trades/{ticker}``."""
    return ticks(market, call, "trades")
