"""Polygon (Massive) REST client: bars, whole-market daily bars, trades, quotes, options, universe.

Every method returns validated DataFrames (see ``trading_data.sources.polygon_parsing``); high-volume feeds
(trades, quotes) also stream one DataFrame per page so memory stays bounded. The streamed pages
(``iter_trades``/``iter_quotes``) carry the model's dtypes but are left to the IO manager to validate.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator, Mapping
from typing import Any

import pandas as pd

from trading_data import calendar, schemas
from trading_data.clock import utc_now
from trading_data.settings.platform import POLYGON_API_KEY, POLYGON_BASE_URL, POLYGON_RATE_LIMIT_PER_MINUTE
from trading_data.sources import paging, polygon_parsing
from trading_data.sources.client import VendorClient
from trading_data.sources.errors import MalformedResponse
from trading_data.sources.paging import RowKey
from trading_data.sources.rate_limit import RateLimit

VENDOR = "polygon"
ENV_VAR = POLYGON_API_KEY.env_var
DEFAULT_BASE_URL = POLYGON_BASE_URL.default
FREE_PLAN = RateLimit.per_minute(POLYGON_RATE_LIMIT_PER_MINUTE.default)
OK_STATUSES = frozenset({"OK", "DELAYED"})
MAX_TICK_LIMIT = 50_000
TIMESPANS = ("minute", "day")


def check_body(body: Any) -> str | None:
    """Problems with a 2xx body: Polygon answers ``status`` ``OK``/``DELAYED`` on success."""
    if isinstance(body, list):  # /v1/marketstatus/upcoming is a bare array
        return None
    if not isinstance(body, dict):
        return f"expected a JSON object, got {type(body).__name__}"
    status = body.get("status")
    if status is not None and status not in OK_STATUSES and "market" not in body:
        return f"status {status!r}" + (
            f": {body.get('error') or body.get('message')}"
            if body.get("error") or body.get("message")
            else ""
        )
    return None


def _trade_key(row: Mapping[str, Any]) -> tuple[Any, ...]:
    return (row.get("sip_timestamp"), row.get("sequence_number"), row.get("exchange"), row.get("id"))


def _quote_key(row: Mapping[str, Any]) -> tuple[Any, ...]:
    return (row.get("sip_timestamp"), row.get("sequence_number"))


# Per tick feed: the frame builder, the row key that spots rows repeated across pages, the model.
_TICK_FEEDS: dict[str, tuple[Any, RowKey, Any]] = {
    "trades": (polygon_parsing.trades_frame, _trade_key, schemas.Trades),
    "quotes": (polygon_parsing.quotes_frame, _quote_key, schemas.Quotes),
}
_TICK_DEFAULTS: dict[str, Any] = {
    "gte_ns": None,
    "lt_ns": None,
    "session": None,
    "limit": MAX_TICK_LIMIT,
    "max_pages": 10_000,
}


def _date_or_ms(value: dt.date | dt.datetime | str | int) -> str:
    """Aggregates accept ``YYYY-MM-DD`` or a ms epoch for ``from``/``to``."""
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: pass an aware datetime")
        return str(int(value.timestamp() * 1000))
    if isinstance(value, dt.date):
        return value.isoformat()
    return str(value)


def _ns(value: dt.datetime | int) -> int:
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: pass an aware datetime")
        return int(pd.Timestamp(value).value)
    return int(value)


def session_window_ns(session: dt.date | str) -> tuple[int, int]:
    """The partition window of ``session`` (New York midnight to midnight) as ns epochs [gte, lt)."""
    start, end = calendar.session_window(calendar.session(session).date)
    return _ns(start), _ns(end)


class PolygonClient(VendorClient):
    """Async Polygon client. ``async with PolygonClient.create(key) as polygon: ...``"""

    vendor = VENDOR
    env_var = ENV_VAR
    default_base_url = DEFAULT_BASE_URL
    default_rate_limit = FREE_PLAN
    http_options = {"body_check": check_body}

    # -- aggregates --------------------------------------------------------------------------------

    async def bars(
        self,
        ticker: str,
        multiplier: int,
        timespan: str,
        start: dt.date | dt.datetime | str | int,
        end: dt.date | dt.datetime | str | int,
        adjusted: bool = True,
        *,
        limit: int = MAX_TICK_LIMIT,
        max_pages: int = 1000,
    ) -> pd.DataFrame:
        """OHLCV bars from ``start`` to ``end`` inclusive → ``schemas.Prices`` (``ts`` = window start)."""
        if timespan not in TIMESPANS:
            raise ValueError(f"timespan must be one of {TIMESPANS}, got {timespan!r}")
        path = (
            f"/v2/aggs/ticker/{ticker}/range/{int(multiplier)}/{timespan}/"
            f"{_date_or_ms(start)}/{_date_or_ms(end)}"
        )
        rows = await paging.paginate(
            self.http,
            path,
            {"adjusted": adjusted, "sort": "asc", "limit": limit},
            key=lambda r: r.get("t"),
            max_pages=max_pages,
        )
        return polygon_parsing.bars_frame(rows, ticker, timespan)

    async def grouped_daily(self, date: dt.date | str, adjusted: bool = True) -> pd.DataFrame:
        """Every US stock's daily bar for ``date`` → ``models.GroupedDaily`` (``ticker`` from ``T``)."""
        day = date.isoformat() if isinstance(date, dt.date) else date
        body = await self.http.get_json(
            f"/v2/aggs/grouped/locale/us/market/stocks/{day}", {"adjusted": adjusted}
        )
        return polygon_parsing.grouped_daily_frame(self._results(body, "grouped daily"))

    # -- trades and quotes -------------------------------------------------------------------------

    def _tick_params(
        self,
        gte_ns: dt.datetime | int | None,
        lt_ns: dt.datetime | int | None,
        session: dt.date | str | None,
        limit: int,
    ) -> dict[str, Any]:
        if session is not None:
            if gte_ns is not None or lt_ns is not None:
                raise ValueError("pass either session or gte_ns/lt_ns, not both")
            gte_ns, lt_ns = session_window_ns(session)
        params: dict[str, Any] = {"order": "asc", "sort": "timestamp", "limit": min(limit, MAX_TICK_LIMIT)}
        if gte_ns is not None:
            params["timestamp.gte"] = _ns(gte_ns)
        if lt_ns is not None:
            params["timestamp.lt"] = _ns(lt_ns)
        return params

    async def _iter_tick_frames(
        self,
        kind: str,
        ticker: str,
        *,
        gte_ns: dt.datetime | int | None = None,
        lt_ns: dt.datetime | int | None = None,
        session: dt.date | str | None = None,
        limit: int = MAX_TICK_LIMIT,
        max_pages: int = 10_000,
        validate: bool = False,
    ) -> AsyncIterator[pd.DataFrame]:
        build, key, _ = _TICK_FEEDS[kind]
        params = self._tick_params(gte_ns, lt_ns, session, limit)
        async for rows in paging.iter_pages(
            self.http, f"/v3/{kind}/{ticker}", params, key=key, max_pages=max_pages
        ):
            frame = build(rows, ticker, validate=validate)
            # While the frame waits for the consumer, the page's decoded rows (~60 MB for 50,000 quotes)
            # must not stay referenced here: the next page is fetched and decoded meanwhile.
            del rows
            yield frame

    async def _all_ticks(self, kind: str, ticker: str, window: dict[str, Any]) -> pd.DataFrame:
        build, _, model = _TICK_FEEDS[kind]
        frames = [
            f
            async for f in self._iter_tick_frames(
                kind, ticker, **{**_TICK_DEFAULTS, **window, "validate": False}
            )
        ]
        if not frames:
            return build([], ticker, validate=True)
        return model.validate(pd.concat(frames, ignore_index=True))

    def iter_trades(self, ticker: str, **window: Any) -> AsyncIterator[pd.DataFrame]:
        """One ``schemas.Trades`` frame per page, oldest first, for [gte_ns, lt_ns) or a session's day.

        The pages have the model's columns and dtypes but are not validated unless ``validate``: the
        assets stream them to the IO manager, which validates every chunk before writing it, and a
        second pandera pass per page (~16 ms) would keep fewer requests in flight. :meth:`trades`
        validates.
        """
        return self._iter_tick_frames("trades", ticker, **window)

    async def trades(self, ticker: str, **window: Any) -> pd.DataFrame:
        """All trades in the window as one validated frame (see :meth:`iter_trades`)."""
        return await self._all_ticks("trades", ticker, window)

    def iter_quotes(self, ticker: str, **window: Any) -> AsyncIterator[pd.DataFrame]:
        """One ``schemas.Quotes`` frame per page, oldest first, for [gte_ns, lt_ns) or a session's day
        (validation as in :meth:`iter_trades`)."""
        return self._iter_tick_frames("quotes", ticker, **window)

    # -- options -----------------------------------------------------------------------------------

    async def option_chain_snapshot(
        self,
        underlying: str,
        *,
        polled_at: dt.datetime | None = None,
        limit: int = 250,
        max_pages: int = 200,
    ) -> pd.DataFrame:
        """The option chain (greeks, IV, OI) → ``schemas.OptionsFlow`` rows of type ``chain_snapshot``."""
        polled = polled_at or utc_now()
        rows = await paging.paginate(
            self.http,
            f"/v3/snapshot/options/{underlying}",
            {"limit": min(limit, 250)},
            key=lambda r: (r.get("details") or {}).get("ticker"),
            max_pages=max_pages,
        )
        return polygon_parsing.chain_snapshot_frame(rows, underlying, polled)

    async def option_contracts(
        self,
        underlying: str,
        expiration_date: dt.date | str | None = None,
        *,
        limit: int = 1000,
        max_pages: int = 200,
    ) -> pd.DataFrame:
        """Listed contracts for ``underlying`` → ``models.OptionContracts``."""
        params: dict[str, Any] = {"underlying_ticker": underlying, "limit": min(limit, 1000)}
        if expiration_date is not None:
            params["expiration_date"] = (
                expiration_date.isoformat() if isinstance(expiration_date, dt.date) else expiration_date
            )
        rows = await paging.paginate(
            self.http,
            "/v3/reference/options/contracts",
            params,
            key=lambda r: r.get("ticker"),
            max_pages=max_pages,
        )
        return polygon_parsing.option_contracts_frame(rows)

    # -- reference ---------------------------------------------------------------------------------

    async def tickers(
        self, market: str = "stocks", *, active: bool = True, limit: int = 1000, max_pages: int = 100
    ) -> pd.DataFrame:
        """The ticker universe → ``models.TickerUniverse``."""
        rows = await paging.paginate(
            self.http,
            "/v3/reference/tickers",
            {"market": market, "active": active, "limit": min(limit, 1000)},
            key=lambda r: r.get("ticker"),
            max_pages=max_pages,
        )
        return polygon_parsing.tickers_frame(rows)

    async def market_status_now(self) -> dict[str, Any]:
        """``/v1/marketstatus/now`` as returned (``market``, ``exchanges``, ``serverTime``, …)."""
        body = await self.http.get_json("/v1/marketstatus/now")
        if not isinstance(body, dict) or "market" not in body:
            raise MalformedResponse("polygon GET /v1/marketstatus/now: no 'market' field", vendor=VENDOR)
        return body

    @staticmethod
    def _results(body: Any, what: str) -> list[dict[str, Any]]:
        """``results`` of a single-page answer; absent means no data (a legit empty frame)."""
        rows = body.get("results", []) if isinstance(body, dict) else None
        if not isinstance(rows, list):
            raise MalformedResponse(f"polygon {what}: 'results' is not a list", vendor=VENDOR)
        return rows
