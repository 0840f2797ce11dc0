"""A loopback HTTP proxy in front of the simulator that rewrites chosen answers, for tests of bad vendor
data the simulator would never produce (a negative price on one page of one ticker, say).

The client under test talks real HTTP to the proxy; the proxy forwards every request to the simulator
and hands the decoded JSON of each answer to ``rewrite(path, query, payload)``, which may change it.
``rewrite_query(path, query)`` may change a request's query first (a smaller page ``limit``).
"""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

Query = dict[str, str]
Rewrite = Callable[[str, Query, Any], Any]
RewriteQuery = Callable[[str, Query], Query]


class RewritingProxy:
    def __init__(self, upstream: str, rewrite: Rewrite, rewrite_query: RewriteQuery | None = None):
        self.upstream = upstream.rstrip("/")
        self.rewrite = rewrite
        self.rewrite_query = rewrite_query or (lambda path, query: query)
        self._server: ThreadingHTTPServer | None = None

    @property
    def base_url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> RewritingProxy:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                parts = urlsplit(self.path)
                query = proxy.rewrite_query(parts.path, dict(parse_qsl(parts.query)))
                url = f"{proxy.upstream}{parts.path}?{urlencode(query)}"
                headers = {k: v for k, v in self.headers.items() if k.lower() == "authorization"}
                try:
                    with urllib.request.urlopen(urllib.request.Request(url, headers=headers)) as answer:
                        status, body = answer.status, answer.read()
                except urllib.error.HTTPError as err:
                    status, body = err.code, err.read()
                if status == 200:
                    body = json.dumps(proxy.rewrite(parts.path, query, json.loads(body))).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.shutdown()
        self._server.server_close()
