"""Unusual Whales REST client: flow alerts (paged by time) and option contracts (paged by number)."""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import AsyncIterator
from typing import Any

import pandas as pd

from trading_data.domain.option_symbols import normalize_option_symbol
from trading_data.settings.platform import (
    UNUSUAL_WHALES_API_TOKEN,
    UNUSUAL_WHALES_BASE_URL,
    UNUSUAL_WHALES_RATE_LIMIT_PER_MINUTE,
)
from trading_data.sources import unusual_whales_parsing
from trading_data.sources.client import VendorClient
from trading_data.sources.errors import MalformedResponse, PageLimitExceeded, PagingLoopError
from trading_data.sources.rate_limit import RateLimit

VENDOR = "unusual_whales"
ENV_VAR = UNUSUAL_WHALES_API_TOKEN.env_var
DEFAULT_BASE_URL = UNUSUAL_WHALES_BASE_URL.default
BASIC_PLAN = RateLimit.per_minute(UNUSUAL_WHALES_RATE_LIMIT_PER_MINUTE.default)
FLOW_ALERTS_PATH = "/api/option-trades/flow-alerts"
MAX_FLOW_LIMIT = 200
MAX_CONTRACTS_LIMIT = 500


def check_body(body: Any) -> str | None:
    """Problems with a 2xx body: Unusual Whales wraps results as ``{"data": [...]}``."""
    if not isinstance(body, dict):
        return f"expected a JSON object, got {type(body).__name__}"
    if "data" not in body:
        return "no 'data' field"
    if not isinstance(body["data"], list):
        return f"'data' is {type(body['data']).__name__}, expected a list"
    return None


def _ms(value: dt.datetime | pd.Timestamp) -> int:
    ts = pd.Timestamp(value)
    if ts.tzinfo is None:
        raise ValueError(f"naive datetime {value!r}: pass an aware datetime")
    return int(ts.value // 1_000_000)


def _whole(value: float | None) -> float | int | None:
    """``50000.0`` → ``50000`` (the API parses whole numbers)."""
    return int(value) if isinstance(value, float) and value.is_integer() else value


def _ceil_ms(ts: pd.Timestamp) -> int:
    return math.ceil(ts.value / 1_000_000)


class UnusualWhalesClient(VendorClient):
    """Async Unusual Whales client. ``async with UnusualWhalesClient.create(token) as uw: ...``"""

    vendor = VENDOR
    env_var = ENV_VAR
    default_base_url = DEFAULT_BASE_URL
    default_rate_limit = BASIC_PLAN
    http_options = {
        "body_check": check_body,
        "usage_header_prefix": "x-uw-",
        "unparsed_error_statuses": (401, 429),
    }

    async def iter_flow_alerts(
        self,
        ticker: str | None,
        newer_than: dt.datetime,
        older_than: dt.datetime,
        min_premium: float | None = None,
        *,
        limit: int = MAX_FLOW_LIMIT,
        max_pages: int = 500,
    ) -> AsyncIterator[pd.DataFrame]:
        """Flow alerts in [newer_than, older_than), newest first, one ``schemas.OptionsFlow`` frame per page.

        Pages by time: each request asks for ``older_than`` = the oldest ``created_at`` seen so far
        (rounded up to the ms, so the edge overlaps) until a short or empty page, a page with nothing
        new, or the window's start is reached. Rows are deduplicated by alert id.
        """
        window_start = pd.Timestamp(newer_than)
        window_end = pd.Timestamp(older_than)
        newer_ms, cursor = _ms(window_start), _ms(window_end)
        limit = max(1, min(limit, MAX_FLOW_LIMIT))
        seen: set[str] = set()
        pages = 0
        while True:
            if pages >= max_pages:
                raise PageLimitExceeded(
                    f"{VENDOR} GET {FLOW_ALERTS_PATH}: more than max_pages={max_pages} pages of flow alerts "
                    f"for {ticker or 'all tickers'}; narrow the window or raise max_pages",
                    vendor=VENDOR,
                )
            params: dict[str, Any] = {
                "ticker_symbol": ticker,
                "limit": limit,
                "newer_than": newer_ms,
                "older_than": cursor,
                "min_premium": _whole(min_premium),
            }
            body = await self.http.get_json(FLOW_ALERTS_PATH, params)
            pages += 1
            self.stats.pages += 1
            rows: list[dict[str, Any]] = body["data"]
            if not rows:
                return
            times = [unusual_whales_parsing.flow_alert_time(r) for r in rows]
            fresh, unseen = [], 0
            for row, ts in zip(rows, times, strict=True):
                alert_id = unusual_whales_parsing.flow_alert_id(row)
                if alert_id in seen:
                    continue
                seen.add(alert_id)
                unseen += 1
                if window_start <= ts < window_end:
                    fresh.append(row)
            if fresh:
                self.stats.rows += len(fresh)
                yield unusual_whales_parsing.flow_alerts_frame(fresh)
            oldest = min(times)
            if not unseen or len(rows) < limit or oldest <= window_start:
                return
            cursor = min(cursor, _ceil_ms(oldest))

    async def flow_alerts(
        self,
        ticker: str | None,
        newer_than: dt.datetime,
        older_than: dt.datetime,
        min_premium: float | None = None,
        **options: Any,
    ) -> pd.DataFrame:
        """All flow alerts in the window as one frame (see :meth:`iter_flow_alerts`)."""
        frames = [
            f async for f in self.iter_flow_alerts(ticker, newer_than, older_than, min_premium, **options)
        ]
        if not frames:
            return unusual_whales_parsing.flow_alerts_frame([])
        df = pd.concat(frames, ignore_index=True)
        return df.drop_duplicates("record_id", keep="first").reset_index(drop=True)

    async def option_contracts(
        self,
        ticker: str,
        *,
        expiry: dt.date | str | None = None,
        limit: int = MAX_CONTRACTS_LIMIT,
        max_pages: int = 100,
    ) -> pd.DataFrame:
        """Every option contract of ``ticker`` with volume, OI and prices → ``models.OptionContractStats``."""
        path = f"/api/stock/{ticker}/option-contracts"
        limit = max(1, min(limit, MAX_CONTRACTS_LIMIT))
        seen: set[str] = set()
        collected: list[dict[str, Any]] = []
        for page in range(max_pages + 1):
            if page == max_pages:
                raise PageLimitExceeded(
                    f"{VENDOR} GET {path}: more than max_pages={max_pages} pages", vendor=VENDOR
                )
            params: dict[str, Any] = {
                "limit": limit,
                "page": page,
                "expiry": expiry.isoformat() if isinstance(expiry, dt.date) else expiry,
            }
            body = await self.http.get_json(path, params)
            self.stats.pages += 1
            rows: list[dict[str, Any]] = body["data"]
            fresh = [r for r in rows if normalize_option_symbol(str(r.get("option_symbol"))) not in seen]
            if rows and not fresh:
                raise PagingLoopError(
                    f"{VENDOR} GET {path}: page {page} repeated contracts already seen; "
                    "the vendor ignored the page parameter",
                    vendor=VENDOR,
                )
            seen.update(normalize_option_symbol(str(r.get("option_symbol"))) for r in fresh)
            collected.extend(fresh)
            if len(rows) < limit:
                break
        self.stats.rows += len(collected)
        try:
            return unusual_whales_parsing.option_contracts_frame(collected, ticker)
        except ValueError as exc:
            raise MalformedResponse(f"{VENDOR} GET {path}: {exc}", vendor=VENDOR) from exc
