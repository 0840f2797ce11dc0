"""Cursor paging (``next_url``): follow the vendor's cursor, drop rows repeated at page edges, stop cycles.

``next_url`` keeps only its path and query (its host varies and it never carries our key); the client's
base URL and auth are re-attached by the client.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Hashable, Mapping
from typing import Any, Protocol

import httpx

from trading_data.redact import without_credentials
from trading_data.sources.errors import MalformedResponse, PageLimitExceeded, PagingLoopError
from trading_data.sources.stats import ClientStats

QueryParams = Mapping[str, str | int | float | bool | None]
RowKey = Callable[[Mapping[str, Any]], Hashable]

EDGE_ROWS = 1000
"""Rows compared at each page edge: a page's first ``EDGE_ROWS`` against the previous page's last
``EDGE_ROWS``. A cursor repeats rows only where the previous page ended, and pages up to this size (every
feed but trades and quotes) are compared whole, as before."""


class PageSource(Protocol):
    """What paging needs of a client (``VendorHTTP`` is one)."""

    vendor: str
    stats: ClientStats

    async def get_json(self, path: str, params: QueryParams | None = None) -> Any: ...

    def describe(self, method: str, url: httpx.URL | str) -> str: ...


def cursor_path(next_url: str) -> str:
    """The path and query of an absolute ``next_url``, without scheme, host, port or credentials."""
    return httpx.URL(without_credentials(next_url)).raw_path.decode("ascii")


async def iter_pages(
    source: PageSource,
    path: str,
    params: QueryParams | None = None,
    *,
    results_key: str = "results",
    key: RowKey | None = None,
    max_pages: int = 1000,
) -> AsyncIterator[list[dict[str, Any]]]:
    """Yield the rows of each page, following ``next_url`` until it is absent.

    Rows at the start of a page whose ``key`` also appeared at the end of the previous page are dropped
    (a page may repeat the last row of the one before; see ``EDGE_ROWS``). A repeated cursor raises
    ``PagingLoopError``; more than ``max_pages`` pages raise ``PageLimitExceeded``. A page without ``results_key`` is an empty page, not an error.
    """
    vendor, stats = source.vendor, source.stats
    seen_cursors: set[str] = set()
    previous_keys: set[Hashable] = set()
    next_path: str | None = None
    pages = 0
    while True:
        if pages >= max_pages:
            raise PageLimitExceeded(
                f"{vendor} GET {path}: more than max_pages={max_pages} pages; narrow the request "
                "(time window, limit) or raise max_pages",
                vendor=vendor,
                url=path,
            )
        if next_path is None:
            body = await source.get_json(path, params)
        else:
            body = await source.get_json(next_path)
        pages += 1
        stats.pages += 1
        if not isinstance(body, dict):
            raise MalformedResponse(
                f"{vendor} GET {path}: expected a JSON object, got {type(body).__name__}",
                vendor=vendor,
                url=path,
            )
        rows = body.get(results_key, [])
        if not isinstance(rows, list):
            raise MalformedResponse(
                f"{vendor} GET {path}: '{results_key}' is {type(rows).__name__}, expected a list",
                vendor=vendor,
                url=path,
            )
        next_url = body.get("next_url")
        # Only the rows outlive this point: a page's decoded JSON (tens of MB for 50,000 rows) must not
        # stay referenced here while the next page is fetched and decoded.
        del body
        if key is not None:
            # Only the page edges are keyed: a 50,000-row page costs ~2 x EDGE_ROWS key calls, not 50,000.
            tail_keys = {key(row) for row in rows[-EDGE_ROWS:]} if next_url else set()
            if previous_keys:
                head = [row for row in rows[:EDGE_ROWS] if key(row) not in previous_keys]
                rows = head + rows[EDGE_ROWS:] if len(rows) > EDGE_ROWS else head
            previous_keys = tail_keys
        stats.rows += len(rows)
        yield rows
        del rows  # the consumer has built its frame: let the rows go before the next request
        if not next_url:
            return
        next_path = cursor_path(str(next_url))
        if next_path in seen_cursors:
            raise PagingLoopError(
                f"{vendor} GET {path}: next_url repeated after {pages} pages "
                f"({source.describe('GET', next_path)}); the vendor's cursor is cycling",
                vendor=vendor,
                url=path,
            )
        seen_cursors.add(next_path)


async def paginate(
    source: PageSource, path: str, params: QueryParams | None = None, **options: Any
) -> list[dict[str, Any]]:
    """All rows of every page (``options`` as for :func:`iter_pages`)."""
    rows: list[dict[str, Any]] = []
    async for page in iter_pages(source, path, params, **options):
        rows.extend(page)
    return rows
