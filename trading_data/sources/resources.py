"""Dagster resources offering the vendor clients to assets.

Live mode talks to the vendors with the key from ``dg.EnvVar``; simulated mode (the default when a
vendor's key is absent) talks to the offline market simulator, in-process over its ASGI app, or over
HTTP when ``simulator_url`` / ``TRADING_DATA_SIMULATOR_URL`` points at a running one. Usage::

    @dg.asset(partitions_def=...)
    async def quotes(context, polygon: PolygonResource) -> ...:
        async with polygon.client() as client:
            async for frame in client.iter_quotes("AAPL", session=context.partition_key):
                ...
            context.add_output_metadata(client.stats.as_metadata())
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any, TypeVar

import dagster as dg
from pydantic import Field

from trading_data.settings import RUN_CONFIG
from trading_data.settings.platform import POLYGON_API_KEY, SIMULATOR_URL, UNUSUAL_WHALES_API_TOKEN
from trading_data.sources.rate_limit import RateLimit
from trading_data.sources.rate_limit_store import RateLimitStore, resolve_store
from trading_data.sources.retry import RetryPolicy
from trading_data.sources.settings import (
    SIMULATOR_BASE_URL,
    SourceSettings,
    VendorSettings,
    config_positive_int,
    env_mode,
    parse_mode,
)

if TYPE_CHECKING:
    import httpx

    # The clients (and httpx under them) are imported by the methods that open one, so that a
    # definitions load, the CLI's orchestrating process among them, does without (issue 11).
    from trading_data.sources.polygon import PolygonClient
    from trading_data.sources.unusual_whales import UnusualWhalesClient

T = TypeVar("T")
SIMULATED_KEY = "simulated"  # sent as the bearer token to the simulator; not a secret

_sim_lock = threading.Lock()
_sim_app: Any = None


def simulator_app() -> Any:
    """The process-wide in-process simulator app (created on first use, shared so faults and state are)."""
    global _sim_app
    with _sim_lock:
        if _sim_app is None:
            try:
                from trading_data.sources.simulator.app import create_app
            except ImportError as exc:  # pragma: no cover - depends on the simulator package
                raise RuntimeError(
                    "simulated mode needs the offline market simulator (trading_data.sources.simulator.app), "
                    f"which could not be imported ({exc}); set the vendor API keys to use live data"
                ) from exc
            _sim_app = create_app()
        return _sim_app


def simulator_transport(app: Any | None = None) -> httpx.AsyncBaseTransport:
    """An httpx transport that calls the simulator's ASGI app in-process."""
    import httpx

    app = simulator_app() if app is None else app
    try:
        from trading_data.sources.simulator.server import inprocess_transport
    except ImportError:
        return httpx.ASGITransport(app=app)
    transport: httpx.AsyncBaseTransport = inprocess_transport(app)
    return transport


class _VendorResource(dg.ConfigurableResource):
    source: str | None = Field(
        default=None,
        description="'live' or 'simulated'; unset: TRADING_DATA_SOURCE, else live iff a key is set",
    )
    base_url: str | None = Field(default=None, description="Override the vendor's base URL")
    rate_limit_per_minute: int | None = Field(default=None, description="Requests per minute for the plan")
    max_concurrency: int | None = Field(default=None, description="Tickers fetched at once")
    rate_limit_store: str | None = Field(
        default=None, description="auto, process, postgres or redis; unset: TRADING_DATA_RATE_LIMIT_STORE"
    )
    retry_attempts: int = 5
    retry_initial_wait_seconds: float = 1.0
    retry_max_wait_seconds: float = 60.0
    retry_min_wait_after_429_seconds: float = 10.0
    timeout_seconds: float = 30.0
    simulator_url: str | None = Field(default=None, description="Use an out-of-process simulator at this URL")

    def _secret(self) -> str | None:
        raise NotImplementedError

    def _env_settings(self, settings: SourceSettings) -> VendorSettings:
        raise NotImplementedError

    def vendor_settings(self) -> VendorSettings:
        """Environment settings overridden by this resource's config (errors: ConfigurationError)."""
        env = SourceSettings.from_env()
        base = self._env_settings(env)
        key = self._secret() or base.api_key
        if self.source:
            mode = parse_mode(self.source, has_key=bool(key), source=RUN_CONFIG)
        else:
            mode = env_mode(has_key=bool(key))
        rate = config_positive_int("rate_limit_per_minute", self.rate_limit_per_minute)
        live_rate = RateLimit.per_minute(rate) if rate else base.live_rate_limit
        return dataclasses.replace(
            base, mode=mode, api_key=key, base_url=self.base_url or base.base_url, live_rate_limit=live_rate
        )

    def concurrency(self) -> int:
        configured = config_positive_int("max_concurrency", self.max_concurrency)
        return configured or SourceSettings.from_env().max_concurrency

    @classmethod
    def check_configuration(cls, config: Mapping[str, Any]) -> None:
        """Validate a run's config for this vendor with the environment, before any step runs (see
        trading_data.orchestration.executor): source, limits, and the key when live."""
        resource = cls(**{k: v for k, v in config.items() if k in cls.model_fields})
        settings = resource.vendor_settings()
        resource.concurrency()
        resource.limiter_store(settings)
        if settings.mode == "live":
            settings.require_key()

    def limiter_store(self, settings: VendorSettings) -> RateLimitStore:
        """Where this vendor key's rate-limit window lives (see trading_data.sources.rate_limit_store)."""
        return resolve_store(settings.mode == "live", self.rate_limit_store)

    def retry_policy(self) -> RetryPolicy:
        return RetryPolicy(
            attempts=self.retry_attempts,
            initial_wait=self.retry_initial_wait_seconds,
            max_wait=self.retry_max_wait_seconds,
            min_wait_after_429=self.retry_min_wait_after_429_seconds,
        )

    def _client_kwargs(self) -> dict[str, Any]:
        settings = self.vendor_settings()
        kwargs: dict[str, Any] = {
            "rate_limit": settings.rate_limit,
            "rate_limit_store": self.limiter_store(settings),
            "retry": self.retry_policy(),
            "timeout": self.timeout_seconds,
        }
        if settings.mode == "live":
            kwargs.update(api_key=settings.require_key(), base_url=settings.base_url)
            return kwargs
        sim_url = self.simulator_url or SIMULATOR_URL.get()
        kwargs["api_key"] = settings.api_key or SIMULATED_KEY
        if sim_url:
            kwargs["base_url"] = sim_url
        else:
            kwargs.update(base_url=SIMULATOR_BASE_URL, transport=simulator_transport())
        return kwargs


class PolygonResource(_VendorResource):
    """Polygon REST. ``api_key`` comes from ``dg.EnvVar("POLYGON_API_KEY")`` (see :func:`polygon_resource`)."""

    api_key: str | None = Field(default=None, description="Polygon API key (from POLYGON_API_KEY)")

    def _secret(self) -> str | None:
        return self.api_key

    def _env_settings(self, settings: SourceSettings) -> VendorSettings:
        return settings.polygon

    @asynccontextmanager
    async def client(self) -> AsyncIterator[PolygonClient]:
        """An open ``PolygonClient``; closed on exit. Its ``stats`` feed the asset's metadata."""
        from trading_data.sources.polygon import PolygonClient

        async with PolygonClient.create(**self._client_kwargs()) as client:
            yield client


class UnusualWhalesResource(_VendorResource):
    """Unusual Whales REST. ``api_token`` comes from ``dg.EnvVar("UNUSUAL_WHALES_API_TOKEN")``."""

    api_token: str | None = Field(default=None, description="Unusual Whales token (UNUSUAL_WHALES_API_TOKEN)")

    def _secret(self) -> str | None:
        return self.api_token

    def _env_settings(self, settings: SourceSettings) -> VendorSettings:
        return settings.unusual_whales

    @asynccontextmanager
    async def client(self) -> AsyncIterator[UnusualWhalesClient]:
        """An open ``UnusualWhalesClient``; closed on exit. Its ``stats`` include the ``x-uw-*`` usage."""
        from trading_data.sources.unusual_whales import UnusualWhalesClient

        kwargs = self._client_kwargs()
        token = kwargs.pop("api_key")
        async with UnusualWhalesClient.create(token, **kwargs) as client:
            yield client


def polygon_resource(**config: Any) -> PolygonResource:
    """``PolygonResource`` with ``api_key=dg.EnvVar("POLYGON_API_KEY")`` when that variable is set.

    (A ``dg.EnvVar`` whose variable is unset fails the run, so simulated mode leaves the field empty.)
    """
    if POLYGON_API_KEY.is_set():
        config.setdefault("api_key", dg.EnvVar(POLYGON_API_KEY.env_var))
    return PolygonResource(**config)


def unusual_whales_resource(**config: Any) -> UnusualWhalesResource:
    """``UnusualWhalesResource`` with ``api_token=dg.EnvVar("UNUSUAL_WHALES_API_TOKEN")`` when set."""
    if UNUSUAL_WHALES_API_TOKEN.is_set():
        config.setdefault("api_token", dg.EnvVar(UNUSUAL_WHALES_API_TOKEN.env_var))
    return UnusualWhalesResource(**config)
