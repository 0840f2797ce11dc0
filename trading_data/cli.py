"""The ``trading-data`` command line: run the platform, manage its database, serve the simulator."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import sys
from pathlib import Path

from trading_data.backfill import commands as backfill_commands
from trading_data.db import aggregates, server
from trading_data.db.migrate import migrate, storage_mode
from trading_data.db.url import dagster_database_url, market_database_url, with_database
from trading_data.orchestration.queues import QUEUES
from trading_data.read import commands as read_commands
from trading_data.redact import redact
from trading_data.settings import ConfigurationError
from trading_data.settings.platform import DAGSTER_PG_URL, DATABASE_URL, POOL_LIMITS, SCHEMA

ENV_FILE_HEADER = "# written by `trading-data db start`; safe to delete"
# Variables earlier versions wrote into .env. Dagster's CLI injects .env over the environment, so they
# shadowed the user's own settings; the URLs are now resolved in code (trading_data/db/url.py).
RETIRED_ENV_FILE_VARIABLES = (DATABASE_URL.env_var, DAGSTER_PG_URL.env_var)


def _schema() -> str:
    return SCHEMA.get()


def ensure_database() -> str:
    """Start the embedded server unless an explicit URL is set; migrate; return the market URL."""
    if not DATABASE_URL.is_set():
        server.start()
    url = market_database_url()
    result = migrate(url, _schema())
    mode = "TimescaleDB" if result.timescale else "plain PostgreSQL (TimescaleDB extension not available)"
    print(f"database {redact(url)}: schema {result.schema}, storage mode {mode}", file=sys.stderr)
    _ensure_dagster_database()
    retire_env_file()
    return url


def _ensure_dagster_database() -> None:
    url = dagster_database_url()
    server.create_missing_databases(with_database(url, "postgres"), [url.rsplit("/", 1)[-1].split("?")[0]])


def retire_env_file(env_path: Path | None = None) -> Path | None:
    """Fix a ``.env`` an earlier ``trading-data db start`` wrote (it starts with ENV_FILE_HEADER): drop
    the database URLs it held, which Dagster's CLI injected over the user's own; delete the file if
    nothing else is left. A ``.env`` the user wrote is left alone. Returns the path if it was changed."""
    env_path = server.project_root() / ".env" if env_path is None else env_path
    if not env_path.is_file():
        return None
    lines = env_path.read_text().splitlines()
    if not lines or lines[0].strip() != ENV_FILE_HEADER:
        return None
    kept = [
        line
        for line in lines[1:]
        if line.split("=", 1)[0].strip().removeprefix("export ").strip() not in RETIRED_ENV_FILE_VARIABLES
    ]
    if any(line.strip() and not line.lstrip().startswith("#") for line in kept):
        env_path.write_text("\n".join(kept) + "\n")
    else:
        env_path.unlink()
    print(f"{env_path}: removed database URLs an earlier version wrote there", file=sys.stderr)
    return env_path


def dagster_home() -> Path:
    home = server.project_root() / ".dagster_home"
    home.mkdir(exist_ok=True)
    shutil.copyfile(server.project_root() / "dagster.yaml", home / "dagster.yaml")
    return home


def dagster_environment() -> dict[str, str]:
    """The environment of `trading-data dev`'s processes: the user's, with DAGSTER_HOME defaulting to
    the project's ``.dagster_home``. A DAGSTER_HOME the user exported wins, as it does for ``health``,
    ``backfill`` and Dagster's own CLI: otherwise those would look at another instance than the UI's. The
    database URLs are resolved in code by every process, so nothing here can shadow the user's settings."""
    env = dict(os.environ)
    if not env.get("DAGSTER_HOME"):
        env["DAGSTER_HOME"] = str(dagster_home())
    elif not (Path(env["DAGSTER_HOME"]) / "dagster.yaml").exists():
        print(
            f"DAGSTER_HOME={env['DAGSTER_HOME']} (yours) holds no dagster.yaml: Dagster keeps this "
            f"instance's runs there with its defaults; the platform's is {server.project_root() / 'dagster.yaml'}",
            file=sys.stderr,
        )
    return env


DEV_SUPERSEDED_FILTER = "ignore:Function `dev_command` is superseded"


def cmd_dev(args: argparse.Namespace) -> int:
    pool_limits = {pool: limit.get() for pool, limit in POOL_LIMITS.items()}  # a bad one stops us here
    ensure_database()
    env = dagster_environment()
    root = server.project_root()
    _set_pool_limits(env, pool_limits)
    # `dagster dev` warns at every start that `dg dev` supersedes it: advice about how this command starts
    # Dagster (dg dev wants a dg project), nothing the user can act on. Their own PYTHONWARNINGS come
    # after this filter, so theirs win.
    env["PYTHONWARNINGS"] = ",".join(filter(None, [DEV_SUPERSEDED_FILTER, env.get("PYTHONWARNINGS")]))
    print(f"\n  trading_data: Dagster UI at http://{args.host}:{args.port}\n", flush=True)
    dagster = str(Path(sys.executable).with_name("dagster"))
    command = [dagster, "dev", "-w", str(root / "workspace.yaml"), "-h", args.host, "-p", str(args.port)]
    # Run from DAGSTER_HOME: Dagster warns when the working folder holds another dagster.yaml.
    os.chdir(env["DAGSTER_HOME"])
    # `dagster dev` maps SIGTERM to its SIGINT handler; a shell starting us in the background (`make dev &`,
    # nohup) leaves SIGINT ignored, and the ignored disposition survives exec: SIGTERM would then be ignored
    # too and the platform could only be stopped by SIGKILL, leaving its children behind.
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    os.execve(dagster, command, env)
    return 0  # not reached


def _set_pool_limits(env: dict[str, str], limits: dict[str, int]) -> None:
    """How many steps may call each vendor at once across all runs (``TRADING_DATA_POOL_<NAME>``)."""
    from dagster import DagsterInstance

    os.environ["DAGSTER_HOME"] = env["DAGSTER_HOME"]
    with DagsterInstance.get() as instance:
        for pool, limit in limits.items():
            instance.event_log_storage.set_concurrency_slots(pool, limit)


def cmd_db(args: argparse.Namespace) -> int:
    if args.action == "url":
        print(market_database_url() if args.show_password else redact(market_database_url()))
        return 0
    if args.action == "start":
        if DATABASE_URL.is_set():
            print(
                f"{DATABASE_URL.env_var} is set: using {redact(market_database_url())}, no embedded server needed"
            )
        else:
            status = server.start()
            print(f"embedded PostgreSQL running on 127.0.0.1:{status.port} (data in {status.data_dir})")
        ensure_database()
        return 0
    if args.action == "stop":
        status = server.stop()
        print("embedded PostgreSQL stopped" if not status.running else "embedded PostgreSQL still running")
        return 0
    if args.action == "migrate":
        result = migrate(market_database_url(), _schema())
        print(
            f"applied: {', '.join(result.applied) or 'nothing new'}; "
            f"mode: {'timescaledb' if result.timescale else 'postgresql'}"
        )
        return 0
    if args.action == "status":
        embedded = server.status()
        info: dict[str, object] = {
            "url": redact(market_database_url()),
            "embedded": not DATABASE_URL.is_set(),
            "embedded_running": embedded.running,
        }
        try:
            info.update(storage_mode(market_database_url(), _schema()))
            info.update(aggregates.status(market_database_url(), _schema()))  # retention, compression
            info["reachable"] = True
        except Exception as exc:  # noqa: BLE001 - reported, not raised: status must always answer
            info["reachable"] = False
            info["error"] = f"{type(exc).__name__}: {exc}".replace(
                market_database_url(), redact(market_database_url())
            )
            info["hint"] = "start it with `trading-data db start` (or `make dev`)"
        print(json.dumps(info, indent=2, default=str))
        return 0 if info["reachable"] else 1
    raise AssertionError(args.action)


def cmd_simulator(args: argparse.Namespace, rest: list[str]) -> int:
    from trading_data.sources.simulator.server import main as simulator_main

    return int(simulator_main(rest) or 0)


def cmd_health(args: argparse.Namespace) -> int:
    from trading_data.health import main as health_main

    # Without DAGSTER_HOME, look at the instance `trading-data dev` runs (daemon heartbeat, freshness),
    # with the project's current dagster.yaml (an older copy read its URL from a variable no longer set).
    if (
        not os.environ.get("DAGSTER_HOME")
        and (server.project_root() / ".dagster_home" / "dagster.yaml").exists()
    ):
        os.environ["DAGSTER_HOME"] = str(dagster_home())

    return health_main(json_output=args.json)


def cmd_worker(args: argparse.Namespace) -> int:
    from trading_data.orchestration.celery_worker import exec_worker, worker_command

    exec_worker(worker_command(args.queues, name=args.name, concurrency=args.concurrency))
    return 0  # not reached: the worker replaces this process


def cmd_backfill(args: argparse.Namespace) -> int:
    # The instance `trading-data dev` runs: its daemon launches the backfill's runs.
    os.environ.setdefault("DAGSTER_HOME", str(dagster_home()))
    return backfill_commands.cmd_backfill(args)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="trading-data", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    dev = sub.add_parser("dev", help="start the database and run the Dagster webserver with the daemon")
    dev.add_argument("--host", default="127.0.0.1")
    dev.add_argument("--port", type=int, default=3000)
    db = sub.add_parser("db", help="manage the database")
    db.add_argument("action", choices=["url", "start", "stop", "status", "migrate"])
    db.add_argument("--show-password", action="store_true", help="print the URL with its password")
    sub.add_parser(
        "simulator", help="the offline market simulator (simulator serve --port N)", add_help=False
    )
    worker = sub.add_parser("worker", help="a Celery worker for one queue (TRADING_DATA_EXECUTOR=celery)")
    worker.add_argument("queues", nargs="+", choices=QUEUES, metavar="queue", help=" | ".join(QUEUES))
    worker.add_argument("--name", help="the worker's node name (default: the queue's)")
    worker.add_argument("--concurrency", type=int, help="steps at once (default: the queue's vendor pool)")
    health = sub.add_parser("health", help="check database, vendors, daemon and freshness")
    health.add_argument("--json", action="store_true", help="machine-readable output for probes")
    read_commands.add_parsers(sub)  # export, read, catalog
    backfill_commands.add_parser(sub)
    return parser


# Exit status for a configuration error (argparse uses 2 for bad arguments too).
CONFIGURATION_ERROR_EXIT = 2


def main(argv: list[str] | None = None) -> int:
    """Run a command; a configuration error prints its one sentence (no traceback) and exits 2."""
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        if argv[:1] == ["simulator"]:
            return cmd_simulator(argparse.Namespace(), argv[1:])
        args = build_parser().parse_args(argv)
        handlers = {
            "dev": cmd_dev,
            "db": cmd_db,
            "health": cmd_health,
            "backfill": cmd_backfill,
            "worker": cmd_worker,
        }
        if args.command in read_commands.COMMANDS:
            return read_commands.run(args)
        return handlers[args.command](args)
    except ConfigurationError as err:  # every settings error, the clock's (TRADING_DATA_NOW) included
        print(f"trading-data: {err}", file=sys.stderr)
        return CONFIGURATION_ERROR_EXIT


if __name__ == "__main__":
    raise SystemExit(main())
