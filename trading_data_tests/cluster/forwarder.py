"""A TCP forwarder: listens on one address and pipes every connection to a target, closing both ends together.

The two-host test runs one on the host side of the worker namespaces' bridge for RabbitMQ, PostgreSQL and the
simulator, which listen on 127.0.0.1 only (RabbitMQ's guest user is refused from any other address). A
connection's death on either side (a SIGKILLed worker's socket) closes the other side at once, so RabbitMQ
requeues the dead worker's unacknowledged step and PostgreSQL rolls back its open transaction.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading


class TcpForwarder:
    """``listen_host:<free port>`` -> ``target_host:target_port``, served from a thread of its own."""

    def __init__(self, listen_host: str, target_host: str, target_port: int) -> None:
        self.listen_host, self.target = listen_host, (target_host, target_port)
        self.port = 0
        self.peers: set[str] = set()  # client addresses seen, to show who connected from where
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name=f"forward-{target_port}", daemon=True
        )
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    async def _pipe(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, other: asyncio.StreamWriter
    ) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            for end in (writer, other):
                end.close()

    async def _handle(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        self.peers.add(client_w.get_extra_info("peername")[0])
        try:
            target_r, target_w = await asyncio.open_connection(*self.target)
        except OSError:
            client_w.close()
            return
        self._writers |= {client_w, target_w}
        await asyncio.gather(
            self._pipe(client_r, target_w, client_w), self._pipe(target_r, client_w, target_w)
        )
        self._writers -= {client_w, target_w}

    def start(self) -> TcpForwarder:
        self._thread.start()
        started = asyncio.run_coroutine_threadsafe(
            asyncio.start_server(self._handle, self.listen_host, 0), self._loop
        )
        self._server = started.result(timeout=10)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    def stop(self) -> None:
        async def close() -> None:
            if self._server is not None:
                self._server.close()
            for writer in list(self._writers):
                writer.close()

        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(close(), self._loop).result(timeout=10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
