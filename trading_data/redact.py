"""The platform's one secret scrubber: text safe to log, store or post.

:func:`redact` is used for every message that may carry a credential (vendor errors, circuit-breaker
errors stored in PostgreSQL, failure alerts, database URLs shown by the CLI). :func:`without_credentials`
is its counterpart for a URL that will be requested again (a vendor's ``next_url``): credential
parameters are dropped rather than masked, since a masked value would be sent.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import httpx

MASK = "***"
# Query parameters that carry credentials, compared in lower case.
CREDENTIAL_PARAMS = frozenset({"apikey", "api_key", "apitoken", "api_token", "token", "access_token"})

# ``apiKey=…``-style assignments in any letter case: a vendor may echo ``APIKEY=…`` where we sent
# ``apiKey``. (``\b`` keeps ``next_token=`` and the like, which are not credentials.)
_CREDENTIAL_ASSIGNMENT = re.compile(r"(?i)\b(api_?key|api_?token|access_token|token|password)=[^&\s'\"]+")
_BEARER_TOKEN = re.compile(r"(?i)\bbearer\s+[A-Za-z0-9._~+/\-]+=*")
# ``scheme://user:password@host``: the password runs to the last ``@`` of the authority, as urlsplit
# reads it, so a password holding an unescaped ``@`` is masked whole.
_URL_PASSWORD = re.compile(r"(?i)\b([a-z][a-z0-9+.\-]*://[^\s/?#:]*):[^\s/?#]*@")


def redact(text: str, secrets: Iterable[str | None] = ()) -> str:
    """``text`` with every credential replaced by ``***``: each of ``secrets`` in any letter case (a
    vendor may echo a key upper-cased), URL passwords, ``apiKey=…``-style assignments and bearer tokens."""
    for secret in secrets:
        if secret:
            text = re.sub(re.escape(secret), MASK, text, flags=re.IGNORECASE)
    text = _URL_PASSWORD.sub(rf"\1:{MASK}@", text)
    text = _CREDENTIAL_ASSIGNMENT.sub(lambda m: f"{m.group(1)}={MASK}", text)
    return _BEARER_TOKEN.sub(f"Bearer {MASK}", text)


def without_credentials(url: str | httpx.URL) -> str:
    """``url`` without credential query parameters (``apiKey=…`` and friends), to be requested again."""
    import httpx  # here, not at module level: every definitions load imports this module (issue 11)

    parsed = url if isinstance(url, httpx.URL) else httpx.URL(url)
    every = parsed.params.multi_items()
    kept = [(k, v) for k, v in every if k.lower() not in CREDENTIAL_PARAMS]
    if len(kept) != len(every):  # re-encode only when something was dropped: a cursor stays byte-exact
        parsed = parsed.copy_with(params=kept) if kept else parsed.copy_with(query=None)
    return str(parsed)


def clip(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters, the last one an ellipsis when it was longer."""
    return text if len(text) <= limit else text[: limit - 1] + "…"
