"""The answers of injected faults: vendor error bodies, nginx HTML pages, and a real TCP reset."""

from __future__ import annotations

import contextlib
import math
import socket
import struct
from collections.abc import MutableMapping
from typing import Any

from trading_data.sources.simulator.faults import Fault
from trading_data.sources.simulator.protocol import Reply, dumps, request_id

TRANSPORT_KEY = "trading_data.sim.transport"  # the ASGI scope extension holding the connection's transport
MSG_429 = (
    "You've exceeded the maximum requests per minute, please wait or upgrade your subscription to "
    "continue. https://polygon.io/pricing"
)
MSG_403 = "You are not entitled to this data. Please upgrade your plan at https://polygon.io/pricing"
NGINX_TITLES = {
    500: "500 Internal Server Error",
    502: "502 Bad Gateway",
    503: "503 Service Temporarily Unavailable",
    504: "504 Gateway Time-out",
}


class SimulatedConnectionReset(ConnectionResetError):
    """Raised in-process (no socket to reset) for a ``connection_reset`` fault."""


def rate_limited() -> Reply:
    """Polygon's 429 body (no Retry-After, as the vendor sends it)."""
    return Reply(429, dumps({"status": "ERROR", "request_id": request_id(), "error": MSG_429}))


def nginx_html(status: int) -> bytes:
    title = NGINX_TITLES.get(status, f"{status} Error")
    return (
        f"<html>\r\n<head><title>{title}</title></head>\r\n<body>\r\n<center><h1>{title}</h1></center>\r\n"
        "<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"
    ).encode()


def abort_connection(scope: MutableMapping[str, Any]) -> bool:
    """Reset the TCP connection (RST) when running under the simulator's uvicorn protocol."""
    transport = scope.get("extensions", {}).get(TRANSPORT_KEY)
    if transport is None:
        return False
    sock = transport.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    transport.abort()
    return True


def fault_reply(kinds: dict[str, Fault]) -> Reply | None:
    """The reply replacing the endpoint's for a response fault hitting the request, if any."""
    if "http_401" in kinds:
        return Reply(401, dumps({"status": "ERROR", "request_id": request_id(), "error": "Unknown API Key"}))
    if "http_403" in kinds:
        return Reply(403, dumps({"status": "NOT_AUTHORIZED", "request_id": request_id(), "message": MSG_403}))
    if "http_429" in kinds:
        fault = kinds["http_429"]
        reply = rate_limited()
        if fault.retry_after is not None:
            reply.headers["Retry-After"] = str(math.ceil(fault.retry_after))
        return reply
    if "http_5xx_html" in kinds:
        status = kinds["http_5xx_html"].status or 502
        return Reply(status, nginx_html(status), "text/html")
    if "http_5xx_empty" in kinds:
        return Reply(kinds["http_5xx_empty"].status or 503, b"", "application/json")
    if "http_500_text" in kinds:
        return Reply(kinds["http_500_text"].status or 500, b"Something went wrong", "text/plain")
    return None
