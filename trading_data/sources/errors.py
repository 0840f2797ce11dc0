"""Errors raised by the vendor clients.

Every message names the vendor and the request (method and path, never the credentials) and, where
the vendor sent one, quotes its message. Secrets never appear: the client passes every message through
:func:`trading_data.redact.redact` with its key, so a key a vendor echoes back is masked too.
"""

from __future__ import annotations


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
