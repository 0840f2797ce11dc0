"""Issue 11 target 3: the simulator's connections and its rendered tick pages."""

from __future__ import annotations

import datetime as dt
import socket

import httpx
import numpy as np
import orjson
from starlette.requests import Request
from starlette.responses import JSONResponse

from trading_data.calendar import NEW_YORK
from trading_data.sources.simulator import json_rows
from trading_data.sources.simulator.block_cache import BlockCache
from trading_data.sources.simulator.fault_replies import TRANSPORT_KEY
from trading_data.sources.simulator.intraday import QuoteBlock
from trading_data.sources.simulator.market import SimulatedMarket
from trading_data.sources.simulator.server import SimulatorServer

AFTER = dt.datetime(2026, 11, 21, 12, 0, tzinfo=NEW_YORK)


def test_connections_send_without_nagle_delay() -> None:
    """Accepted connections have TCP_NODELAY: a response written in two parts (headers, then body) must
    not wait for the client's delayed ACK (~40 ms a request on Linux loopback)."""

    async def nodelay(request: Request) -> JSONResponse:
        sock = request.scope["extensions"][TRANSPORT_KEY].get_extra_info("socket")
        return JSONResponse({"nodelay": sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)})

    with SimulatorServer(SimulatedMarket(7, now=lambda: AFTER)) as sim:
        sim.app.add_route("/_test/nodelay", nodelay)
        answer = httpx.get(sim.base_url + "/_test/nodelay").json()
    assert answer["nodelay"] != 0


def test_rendered_rows_are_orjson_of_the_row_dicts() -> None:
    """Every kind of slot (small and wide ints, mixed widths, negatives, floats, optional members)."""
    ints = np.array([0, 7, 10, 12_345, 1_795_185_000_000_845_988, -3, 99_999], dtype=np.int64)
    prices = np.array([546.76, 5.0, 0.01, 1234.5678, 1e16, 0.1, 3.0])
    small = np.array([1, 21, 4, 4, 0, 9, 15], dtype=np.int64)
    present = small == 4
    rendered = json_rows.array_of_objects(
        len(ints),
        [
            json_rows.literal(b'{"a":'),
            json_rows.ints(ints),
            json_rows.literal(b',"p":'),
            json_rows.floats(prices),
            json_rows.literal(b',"e":'),
            json_rows.ints(small),
            json_rows.only_where(json_rows.literal(b',"t":'), present),
            json_rows.only_where(json_rows.ints(small * 1000), present),
            json_rows.literal(b"}"),
        ],
    )
    expected = [
        {"a": a, "p": p, "e": e} | ({"t": e * 1000} if e == 4 else {})
        for a, p, e in zip(ints.tolist(), prices.tolist(), small.tolist(), strict=True)
    ]
    assert rendered == orjson.dumps(expected)


def test_block_cache_keeps_at_most_its_rows_and_serves_read_only_blocks() -> None:
    market = SimulatedMarket(7, now=lambda: AFTER)
    day = dt.date(2026, 11, 20)
    sizes = [len(market.quote_block("MSFT", day, minute)) for minute in range(3)]
    cache = BlockCache(max_rows=sizes[0] + sizes[1])
    built: list[int] = []

    def build(minute: int) -> QuoteBlock:
        built.append(minute)
        return SimulatedMarket(7, now=lambda: AFTER).quote_block("MSFT", day, minute)

    for minute in (0, 1, 0, 2, 1):
        block = cache.get(("quotes", "MSFT", day, minute), lambda m=minute: build(m))
    assert built == [0, 1, 2, 1]  # 0 came from the cache; 2 pushed 1 out, the least recently used
    assert cache.rows <= cache.max_rows
    assert not block.bid.flags.writeable
