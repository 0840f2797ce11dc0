"""Running the simulator: blocking ``serve``, a background ``SimulatorServer``, an in-process transport.

``main(argv)`` is the ``trading-data simulator serve --port N [--seed S] [--latency-ms L] [--recorded-dir D]``
command.
"""

from __future__ import annotations

import argparse
import datetime as dt
import socket
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from starlette.applications import Starlette
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from trading_data.sources.simulator.app import create_app
from trading_data.sources.simulator.fault_replies import TRANSPORT_KEY
from trading_data.sources.simulator.faults import Fault, FaultInjector, RequestStats
from trading_data.sources.simulator.market import SimulatedMarket


class _TransportExposingHttpTools(HttpToolsProtocol):
    """uvicorn's httptools protocol, putting the connection's transport in each request's ASGI scope (for
    the connection_reset fault). httptools on uvloop, not h11 on asyncio: parsing and writing take less CPU
    per request, and uvloop hands a 10 MB page to the socket without copying it into a buffer first."""

    def on_message_begin(self) -> None:
        super().on_message_begin()
        scope: Any = self.scope
        scope["extensions"] = {TRANSPORT_KEY: self.transport}


def uvicorn_config(
    app: Starlette, host: str = "127.0.0.1", port: int = 0, log_level: str = "warning", fd: int | None = None
) -> uvicorn.Config:
    """A uvicorn config using uvloop and the transport-exposing httptools protocol."""
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        fd=fd,
        http=_TransportExposingHttpTools,
        loop="uvloop",
        log_level=log_level,
        lifespan="off",
        timeout_keep_alive=30,
        access_log=False,
    )


def serve(
    host: str = "127.0.0.1",
    port: int = 8765,
    *,
    seed: int = 7,
    latency_ms: float = 0.0,
    now: Callable[[], dt.datetime] | None = None,
    recorded_dir: Path | str | None = None,
    log_level: str = "info",
) -> None:
    """Run the simulator with uvicorn in the foreground (blocks until interrupted)."""
    faults = FaultInjector()
    if latency_ms > 0:
        faults.add(Fault("latency", count=None, seconds=latency_ms / 1000.0))
    app = create_app(SimulatedMarket(seed, now=now), faults, recorded_dir=recorded_dir)
    uvicorn.Server(uvicorn_config(app, host, port, log_level)).run()


class SimulatorServer:
    """Runs the simulator on a free loopback port in a background thread.

    >>> with SimulatorServer(seed=7) as sim:
    ...     httpx.get(sim.base_url + "/v1/marketstatus/now", params={"apiKey": "k"})
    """

    def __init__(
        self,
        market: SimulatedMarket | None = None,
        faults: FaultInjector | None = None,
        *,
        seed: int = 7,
        now: Callable[[], dt.datetime] | None = None,
        recorded_dir: Path | str | None = None,
    ) -> None:
        self.market = market or SimulatedMarket(seed, now=now)
        self.faults = faults or FaultInjector()
        self.stats = RequestStats()
        self.app = create_app(self.market, self.faults, stats=self.stats, recorded_dir=recorded_dir)
        self._sock: socket.socket | None = None
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self.port = 0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> SimulatorServer:
        """Bind a free port, start uvicorn in a daemon thread, wait until it accepts connections."""
        # proto=IPPROTO_TCP, not 0: asyncio sets TCP_NODELAY only on sockets that say they are TCP, and
        # without it every response (headers, then body) waits ~40 ms for the client's delayed ACK.
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        self._sock = sock
        self._server = uvicorn.Server(uvicorn_config(self.app))
        server = self._server

        def run() -> None:
            server.run(sockets=[sock])  # on the config's event loop (uvloop)

        self._thread = threading.Thread(target=run, name=f"simulator-{self.port}", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 10
        while not server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("simulator server did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        """Ask uvicorn to exit and wait for the thread."""
        if self._server is not None:
            self._server.should_exit = True
            self._server.force_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)
        if self._sock is not None:
            self._sock.close()
        self._server = self._thread = self._sock = None

    def __enter__(self) -> SimulatorServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class _InProcessTransport(httpx.ASGITransport):
    """ASGITransport that turns the simulator's in-process connection reset into an httpx error."""

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        try:
            return await super().handle_async_request(request)
        except ConnectionResetError as exc:
            raise httpx.ReadError("simulated connection reset", request=request) from exc


def inprocess_transport(app: Starlette | None = None) -> httpx.AsyncBaseTransport:
    """An httpx transport calling the simulator app in process (no sockets); for ``make dev``.

    Use with ``httpx.AsyncClient(transport=..., base_url="https://api.polygon.io")``.
    """
    return _InProcessTransport(app=app or create_app())


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="trading-data simulator", description="Offline Polygon/UW simulator"
    )
    sub = parser.add_subparsers(dest="command", required=True)
    serve_cmd = sub.add_parser("serve", help="serve the simulated vendor APIs over HTTP")
    serve_cmd.add_argument("--host", default="127.0.0.1")
    serve_cmd.add_argument("--port", type=int, default=8765)
    serve_cmd.add_argument("--seed", type=int, default=7)
    serve_cmd.add_argument("--latency-ms", type=float, default=0.0, help="latency added to every request")
    serve_cmd.add_argument(
        "--recorded-dir",
        type=Path,
        default=None,
        help="a folder of recorded Polygon responses to answer verbatim (default: none, only the simulated market)",
    )
    serve_cmd.add_argument("--log-level", default="info")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """``simulator serve --port N [--seed S] [--latency-ms L]``; argv excludes the program name."""
    args = build_parser().parse_args(argv)
    if args.command == "serve":
        serve(
            args.host,
            args.port,
            seed=args.seed,
            latency_ms=args.latency_ms,
            recorded_dir=args.recorded_dir,
            log_level=args.log_level,
        )
    return 0
