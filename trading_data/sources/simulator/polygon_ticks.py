"""Polygon v3 trades and quotes (``/v3/trades/{ticker}``, ``/v3/quotes/{ticker}``), paged by cursor.

A page walks the session's minute blocks in the requested order from the cursor's position
(``[minute start ns, row index in that block]``) and stops at ``limit`` rows. Rows are rendered with
dict literals over column lists: that, not generating the blocks, is most of a page's cost.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import orjson

from trading_data.sources.simulator import json_rows
from trading_data.sources.simulator.market import NS_PER_MINUTE, QuoteBlock, SimulatedMarket, TradeBlock
from trading_data.sources.simulator.protocol import (
    BadRequest,
    Call,
    Reply,
    decode_cursor,
    next_url,
    parse_int,
    parse_ns,
    polygon_envelope,
    polygon_ok,
)

CONDITIONS = {1: [37], 2: [14, 41]}  # TradeBlock.condition_code -> Polygon condition codes
TRF_EXCHANGE = 4  # FINRA trade reporting facilities: trades carry trf_id and trf_timestamp


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


@dataclass(frozen=True)
class TickPage:
    """What one page asks for: the time bounds, order, page size and where the previous page ended."""

    lo: int
    hi: int
    order: str
    limit: int
    position: tuple[int, int] | None = None  # (minute start ns, row index) of the last row sent
    inclusive: bool = False  # repeat the last row sent (the repeat_last_row fault)

    @property
    def descending(self) -> bool:
        return self.order == "desc"

    @classmethod
    def from_call(cls, call: Call) -> TickPage:
        params = call.params
        if "cursor" in params:
            state = decode_cursor(params["cursor"])
            position = state.get("p")
            return cls(
                int(state["lo"]),
                int(state["hi"]),
                state["o"],
                int(state["l"]),
                (int(position[0]), int(position[1])) if position is not None else None,
                call.page_fault("repeat_last_row"),
            )
        lo, hi = _tick_bounds(params)
        order = params.get("order", "desc")
        if order not in ("asc", "desc"):
            raise BadRequest("order must be asc or desc")
        if params.get("sort", "timestamp") != "timestamp":
            raise BadRequest("sort must be timestamp")
        return cls(lo, hi, order, parse_int(params, "limit", 1000, 1, 50000))

    def scan_range(self, now_ns: int) -> tuple[int, int, int]:
        """(scan from, scan to, last ns with data): the minute blocks this page may touch."""
        hi_eff = min(self.hi, now_ns)
        scan_lo, scan_hi = self.lo, hi_eff
        if self.position is not None:
            if self.descending:
                scan_hi = min(scan_hi, self.position[0] + NS_PER_MINUTE - 1)
            else:
                scan_lo = max(scan_lo, self.position[0])
        return scan_lo, scan_hi, hi_eff

    def rows_of(self, block: QuoteBlock | TradeBlock, start_ns: int, hi_eff: int) -> np.ndarray:
        """Indexes of the block's rows on this page, in page order."""
        idx = np.arange(len(block))
        mask = (block.sip_ns >= self.lo) & (block.sip_ns <= hi_eff)
        if self.position is not None and start_ns == self.position[0]:
            p = self.position[1]
            if self.descending:
                mask &= (idx <= p) if self.inclusive else (idx < p)
            else:
                mask &= (idx >= p) if self.inclusive else (idx > p)
        sel = idx[mask]
        return sel[::-1] if self.descending else sel


def _blocks(
    market: SimulatedMarket, ticker: str, kind: str, page: TickPage
) -> Iterator[tuple[QuoteBlock | TradeBlock, int, np.ndarray]]:
    """(block, minute start ns, rows on the page) of every non-empty block the page may touch."""
    scan_lo, scan_hi, hi_eff = page.scan_range(market.now_ns())
    build = market.quote_block if kind == "quotes" else market.trade_block
    for day, minute, start_ns in market.minute_blocks(ticker, scan_lo, scan_hi, page.descending):
        block = build(ticker, day, minute)
        if len(block):
            yield block, start_ns, page.rows_of(block, start_ns, hi_eff)


def ticks(market: SimulatedMarket, call: Call, kind: str) -> Reply:
    """``/v3/quotes/{ticker}`` and ``/v3/trades/{ticker}``, paged with an opaque cursor."""
    ticker = call.path_params["ticker"]
    page = TickPage.from_call(call)
    chunks: list[dict[str, np.ndarray]] = []
    got = 0
    last_pos: tuple[int, int] | None = None
    more = False
    for block, start_ns, sel in _blocks(market, ticker, kind, page):
        if got >= page.limit or len(sel) > page.limit - got:
            more = more or len(sel) > 0
            sel = sel[: max(page.limit - got, 0)]
        if len(sel):
            chunks.append({name: getattr(block, name)[sel] for name in block.__dataclass_fields__})
            got += len(sel)
            last_pos = (start_ns, int(sel[-1]))
        if more:
            break
    link = None
    if more and last_pos is not None:
        pos = None if call.page_fault("next_url_cycle") else list(last_pos)
        state = {"lo": page.lo, "hi": page.hi, "o": page.order, "l": page.limit, "p": pos}
        link = next_url(f"/v3/{kind}/{ticker}", state)
    if not chunks:
        return polygon_ok({}, None, next_url=link)
    cols = {name: np.concatenate([c[name] for c in chunks]) for name in chunks[0]}
    profile = market.profile(ticker)
    tape = profile.tape if profile is not None else 3
    head, tail = polygon_envelope({}, next_url=link)  # rendered around the rows, in one buffer
    rows = _quote_rows if kind == "quotes" else _trade_rows
    return Reply(200, rows(cols, tape, head, tail))


def _quote_rows(cols: dict[str, np.ndarray], tape: int, before: bytes = b"", after: bytes = b"") -> bytes:
    """The page's ``results`` array, keys in Polygon's order (between ``before`` and ``after``)."""
    return json_rows.array_of_objects(
        len(cols["sip_ns"]),
        [
            json_rows.literal(b'{"ask_exchange":'),
            json_rows.ints(cols["ask_exchange"]),
            json_rows.literal(b',"ask_price":'),
            json_rows.floats(cols["ask"]),
            json_rows.literal(b',"ask_size":'),
            json_rows.ints(cols["ask_size"]),
            json_rows.literal(b',"bid_exchange":'),
            json_rows.ints(cols["bid_exchange"]),
            json_rows.literal(b',"bid_price":'),
            json_rows.floats(cols["bid"]),
            json_rows.literal(b',"bid_size":'),
            json_rows.ints(cols["bid_size"]),
            json_rows.literal(b',"participant_timestamp":'),
            json_rows.ints(cols["participant_ns"]),
            json_rows.literal(b',"sequence_number":'),
            json_rows.ints(cols["sequence"]),
            json_rows.literal(b',"sip_timestamp":'),
            json_rows.ints(cols["sip_ns"]),
            json_rows.literal(b',"tape":%d}' % tape),
        ],
        before,
        after,
    )


def _trade_rows(cols: dict[str, np.ndarray], tape: int, before: bytes = b"", after: bytes = b"") -> bytes:
    """The page's ``results`` array: ``conditions`` first when there are any, ``trf_*`` last on TRF trades
    (between ``before`` and ``after``)."""
    size = cols["size"]
    sizes = (
        json_rows.ints(size.astype(np.int64)) if np.all(size == np.round(size)) else json_rows.floats(size)
    )
    exchange, trade_id, participant = cols["exchange"], cols["trade_id"], cols["participant_ns"]
    condition_texts = [
        b'"conditions":%s,' % orjson.dumps(CONDITIONS[code]) if code in CONDITIONS else b""
        for code in range(max(CONDITIONS) + 1)
    ]
    trf = exchange == TRF_EXCHANGE
    return json_rows.array_of_objects(
        len(cols["sip_ns"]),
        [
            json_rows.literal(b"{"),
            json_rows.texts(condition_texts, cols["condition_code"]),
            json_rows.literal(b'"exchange":'),
            json_rows.ints(exchange),
            json_rows.literal(b',"id":"'),
            json_rows.ints(trade_id),
            json_rows.literal(b'","participant_timestamp":'),
            json_rows.ints(participant),
            json_rows.literal(b',"price":'),
            json_rows.floats(cols["price"]),
            json_rows.literal(b',"sequence_number":'),
            json_rows.ints(cols["sequence"]),
            json_rows.literal(b',"sip_timestamp":'),
            json_rows.ints(cols["sip_ns"]),
            json_rows.literal(b',"size":'),
            sizes,
            json_rows.literal(b',"tape":%d' % tape),
            json_rows.only_where(json_rows.literal(b',"trf_id":'), trf),
            json_rows.only_where(json_rows.ints(201 + trade_id % 3), trf),
            json_rows.only_where(json_rows.literal(b',"trf_timestamp":'), trf),
            json_rows.only_where(json_rows.ints(participant - 20_000), trf),
            json_rows.literal(b"}"),
        ],
        before,
        after,
    )


def quotes(market: SimulatedMarket, call: Call) -> Reply:
    """``/v3/quotes/{ticker}``."""
    return ticks(market, call, "quotes")


def trades(market: SimulatedMarket, call: Call) -> Reply:
    """``/v3/trades/{ticker}``."""
    return ticks(market, call, "trades")
