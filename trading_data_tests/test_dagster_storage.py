"""Dagster's storage: built in a code server's orphan check, it waits out a database outage instead of
raising; built by several processes at once on a new database, it is created once while the others wait.

The database "outage" is a loopback port that nothing listens on yet; when it comes back, a TCP forwarder
on that port leads to the suite's real PostgreSQL server. Anywhere else the storage fails at once with
its one sentence (the CLI's behaviour).
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import socket
import socketserver
import threading
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest

from trading_data.db.dagster_storage import (
    ORPHAN_CHECK_RETRY_SECONDS,
    ORPHAN_CHECK_THREAD,
    SCHEMA_LOCK_KEY,
    SCHEMA_TABLES,
    DagsterStorageUnreachable,
    TradingDataPostgresStorage,
)
from trading_data_tests.processes.helpers import drop_database, free_port, fresh_database, wait_until

pytestmark = pytest.mark.slow
WAIT_TIMEOUT = 60


class _Forwarder(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True

    def __init__(self, port: int, target: tuple[str, int]) -> None:
        self.target = target
        super().__init__(("127.0.0.1", port), _Pipe)


class _Pipe(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        server = self.server
        assert isinstance(server, _Forwarder)
        with socket.create_connection(server.target) as upstream:
            back = threading.Thread(target=_pump, args=(upstream, self.request), daemon=True)
            back.start()
            _pump(self.request, upstream)
            back.join()


def _pump(source: socket.socket, sink: socket.socket) -> None:
    try:
        while data := source.recv(65536):
            sink.sendall(data)
    except OSError:
        pass
    finally:
        with contextlib.suppress(OSError):
            sink.shutdown(socket.SHUT_WR)


@pytest.fixture
def storage_url(server_url: str, worker_id: str) -> Iterator[str]:
    name = f"dagster_test_storage_wait_{os.environ.get('TRADING_DATA_TEST_RUN', '')}{worker_id}"
    yield fresh_database(server_url, name)
    drop_database(server_url, name)


def test_the_orphan_check_waits_for_the_database_and_everyone_else_fails_at_once(
    storage_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    real = urlsplit(storage_url)
    port = free_port()
    down_url = urlunsplit(real._replace(netloc=real.netloc.replace(f":{real.port}", f":{port}")))
    config = {"postgres_url": down_url}

    with pytest.raises(DagsterStorageUnreachable, match="cannot reach Dagster's storage"):
        TradingDataPostgresStorage.from_config_value(None, config)

    built: list[TradingDataPostgresStorage] = []
    errors: list[BaseException] = []

    def orphan_check() -> None:
        try:
            built.append(TradingDataPostgresStorage.from_config_value(None, config))
        except BaseException as exc:  # a storage error here is what used to end the code server's thread
            errors.append(exc)

    caplog.set_level(logging.WARNING, logger="trading_data.db.dagster_storage")
    thread = threading.Thread(target=orphan_check, name=ORPHAN_CHECK_THREAD, daemon=True)
    thread.start()

    def retried_twice() -> bool:
        assert not errors, errors
        return sum("retrying in" in r.getMessage() for r in caplog.records) >= 2

    wait_until(retried_twice, WAIT_TIMEOUT + 2 * ORPHAN_CHECK_RETRY_SECONDS, "the orphan check to retry")
    assert thread.is_alive() and not built

    # The database is back: the waiting thread gets a working storage.
    assert real.hostname and real.port
    with _Forwarder(port, (real.hostname, real.port)) as forwarder:
        serving = threading.Thread(target=forwarder.serve_forever, daemon=True)
        serving.start()
        try:
            thread.join(WAIT_TIMEOUT)
            assert not errors, errors
            assert not thread.is_alive() and len(built) == 1
            storage = built[0]
            assert storage.run_storage.get_runs() == []
            for part in (storage.run_storage, storage.event_log_storage, storage.schedule_storage):
                part.dispose()
        finally:
            forwarder.shutdown()


def _build_storage(url: str, barrier: Any) -> None:
    """One process's first start: wait for the others, then build the storage (a new database's schema)."""
    barrier.wait(WAIT_TIMEOUT)
    storage = TradingDataPostgresStorage.from_config_value(None, {"postgres_url": url})
    storage.run_storage.dispose()
    storage.event_log_storage.dispose()
    storage.schedule_storage.dispose()


def _tables(url: str) -> set[str]:
    with psycopg.connect(url) as conn:
        rows = conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'").fetchall()
    return {name for (name,) in rows}


def test_processes_starting_at_once_on_a_new_database_all_get_a_storage(storage_url: str) -> None:
    """`dagster dev`'s webserver, daemon and code server build the storage at once on a first start."""
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(4)
    workers = [ctx.Process(target=_build_storage, args=(storage_url, barrier)) for _ in range(4)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(WAIT_TIMEOUT * 2)
    assert [w.exitcode for w in workers] == [0, 0, 0, 0]
    assert set(SCHEMA_TABLES) | {"asset_keys", "instance_info", "alembic_version"} <= _tables(storage_url)


def test_a_new_schema_waits_for_the_lock_and_a_complete_one_does_not(storage_url: str) -> None:
    built = threading.Event()
    errors: list[BaseException] = []

    def build() -> None:
        try:
            _build_storage(storage_url, threading.Barrier(1))
        except BaseException as exc:
            errors.append(exc)
        built.set()

    with psycopg.connect(storage_url, autocommit=True) as holder:
        holder.execute("SELECT pg_advisory_lock(%s)", (SCHEMA_LOCK_KEY,))
        thread = threading.Thread(target=build, daemon=True)
        thread.start()
        # Another process is creating the schema: this one waits and creates nothing meanwhile.
        assert not built.wait(2.0)
        assert _tables(storage_url) == set()
        holder.execute("SELECT pg_advisory_unlock(%s)", (SCHEMA_LOCK_KEY,))
        assert built.wait(WAIT_TIMEOUT) and not errors, errors

        # The schema is complete: the lock held elsewhere does not hold up a start.
        holder.execute("SELECT pg_advisory_lock(%s)", (SCHEMA_LOCK_KEY,))
        built.clear()
        thread = threading.Thread(target=build, daemon=True)
        thread.start()
        assert built.wait(WAIT_TIMEOUT) and not errors, errors
