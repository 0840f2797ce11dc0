"""Test doubles: an httpx MockTransport serving Polygon's recorded responses, and scripted handlers."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import httpx
import yaml

REFERENCE = Path("/work/shared/reference")
RECORDED = REFERENCE / "polygon" / "recorded-responses"
UW_SPEC = REFERENCE / "unusualwhales" / "openapi.yaml"
KEY = "pk_test_SECRET_0123456789"


def recorded(relative: str) -> Any:
    """A recorded Polygon response by file name (path; first ``&`` = ``?``, ``;`` = ``:``)."""
    return json.loads((RECORDED / relative).read_text())


_spec_cache: dict[str, Any] = {}


def uw_example(schema: str) -> Any:
    """The example of a component schema in the Unusual Whales spec."""
    if "spec" not in _spec_cache:
        _spec_cache["spec"] = yaml.safe_load(UW_SPEC.read_text())
    example = _spec_cache["spec"]["components"]["schemas"][schema]["example"]
    # YAML turns dates into objects; the API sends JSON strings.
    return json.loads(json.dumps(example, default=str))


def recorded_file_for(request: httpx.Request) -> Path | None:
    """The recorded file answering ``request``: exact path+query, else the path alone, else any query."""
    path = request.url.path.lstrip("/").replace(":", ";")
    query = request.url.query.decode()
    candidates = []
    if query:
        candidates.append(RECORDED / f"{path}&{query}.json")
        # our own params (order, sort, limit, …) are not in the recordings; a cursor alone is
        cursor = request.url.params.get("cursor")
        if cursor:
            candidates.append(RECORDED / f"{path}&cursor={cursor}.json")
    candidates.append(RECORDED / f"{path}.json")
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    matches = sorted(RECORDED.glob(f"{path}&*.json"))
    return matches[0] if len(matches) == 1 else None


class Recorder:
    """Wraps a handler; keeps every request it saw."""

    def __init__(self, handler: Callable[[httpx.Request], httpx.Response]):
        self.handler = handler
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return self.handler(request)

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self)


def recorded_polygon(request: httpx.Request) -> httpx.Response:
    found = recorded_file_for(request)
    if found is None:
        return httpx.Response(
            404, json={"status": "NOT_FOUND", "message": f"no recording for {request.url.path}"}
        )
    return httpx.Response(200, content=found.read_bytes(), headers={"content-type": "application/json"})


def scripted(responses: Iterable[httpx.Response | Exception]) -> Recorder:
    """A recorder answering with ``responses`` in order (an exception is raised instead)."""
    queue = list(responses)

    def handler(request: httpx.Request) -> httpx.Response:
        item = queue.pop(0)
        if isinstance(item, Exception):
            raise item
        return item

    return Recorder(handler)


class SleepRecorder:
    """A stand-in for ``asyncio.sleep`` that records the waits and returns at once."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)
