"""Errors raised by the vendor clients.

Every message names the vendor and the request (method and path, never the credentials) and, where
the vendor sent one, quotes its message. Secrets never appear: URLs are scrubbed of ``apiKey``-style
query parameters and the client replaces the key itself if a vendor echoes it back.
"""

from __future__ import annotations

import httpx

# Query parameters that may carry credentials; dropped from any URL we put in a message.
SECRET_QUERY_PARAMS = frozenset({"apikey", "api_key", "apitoken", "api_token", "token", "access_token"})


def scrub_url(url: str | httpx.URL) -> str:
    """``url`` without credential query parameters (``apiKey=…`` and friends)."""
    parsed = url if isinstance(url, httpx.URL) else httpx.URL(url)
    kept = [(k, v) for k, v in parsed.params.multi_items() if k.lower() not in SECRET_QUERY_PARAMS]
    return str(parsed.copy_with(params=kept)) if kept else str(parsed.copy_with(query=None))


def scrub_secret(text: str, secret: str | None) -> str:
    """``text`` with every occurrence of ``secret`` replaced by ``***``."""
    return text.replace(secret, "***") if secret else text


class VendorError(Exception):
    """Base class: a vendor request failed. ``status`` is the HTTP status when there was a response."""

    def __init__(self, message: str, *, vendor: str, status: int | None = None, url: str | None = None):
        super().__init__(message)
        self.vendor = vendor
        self.status = status
        self.url = url


class VendorAuthError(VendorError):
    """401/403: the key is missing, unknown or not entitled. Never retried."""


class VendorRequestError(VendorError):
    """A 4xx the caller has to fix (422 invalid input, 400, …). Never retried."""


class VendorNotFound(VendorRequestError):
    """404: the path or ticker does not exist. Never retried."""


class VendorUnavailable(VendorError):
    """Retries spent on 429/5xx/timeouts/connection errors."""


class MalformedResponse(VendorError):
    """The body was not JSON, was truncated, or had the wrong shape, on every attempt."""


class PagingLoopError(VendorError):
    """Paging would not terminate: a ``next_url`` (or page) repeated."""


class PageLimitExceeded(PagingLoopError):
    """A paged request needed more pages than the caller's ``max_pages`` bound."""
