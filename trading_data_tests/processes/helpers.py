"""Start the platform's processes (webserver, daemon, code server) for tests, isolated from dev state.

Every process gets its own DAGSTER_HOME (a copy of the project's dagster.yaml) whose storage is a
fresh database on the test server, and ``TRADING_DATA_DATABASE_URL`` pointing at the worker's
migrated market database: nothing reads or writes ``.dagster_home`` or the dev databases.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg

from trading_data.clock import NOW_ENV
from trading_data.db.url import sqlalchemy_psycopg2_url, with_database

PROJECT_ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
LOCATION = "trading_data"
REPOSITORY = "__repository__"  # the repository name Dagster gives a Definitions object

ASSET_DEPENDENCIES: dict[str, set[str]] = {
    "selected_tickers": set(),
    "position_sizes": {"selected_tickers"},
    "prices": {"selected_tickers"},
    "quotes": {"selected_tickers"},
    "trades": {"selected_tickers"},
    "options_flow": {"selected_tickers"},
    "indicators": {"prices"},
    "bar_aggregates": {"prices"},
    "daily_report": {
        "selected_tickers",
        "position_sizes",
        "prices",
        "quotes",
        "trades",
        "options_flow",
        "indicators",
    },
}
SCHEDULE_NAMES = {
    "ticker_selection_schedule",
    "position_sizing_schedule",
    "prices_schedule",
    "quotes_schedule",
    "trades_schedule",
    "options_schedule",
    "indicators_schedule",
    "full_pipeline_schedule",
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def fresh_database(server_url: str, name: str) -> str:
    """Drop and create ``name`` on the server of ``server_url``; return its URL."""
    with psycopg.connect(with_database(server_url, "postgres"), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    return with_database(server_url, name)


def drop_database(server_url: str, name: str) -> None:
    with psycopg.connect(with_database(server_url, "postgres"), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def isolated_environment(
    home: Path, market_url: str, dagster_url: str, extra: Mapping[str, str] | None = None
) -> dict[str, str]:
    """The environment of every test process: its own DAGSTER_HOME and databases, no vendor keys.

    ``TRADING_DATA_NOW`` is the one ``TRADING_DATA_*`` variable passed through (the suite's pinned clock).
    """
    home.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(PROJECT_ROOT / "dagster.yaml", home / "dagster.yaml")
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("TRADING_DATA_", "DAGSTER_", "POLYGON", "UNUSUAL_WHALES", "PYTEST_"))
        or k == NOW_ENV  # a pinned clock (pytest --now) holds for the processes too
    }
    env.update(
        {
            "DAGSTER_HOME": str(home),
            "TRADING_DATA_DATABASE_URL": market_url,
            "TRADING_DATA_DAGSTER_DATABASE_URL": dagster_url,
            "TRADING_DATA_DAGSTER_PG_URL": sqlalchemy_psycopg2_url(dagster_url),
            "PYTHONUNBUFFERED": "1",
            **(extra or {}),
        }
    )
    return env


@dataclass
class Process:
    """One started process, in a session of its own (its pid is its process-group id)."""

    name: str
    command: list[str]
    log_path: Path
    popen: subprocess.Popen[bytes] = field(repr=False)

    @property
    def pid(self) -> int:
        return self.popen.pid

    def assert_isolated(self) -> None:
        assert "Loaded environment variables from .env" not in self.log(10_000_000), (
            f"{self.name} loaded a .env file over the test environment"
        )

    def log(self, tail: int = 4000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-tail:]
        except FileNotFoundError:
            return ""

    def alive(self) -> bool:
        return self.popen.poll() is None

    def kill_hard(self) -> None:
        """SIGKILL the process itself only (a crash): its children are left as a crash leaves them."""
        if self.alive():
            os.kill(self.pid, signal.SIGKILL)
            self.popen.wait(timeout=30)

    def stop(self, timeout: float = 20) -> None:
        """SIGTERM this process's group (the process and the children it started), then SIGKILL it."""
        for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 10.0)):
            try:
                os.killpg(self.pid, sig)
            except ProcessLookupError:
                break
            deadline = time.monotonic() + wait
            while time.monotonic() < deadline:
                if not self.alive() and not group_alive(self.pid):
                    return
                time.sleep(0.2)
        if self.alive():
            self.popen.wait(timeout=10)


def group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return True


def start_process(name: str, command: list[str], env: Mapping[str, str], log_dir: Path) -> Process:
    """Start ``command`` with its working directory in ``log_dir``'s parent (a tmp dir), never the project
    root: Dagster's CLIs load ``.env`` from their working directory *over* the environment, and the project's
    ``.env`` (written by ``trading-data db start``) points at the dev databases."""
    log_dir.mkdir(parents=True, exist_ok=True)
    cwd = log_dir.parent
    assert not (cwd / ".env").exists() and cwd.resolve() != PROJECT_ROOT
    log_path = log_dir / f"{name}.log"
    with log_path.open("ab") as log:
        popen = subprocess.Popen(
            command,
            cwd=cwd,
            env=dict(env),
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    return Process(name, command, log_path, popen)


def wait_until(
    condition: Callable[[], Any],
    timeout: float,
    what: str,
    interval: float = 0.5,
    processes: tuple[Process, ...] = (),
) -> Any:
    """Poll ``condition`` until it returns something truthy; fail with the processes' logs otherwise."""
    deadline = time.monotonic() + timeout
    last_error: BaseException | None = None
    while time.monotonic() < deadline:
        for proc in processes:
            if not proc.alive():
                raise AssertionError(
                    f"{proc.name} exited ({proc.popen.returncode}) while waiting for {what}:\n{proc.log()}"
                )
        try:
            value = condition()
            if value:
                return value
        except Exception as exc:  # noqa: BLE001 - retried until the deadline, reported below
            last_error = exc
        time.sleep(interval)
    logs = "\n".join(f"--- {p.name} ---\n{p.log()}" for p in processes)
    raise AssertionError(
        f"timed out after {timeout}s waiting for {what} (last error: {last_error!r})\n{logs}"
    )


def http_get(url: str, timeout: float = 10) -> bytes:
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return bytes(response.read())


def graphql(
    base_url: str, query: str, variables: Mapping[str, Any] | None = None, timeout: float = 60
) -> dict[str, Any]:
    body = json.dumps({"query": query, "variables": dict(variables or {})}).encode()
    request = urllib.request.Request(
        f"{base_url}/graphql", data=body, headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            payload = json.loads(response.read())
    except urllib.error.HTTPError as err:
        raise AssertionError(f"GraphQL HTTP {err.code}: {err.read()[:2000]!r}") from err
    if payload.get("errors"):
        raise AssertionError(f"GraphQL errors: {payload['errors']}")
    return dict(payload["data"])


def start_webserver(env: Mapping[str, str], workspace: Path, log_dir: Path) -> tuple[Process, str]:
    port = free_port()
    proc = start_process(
        "webserver",
        [str(BIN / "dagster-webserver"), "-w", str(workspace), "-h", "127.0.0.1", "-p", str(port)],
        env,
        log_dir,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until(
            lambda: http_get(f"{base}/server_info"), 180, "the webserver's /server_info", processes=(proc,)
        )
    except BaseException:
        proc.stop()
        raise
    return proc, base


def wait_for_location(base_url: str, proc: Process, timeout: float = 180) -> None:
    """Wait until the webserver has loaded the code location (or fail with its load error)."""
    query = """{ workspaceOrError { __typename ... on Workspace { locationEntries { name
        loadStatus locationOrLoadError { __typename ... on PythonError { message } } } } } }"""

    def loaded() -> bool:
        entries = graphql(base_url, query)["workspaceOrError"]["locationEntries"]
        entry = next(e for e in entries if e["name"] == LOCATION)
        if entry["loadStatus"] != "LOADED":
            return False
        error = entry["locationOrLoadError"]
        assert error["__typename"] == "RepositoryLocation", f"code location failed to load: {error}"
        return True

    wait_until(loaded, timeout, f"code location {LOCATION} to load", processes=(proc,))


def pin_instigators(instance: Any, workspace: Path, running: Collection[str] = ()) -> set[str]:
    """Let only the schedules and sensors named in ``running`` run; store a STOPPED state for every other one.

    A daemon ticks every running schedule and sensor (running by default or by a stored state) on the real
    clock, whatever ``TRADING_DATA_NOW`` says: a test that starts one must say what may run, or a real tick
    (the 16:30 full pipeline, the 5-minute freshness schedule, a sensor) adds runs the test never asked for.
    Call it with the test's own instance before the daemon starts; returns the names it stopped.
    """
    from dagster._core.remote_representation.external import RemoteSchedule
    from dagster._core.workspace.context import WorkspaceProcessContext
    from dagster._core.workspace.load_target import WorkspaceFileTarget

    wanted, stopped, still_running = set(running), set(), set()
    with WorkspaceProcessContext(instance, WorkspaceFileTarget([str(workspace)])) as context:
        locations = context.create_request_context().code_locations
        assert locations, f"no code location loaded from {workspace}"
        for location in locations:
            for repository in location.get_repositories().values():
                instigators = [*repository.get_schedules(), *repository.get_sensors()]
                unknown = wanted - {i.name for i in instigators}
                assert not unknown, f"{sorted(unknown)} are not schedules or sensors of {location.name}"
                for instigator in instigators:
                    origin_id, selector_id = instigator.get_remote_origin_id(), instigator.selector_id
                    is_schedule = isinstance(instigator, RemoteSchedule)
                    if instigator.name in wanted:
                        (instance.start_schedule if is_schedule else instance.start_sensor)(instigator)
                    else:
                        stop = instance.stop_schedule if is_schedule else instance.stop_sensor
                        stop(origin_id, selector_id, instigator)
                        stopped.add(instigator.name)
                    stored = instance.get_instigator_state(origin_id, selector_id)
                    if instigator.get_current_instigator_state(stored).is_running:
                        still_running.add(instigator.name)
    assert still_running == wanted, f"running after pinning: {sorted(still_running)}, wanted {sorted(wanted)}"
    return stopped


def start_code_server(env: Mapping[str, str], home: Path, log_dir: Path) -> tuple[Process, Path]:
    """A gRPC code server of the project's definitions on a free port, and a workspace.yaml (in ``home``)
    that points at it."""
    port = free_port()
    code_server = start_process(
        "code-server",
        [
            str(BIN / "dagster"),
            "code-server",
            "start",
            "-m",
            "trading_data.definitions",
            "-h",
            "127.0.0.1",
            "-p",
            str(port),
            "--location-name",
            LOCATION,
        ],
        env,
        log_dir,
    )
    workspace = home / "workspace.yaml"
    workspace.write_text(
        f"load_from:\n  - grpc_server:\n      host: 127.0.0.1\n      port: {port}\n"
        f"      location_name: {LOCATION}\n"
    )
    return code_server, workspace
