"""``trading-data dev`` as a user starts it: in the background with their own DAGSTER_HOME exported.

Two defects found running ``make dev &`` at 00:18 ET: ``dev`` replaced an exported DAGSTER_HOME with the
project's ``.dagster_home`` (so ``health``, ``backfill run`` and Dagster's CLI, which honour it, looked at
another instance than the UI's), and SIGTERM was ignored (a background shell ignores SIGINT, the
disposition survives exec, and ``dagster dev`` maps SIGTERM to its SIGINT handler). And at every start
``dagster dev`` printed a SupersessionWarning telling the user to run ``dg dev`` instead."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from trading_data_tests.processes.conftest import IsolatedInstance
from trading_data_tests.processes.helpers import BIN, free_port, group_alive, http_get, wait_until

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("project_env_file")]


def _environ(pid: int) -> dict[str, str]:
    raw = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    return dict(item.decode(errors="replace").split("=", 1) for item in raw if b"=" in item)


def _children(pid: int) -> list[int]:
    out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True, check=False).stdout
    return [int(p) for p in out.split()]


def test_dev_in_the_background_keeps_the_users_dagster_home_and_stops_on_sigterm(
    isolated_instance: IsolatedInstance,
) -> None:
    port = free_port()
    logs = isolated_instance.logs
    logs.mkdir(parents=True, exist_ok=True)
    log_path = logs / "dev.log"

    def as_a_background_shell_job() -> None:
        os.setsid()
        signal.signal(signal.SIGINT, signal.SIG_IGN)

    with log_path.open("ab") as log:
        dev = subprocess.Popen(
            [str(BIN / "trading-data"), "dev", "--port", str(port)],
            cwd=logs,
            env={**isolated_instance.env, "PYTHONWARNINGS": "default::DeprecationWarning"},
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            preexec_fn=as_a_background_shell_job,
        )
    try:
        wait_until(
            lambda: b"version" in http_get(f"http://127.0.0.1:{port}/server_info", timeout=2),
            timeout=180,
            what=f"the webserver on port {port} (log: {log_path})",
        )
        homes = {_environ(pid).get("DAGSTER_HOME") for pid in [dev.pid, *_children(dev.pid)]}
        assert homes == {str(isolated_instance.home)}, homes
        # The user's warning filters reach Dagster's processes, after ours (the last matching filter wins).
        filters = {_environ(pid).get("PYTHONWARNINGS", "") for pid in _children(dev.pid)}
        assert filters and all(f.endswith(",default::DeprecationWarning") for f in filters), filters
        # Dagster's notice that `dg dev` supersedes `dagster dev` is about how we start it, not for the user.
        assert b"SupersessionWarning" not in log_path.read_bytes(), log_path.read_text(errors="replace")

        os.kill(dev.pid, signal.SIGTERM)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and (dev.poll() is None or group_alive(dev.pid)):
            time.sleep(0.5)
        assert dev.poll() is not None, "trading-data dev ignored SIGTERM for 60 s"
        assert not group_alive(dev.pid), "trading-data dev exited but left processes of its group running"
    finally:
        if group_alive(dev.pid):
            os.killpg(dev.pid, signal.SIGKILL)
        dev.wait(timeout=30)
