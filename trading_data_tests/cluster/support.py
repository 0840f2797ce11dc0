"""Real Celery workers for the executor tests: a private RabbitMQ vhost, a Dagster home on PostgreSQL, worker
processes (optionally inside a network namespace), and which worker ran which step.

The run's process and the workers must share the Dagster instance (the worker loads the run and writes its
events), so the home's storage is a database of the test's own server, never SQLite (several processes
migrating one SQLite file at once fail).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import dagster as dg
import psycopg

from trading_data.db.url import with_database

BROKER_HOST, BROKER_PORT = "127.0.0.1", 5672
REPO_ROOT = Path(__file__).resolve().parents[2]
SCRIPTS = Path(sys.executable).parent
DAGSTER_YAML = """\
storage:
  custom:
    module: trading_data.db.dagster_storage
    class: TradingDataPostgresStorage
    config: {}
telemetry:
  enabled: false
"""


def broker_unavailable_reason() -> str | None:
    """Why the Celery tests cannot run here (no RabbitMQ answering, no rabbitmqctl for a vhost), or None."""
    from kombu import Connection

    try:
        with Connection(f"pyamqp://guest:guest@{BROKER_HOST}:{BROKER_PORT}//", connect_timeout=3) as conn:
            conn.ensure_connection(max_retries=1)
    except Exception as err:  # kombu raises the transport's own errors
        return f"no RabbitMQ broker answers at {BROKER_HOST}:{BROKER_PORT} ({type(err).__name__}: {err})"
    if shutil.which("rabbitmqctl") is None:
        return "rabbitmqctl is not installed: the tests need it for a private vhost"
    return None


def _rabbitmqctl(*args: str) -> None:
    subprocess.run(["rabbitmqctl", "-q", *args], check=True, capture_output=True, timeout=60)


@contextmanager
def rabbit_vhost() -> Iterator[str]:
    """A fresh RabbitMQ vhost for one test (the queues ``polygon``, ``compute``… are other runs' too), deleted
    after it."""
    name = f"{os.environ.get('TRADING_DATA_TEST_RUN', '')}celery_test_{uuid.uuid4().hex[:8]}"
    _rabbitmqctl("add_vhost", name)
    try:
        _rabbitmqctl("set_permissions", "-p", name, "guest", ".*", ".*", ".*")
        yield name
    finally:
        _rabbitmqctl("delete_vhost", name)


def fresh_database(server_url: str, name: str, *, migrated: bool = False) -> str:
    from trading_data.db.migrate import migrate

    with psycopg.connect(with_database(server_url, "postgres"), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    url = with_database(server_url, name)
    if migrated:
        migrate(url)
    return url


def drop_database(server_url: str, name: str) -> None:
    with psycopg.connect(with_database(server_url, "postgres"), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def write_dagster_home(home: Path) -> Path:
    """A DAGSTER_HOME whose storage is TRADING_DATA_DAGSTER_DATABASE_URL's database."""
    home.mkdir(parents=True, exist_ok=True)
    (home / "dagster.yaml").write_text(DAGSTER_YAML)
    return home


@dataclass
class Worker:
    """``trading-data worker`` in a subprocess (inside network namespace ``netns`` when given)."""

    name: str
    queues: Sequence[str]
    env: Mapping[str, str]
    log_path: Path
    netns: str | None = None
    concurrency: int = 2
    process: subprocess.Popen[bytes] | None = field(default=None, init=False)
    _log: IO[bytes] | None = field(default=None, init=False)

    @property
    def node(self) -> str:
        """Celery's name of the worker (``<name>@<host name>``), as the step's engine event reports it."""
        return f"{self.name}@{os.uname().nodename}"

    def start(self) -> Worker:
        command = [str(SCRIPTS / "trading-data"), "worker", *self.queues, "--name", self.name,
                   "--concurrency", str(self.concurrency)]  # fmt: skip
        if self.netns:
            command = ["ip", "netns", "exec", self.netns, *command]
        self._log = self.log_path.open("wb")
        self.process = subprocess.Popen(
            command, env=dict(self.env), cwd=REPO_ROOT, stdout=self._log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
        return self

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)
        if self._log is not None:
            self._log.close()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


def wait_for_workers(broker_url: str, workers: Sequence[Worker], timeout: float = 120.0) -> None:
    """Until every worker answers a ping over the broker (its app and the definitions imported)."""
    from trading_data.orchestration.celery_executor import build_app

    app = build_app(broker_url)
    wanted = {w.node for w in workers}
    deadline = time.monotonic() + timeout
    answered: set[str] = set()
    while time.monotonic() < deadline:
        for worker in workers:
            if worker.process is not None and worker.process.poll() is not None:
                raise AssertionError(f"worker {worker.name} exited:\n{worker.log()[-3000:]}")
        answered |= {name for reply in app.control.ping(timeout=1.0) for name in reply}
        if wanted <= answered:
            return
    logs = "\n".join(f"--- {w.name}\n{w.log()[-2000:]}" for w in workers)
    raise AssertionError(f"workers {sorted(wanted - answered)} did not answer in {timeout:.0f} s:\n{logs}")


def step_workers(instance: dg.DagsterInstance, run_id: str) -> list[tuple[str, str]]:
    """(step key, Celery worker) for every step execution of the run, in order (a retried step twice)."""
    out = []
    for record in instance.all_logs(run_id, of_type=dg.DagsterEventType.ENGINE_EVENT):
        event = record.dagster_event
        metadata: dict[str, Any] = dict(event.engine_event_data.metadata or {}) if event else {}
        if "Celery worker" in metadata and record.step_key:
            out.append((record.step_key, str(metadata["Celery worker"].value)))
    return out
