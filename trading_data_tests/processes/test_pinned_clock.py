"""``pytest --now=<ISO>`` pins ``trading_data.clock.utc_now`` for the tests and for the processes they start."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from trading_data.clock import NOW_ENV
from trading_data_tests.processes.helpers import isolated_environment, start_process

PINNED = "2026-11-26T11:00-05:00"  # Thanksgiving: a holiday

PROBE = """
import os
import os
import subprocess
import sys

from trading_data.clock import utc_now


def test_probe(tmp_path):
    child = subprocess.run(
        [sys.executable, "-c", "from trading_data.clock import utc_now; print(utc_now().isoformat())"],
        capture_output=True, text=True, check=True,
    )
    print(f"PROBE env={os.environ.get('TRADING_DATA_NOW')} test={utc_now().isoformat()} child={child.stdout.strip()}")
"""


def _run_pytest(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    (tmp_path / "test_probe.py").write_text(PROBE)
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "trading_data_tests.conftest",
            "-p",
            "no:cacheprovider",
            "-s",
            "-n",
            "0",
            "-c",
            str(tmp_path / "pytest.ini"),
            "--rootdir",
            str(tmp_path),
            *args,
            str(tmp_path / "test_probe.py"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
        env={k: v for k, v in os.environ.items() if k != NOW_ENV},
    )


def test_now_option_pins_the_clock_for_tests_and_their_subprocesses(tmp_path: Path) -> None:
    done = _run_pytest(tmp_path, f"--now={PINNED}")
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"{NOW_ENV}={PINNED} (utc_now pinned)" in done.stdout
    probe = next(line for line in done.stdout.splitlines() if "PROBE " in line)
    expected = "2026-11-26T16:00:00+00:00"
    assert probe.endswith(f"PROBE env={PINNED} test={expected} child={expected}"), probe


def test_a_bad_now_option_is_one_sentence_naming_it(tmp_path: Path) -> None:
    done = _run_pytest(tmp_path, "--now=2026-11-26T11:00")
    assert done.returncode == pytest.ExitCode.USAGE_ERROR, done.stdout + done.stderr
    assert "--now='2026-11-26T11:00' (pytest option) cannot pin the clock" in done.stderr
    assert "has no UTC offset" in done.stderr
    assert "PROBE" not in done.stdout


def test_isolated_processes_keep_the_pinned_clock_and_nothing_else(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(NOW_ENV, PINNED)
    monkeypatch.setenv("TRADING_DATA_SYMBOLS", "IBM")  # the dev environment's settings never leak in
    env = isolated_environment(tmp_path / "home", "postgresql://m", "postgresql://d")
    assert env[NOW_ENV] == PINNED
    assert "TRADING_DATA_SYMBOLS" not in env
    proc = start_process(
        "clock",
        [sys.executable, "-c", "from trading_data.clock import utc_now; print(utc_now().isoformat())"],
        env,
        tmp_path / "logs",
    )
    assert proc.popen.wait(timeout=60) == 0, proc.log()
    assert proc.log().strip() == "2026-11-26T16:00:00+00:00"
