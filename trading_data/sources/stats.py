"""Per-client request statistics, flattened into Dagster materialization metadata."""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field


@dataclass
class ClientStats:
    """Counters for one client; ``as_metadata()`` is what an asset attaches to its materialization."""

    vendor: str
    requests: int = 0
    retries: int = 0
    rate_limited: int = 0
    server_errors: int = 0
    transport_errors: int = 0
    malformed: int = 0
    pages: int = 0
    rows: int = 0
    bytes_received: int = 0
    rate_limit_wait_seconds: float = 0.0
    retry_waits: list[float] = field(default_factory=list)
    latencies_ms: deque[float] = field(default_factory=lambda: deque(maxlen=50_000))
    usage: dict[str, str] = field(default_factory=dict)

    def latency_percentile(self, q: float) -> float | None:
        """The ``q`` quantile (0..1) of request latencies in ms, nearest-rank; None before any request."""
        if not self.latencies_ms:
            return None
        ordered = sorted(self.latencies_ms)
        rank = max(1, math.ceil(q * len(ordered)))
        return ordered[rank - 1]

    @property
    def p50_ms(self) -> float | None:
        return self.latency_percentile(0.50)

    @property
    def p95_ms(self) -> float | None:
        return self.latency_percentile(0.95)

    def as_metadata(self, prefix: str | None = None) -> dict[str, float | int | str]:
        """Flat, JSON-friendly values (no secrets) keyed ``<vendor>/<name>``."""
        p = prefix or self.vendor
        out: dict[str, float | int | str] = {
            f"{p}/requests": self.requests,
            f"{p}/retries": self.retries,
            f"{p}/http_429": self.rate_limited,
            f"{p}/server_errors": self.server_errors,
            f"{p}/transport_errors": self.transport_errors,
            f"{p}/malformed_bodies": self.malformed,
            f"{p}/pages": self.pages,
            f"{p}/rows": self.rows,
            f"{p}/bytes": self.bytes_received,
            f"{p}/rate_limit_wait_s": round(self.rate_limit_wait_seconds, 3),
            f"{p}/retry_wait_s": round(sum(self.retry_waits), 3),
        }
        if self.latencies_ms:
            out[f"{p}/latency_p50_ms"] = round(self.p50_ms or 0.0, 1)
            out[f"{p}/latency_p95_ms"] = round(self.p95_ms or 0.0, 1)
        for name, value in sorted(self.usage.items()):
            out[f"{p}/{name}"] = value
        return out
