"""The simulator's HTTP face: a Starlette app speaking Polygon and Unusual Whales REST JSON.

Polygon paths (``/v1``, ``/v2``, ``/v3``) and Unusual Whales paths (``/api``) share one app; every
vendor request goes through :class:`~trading_data.sources.simulator.pipeline.VendorPipeline` (stats,
rate limit, faults, auth, recorded responses, the endpoint, body faults). ``/_sim/...`` admin
endpoints are exempt. The endpoints live one vendor family per module.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path

from starlette.applications import Starlette
from starlette.routing import Match, Route

from trading_data.sources.simulator.admin import admin_routes
from trading_data.sources.simulator.fault_replies import TRANSPORT_KEY
from trading_data.sources.simulator.faults import FaultInjector, RequestStats
from trading_data.sources.simulator.market import SimulatedMarket
from trading_data.sources.simulator.pipeline import Endpoint, VendorPipeline
from trading_data.sources.simulator.polygon_aggs import aggregates, grouped_daily
from trading_data.sources.simulator.polygon_options import options_contracts, options_snapshot
from trading_data.sources.simulator.polygon_reference import (
    market_status_now,
    market_status_upcoming,
    reference_tickers,
)
from trading_data.sources.simulator.polygon_ticks import quotes, trades
from trading_data.sources.simulator.protocol import Call, Reply, polygon_error
from trading_data.sources.simulator.recorded import load_recorded
from trading_data.sources.simulator.unusual_whales import uw_flow_alerts, uw_option_contracts

__all__ = ["ENDPOINTS", "TRANSPORT_KEY", "create_app"]

ENDPOINTS: dict[str, Endpoint] = {
    "/v2/aggs/ticker/{ticker}/range/{multiplier}/{timespan}/{from}/{to}": aggregates,
    "/v2/aggs/grouped/locale/us/market/stocks/{date}": grouped_daily,
    "/v3/trades/{ticker}": trades,
    "/v3/quotes/{ticker}": quotes,
    "/v3/snapshot/options/{underlying}": options_snapshot,
    "/v3/reference/options/contracts": options_contracts,
    "/v3/reference/tickers": reference_tickers,
    "/v1/marketstatus/now": market_status_now,
    "/v1/marketstatus/upcoming": market_status_upcoming,
    "/api/option-trades/flow-alerts": uw_flow_alerts,
    "/api/stock/{ticker}/option-contracts": uw_option_contracts,
}


def _not_found(market: SimulatedMarket, call: Call) -> Reply:
    return polygon_error(404, "Not Found", label="NOT_FOUND")


def create_app(
    market: SimulatedMarket | None = None,
    faults: FaultInjector | None = None,
    *,
    seed: int = 7,
    now: Callable[[], dt.datetime] | None = None,
    stats: RequestStats | None = None,
    recorded_dir: Path | str | None = None,
) -> Starlette:
    """The simulator app. ``app.state`` holds ``market``, ``faults`` and ``stats``.

    ``recorded_dir``: a folder of recorded Polygon responses answered verbatim on an exact path and
    query match (apiKey ignored); None (the default) serves only the simulated market. A folder that
    does not exist raises ValueError.
    """
    market = market or SimulatedMarket(seed, now=now)
    faults = faults or FaultInjector()
    stats = stats or RequestStats()
    pipeline = VendorPipeline(market, faults, stats, load_recorded(recorded_dir))
    routes = [pipeline.route(path, endpoint) for path, endpoint in ENDPOINTS.items()]
    routes += admin_routes(faults, stats)
    # Recordings of paths the simulator does not model are served too (and 404 for other queries).
    routes += [
        pipeline.route(path, _not_found)
        for path in sorted({path for path, _ in pipeline.recorded})
        if not any(_matches(route, path) for route in routes)
    ]
    app = Starlette(routes=routes)
    app.state.market = market
    app.state.faults = faults
    app.state.stats = stats
    return app


def _matches(route: Route, path: str) -> bool:
    return route.matches({"type": "http", "path": path, "method": "GET"})[0] == Match.FULL
