"""What every simulated endpoint shares: the reply and call types, JSON, cursors and next_url, parameters."""

from __future__ import annotations

import base64
import datetime as dt
import json
import threading
import uuid
from dataclasses import dataclass, field
from typing import Any

from trading_data import calendar
from trading_data.sources.simulator.faults import FaultInjector
from trading_data.sources.simulator.units import NS_PER_MS, from_ns, to_ns

try:  # orjson is optional: much faster for 50,000-row pages when installed.
    import orjson

    def dumps(obj: Any) -> bytes:
        """Compact JSON bytes."""
        return orjson.dumps(obj)
except ImportError:  # pragma: no cover - depends on the environment

    def dumps(obj: Any) -> bytes:
        """Compact JSON bytes."""
        return json.dumps(obj, separators=(",", ":")).encode()


NEXT_URL_HOSTS = (
    "https://api.polygon.io",
    "https://api.massive.com:443",
    "https://api.massive.com",
    "https://api.polygon.io:443",
)
POLYGON = "polygon"
UNUSUAL_WHALES = "unusualwhales"


class BadRequest(Exception):
    """A parameter the vendor would reject (Polygon 400, Unusual Whales 422)."""


@dataclass
class Reply:
    """An endpoint's answer before body faults: status, body bytes, content type, extra headers."""

    status: int
    body: bytes
    media_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Call:
    """One vendor request as the endpoints see it."""

    path: str
    vendor: str
    params: dict[str, str]
    path_params: dict[str, str]
    query_string: str
    faults: FaultInjector

    def page_fault(self, kind: str) -> bool:
        """Spend a ``repeat_last_row`` / ``next_url_cycle`` fault hitting this request, if any."""
        return self.faults.take_one(kind, self.path, self.vendor) is not None


def request_id() -> str:
    return uuid.uuid4().hex


def encode_cursor(state: dict[str, Any]) -> str:
    """Opaque cursor: URL-safe base64 of compact JSON, unpadded."""
    return base64.urlsafe_b64encode(json.dumps(state, separators=(",", ":")).encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> dict[str, Any]:
    """Inverse of :func:`encode_cursor`; raises BadRequest on garbage."""
    try:
        data = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadRequest("invalid cursor") from exc
    if not isinstance(data, dict):
        raise BadRequest("invalid cursor")
    return data


_host_counter = iter(range(1 << 62))
_host_lock = threading.Lock()


def next_url(path: str, state: dict[str, Any]) -> str:
    """An absolute next_url on a rotating vendor host, carrying only ``cursor=``."""
    with _host_lock:
        host = NEXT_URL_HOSTS[next(_host_counter) % len(NEXT_URL_HOSTS)]
    return f"{host}{path}?cursor={encode_cursor(state)}"


def polygon_ok(payload: dict[str, Any], results: list[Any] | bytes | None, **extra: Any) -> Reply:
    """A Polygon success envelope; no ``results`` key when empty. ``results`` may be the JSON array already
    rendered (bytes, non-empty), spliced in where ``dumps`` would have written it."""
    if isinstance(results, bytes) and results:
        head, tail = polygon_envelope(payload, **extra)
        return Reply(200, b"".join((head, results, tail)))
    body: dict[str, Any] = dict(payload)
    if results:
        body["results"] = results
    return Reply(200, dumps(_with_status(body, extra)))


def polygon_envelope(payload: dict[str, Any], **extra: Any) -> tuple[bytes, bytes]:
    """The bytes of a Polygon success envelope before and after its (non-empty) ``results`` array."""
    body = _with_status({**payload, "results": None}, extra)  # the array's place, held by None
    head, _, tail = dumps(body).partition(b'"results":null')
    return head + b'"results":', tail


def _with_status(body: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    body["status"] = "OK"
    body["request_id"] = request_id()
    for key, value in extra.items():
        if value is not None:
            body[key] = value
    return body


def polygon_error(status: int, message: str, key: str = "error", label: str = "ERROR") -> Reply:
    return Reply(status, dumps({"status": label, "request_id": request_id(), key: message}))


def parse_int(
    params: dict[str, str], name: str, default: int, low: int, high: int | None = None, clamp: bool = True
) -> int:
    """An integer query parameter; out-of-range values are clamped (Polygon) or rejected."""
    raw = params.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError as exc:
        raise BadRequest(f"{name}={raw} is not an integer") from exc
    if value < low or (high is not None and value > high):
        if not clamp:
            raise BadRequest(f"{name}={raw} out of range")
        value = max(low, min(value, high if high is not None else value))
    return value


def parse_bool(raw: str | None, default: bool) -> bool:
    if raw is None or raw == "":
        return default
    if raw.lower() in ("true", "1", "yes"):
        return True
    if raw.lower() in ("false", "0", "no"):
        return False
    raise BadRequest(f"invalid boolean {raw!r}")


def ny_midnight_ms(day: dt.date) -> int:
    return to_ns(calendar.session_window(day)[0]) // NS_PER_MS


def parse_ns(raw: str) -> int:
    """A v3 timestamp value: ns integer, ``YYYY-MM-DD`` (UTC midnight) or an ISO datetime."""
    raw = raw.strip()
    if raw.isdigit():
        value = int(raw)
        return value * NS_PER_MS if value < 10**14 else value
    try:
        if len(raw) == 10:
            return to_ns(dt.datetime.combine(dt.date.fromisoformat(raw), dt.time(0), tzinfo=dt.UTC))
        text = raw.replace("Z", "+00:00")
        frac_ns = 0
        if "." in text:  # keep nanoseconds that datetime cannot hold
            head, _, tail = text.partition(".")
            digits = "".join(ch for ch in tail if ch.isdigit())
            rest = tail[len(digits) :]
            frac_ns = int((digits + "000000000")[:9])
            text = head + rest
        moment = dt.datetime.fromisoformat(text)
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=dt.UTC)
        return to_ns(moment) + frac_ns
    except ValueError as exc:
        raise BadRequest(f"invalid timestamp {raw!r}") from exc


def parse_unix_or_iso_ms(raw: str) -> int:
    """Unusual Whales ``newer_than``/``older_than``: unix s or ms, ISO date or datetime -> ms."""
    raw = raw.strip()
    if raw.isdigit():
        value = int(raw)
        return value * 1000 if value < 10**11 else value
    return parse_ns(raw) // NS_PER_MS


def ms_date(ms: int) -> dt.date:
    return from_ns(ms * NS_PER_MS).astimezone(calendar.NEW_YORK).date()


def offset_page(call: Call, default_limit: int, max_limit: int) -> tuple[dict[str, str], int, int, bool]:
    """(effective params, offset, limit, from_cursor) for offset-paged endpoints."""
    params = dict(call.params)
    offset = 0
    from_cursor = "cursor" in params
    if from_cursor:
        state = decode_cursor(params.pop("cursor"))
        params = {k: str(v) for k, v in state["q"].items()}
        offset = int(state["off"])
        if call.page_fault("repeat_last_row"):
            offset = max(offset - 1, 0)
    limit = parse_int(params, "limit", default_limit, 1, max_limit)
    return params, offset, limit, from_cursor


def offset_next(
    call: Call, path: str, params: dict[str, str], offset: int, limit: int, total: int
) -> str | None:
    if offset + limit >= total:
        return None
    new_offset = 0 if call.page_fault("next_url_cycle") else offset + limit
    return next_url(path, {"q": params, "off": new_offset})
