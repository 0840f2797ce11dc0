"""Cursor paging (``next_url``): follow the vendor's cursor, drop rows repeated at page edges, stop cycles.

``next_url`` keeps only its path and query (its host varies and it never carries our key); the client's
base URL and auth are re-attached by the client.
"""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator, Callable, Hashable, Mapping
from typing import Any, Protocol

import httpx

from trading_data.redact import without_credentials
from trading_data.sources.errors import MalformedResponse, PageLimitExceeded, PagingLoopError
from trading_data.sources.stats import ClientStats

QueryParams = Mapping[str, str | int | float | bool | None]
RowKey = Callable[[Mapping[str, Any]], Hashable]


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

    Rows whose ``key`` also appeared on the previous page are dropped (a page may repeat the last row
    of the one before). A repeated cursor raises ``PagingLoopError``; more than ``max_pages`` pages
    raise ``PageLimitExceeded``. A page without ``results_key`` is an empty page, not an error.
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
        if key is not None and (previous_keys or next_url):
            # Keys are only needed to compare with a previous page or for the next one: a single
            # page (the common case for a narrow window) skips computing them.
            keys = [key(row) for row in rows]
            if previous_keys:
                rows = [row for row, k in zip(rows, keys, strict=True) if k not in previous_keys]
            previous_keys = set(keys)
            del keys
        stats.rows += len(rows)
        yield rows
        del rows  # the consumer has built its frame: let the rows go before the next request
        # An httpx response and its stream refer to each other, so a page's body (10 MB for 50,000
        # quotes) waits for the cyclic GC; a young-generation collection frees it before the next
        # request (well under 10 ms a page, against pages piling up until a full collection).
        gc.collect(1)
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
