"""Recorded Polygon responses answered verbatim on an exact path and query match (apiKey ignored).

Off unless a folder is configured (``create_app(recorded_dir=...)``, ``simulator serve --recorded-dir``).
A file ``v3/trades/AAPL&limit=2.json`` answers ``/v3/trades/AAPL?limit=2`` (the first ``&`` stands
for ``?``, ``;`` for ``:``), the layout of Polygon's own client test fixtures.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import parse_qsl

RecordedKey = tuple[str, tuple[tuple[str, str], ...]]


def query_key(query: str) -> tuple[tuple[str, str], ...]:
    """The sorted query pairs of a request, without the ``apiKey``."""
    return tuple(sorted((k, v) for k, v in parse_qsl(query, keep_blank_values=True) if k != "apiKey"))


def load_recorded(directory: Path | str | None) -> dict[RecordedKey, bytes]:
    """Recorded responses keyed by (path, sorted query pairs); None gives none, a missing folder an error."""
    if directory is None:
        return {}
    root = Path(directory)
    if not root.is_dir():
        raise ValueError(
            f"recorded responses folder {str(root)!r} (recorded_dir / --recorded-dir) is not a directory: "
            "point it at a folder of recorded Polygon responses, or leave it unset to serve the simulated market"
        )
    out: dict[RecordedKey, bytes] = {}
    for file in root.rglob("*.json"):
        rel = file.relative_to(root).as_posix()[: -len(".json")].replace(";", ":")
        path, _, query = rel.partition("&")
        out[("/" + path, query_key(query))] = file.read_bytes()
    return out
