"""Step output is kept in Dagster's compute log files and echoed to the terminal by a thread, with no
`tail` or watcher process (trading_data/orchestration/compute_logs.py).

The end-to-end test runs a step through the platform's multiprocess executor on a temporary instance
configured with the project's ``dagster.yaml`` compute_logs section."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import pytest
import yaml

from trading_data.orchestration import compute_logs
from trading_data.orchestration.compute_logs import (
    ThreadMirroredComputeLogManager,
    default_base_dir,
    mirrored_to_file,
)
from trading_data.orchestration.executor import trading_data_executor

PROJECT_ROOT = Path(__file__).resolve().parents[1]


def test_output_of_python_the_descriptor_and_a_child_reaches_the_file_and_the_terminal(
    tmp_path: Path,
) -> None:
    log = tmp_path / "step.out"
    log.write_text("an earlier attempt\n")
    terminal = tmp_path / "terminal"
    with open(terminal, "w") as stream:
        with mirrored_to_file(stream, str(log)):
            stream.write("from python\n")
            stream.flush()
            os.write(stream.fileno(), b"from the descriptor\n")
            subprocess.run(["echo", "from a child process"], stdout=stream, check=True)
        stream.write("after the capture\n")
    said = "from python\nfrom the descriptor\nfrom a child process\n"
    assert log.read_text() == "an earlier attempt\n" + said
    assert terminal.read_text() == said + "after the capture\n"


def test_a_terminal_nobody_reads_does_not_hold_up_the_step(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(compute_logs, "DRAIN_SECONDS", 0.2)
    log = tmp_path / "step.out"
    unread, writer = os.pipe()  # a pipe's buffer holds 64 KiB; nothing reads this one
    said = b"x" * 300_000
    try:
        with open(writer, "wb", closefd=False) as stream:
            started = time.monotonic()
            with mirrored_to_file(stream, str(log)):
                os.write(stream.fileno(), said)
            waited = time.monotonic() - started
        assert log.read_bytes() == said  # the file, the UI's copy, has it all
        assert waited < 30  # bounded by DRAIN_SECONDS, not by a reader that never comes
    finally:
        os.close(unread)
        os.close(writer)


def test_the_logs_live_under_dagster_home_or_the_project_s_home_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "home"))
    assert ThreadMirroredComputeLogManager.from_config_value(None, {})._base_dir == str(
        tmp_path / "home" / "storage"
    )
    explicit = {"base_dir": str(tmp_path / "logs")}
    assert ThreadMirroredComputeLogManager.from_config_value(None, explicit)._base_dir == str(
        tmp_path / "logs"
    )
    monkeypatch.delenv("DAGSTER_HOME")
    monkeypatch.chdir(tmp_path)
    assert default_base_dir() == str(tmp_path / ".dagster_home" / "storage")


def test_a_stream_without_a_descriptor_is_left_alone(tmp_path: Path) -> None:
    import io

    stream = io.StringIO()
    with mirrored_to_file(stream, str(tmp_path / "step.out")):
        stream.write("kept in the stream\n")
    assert stream.getvalue() == "kept in the stream\n"


def _children() -> list[str]:
    """Command lines of this process's child processes."""
    pid = os.getpid()
    children: list[str] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        for child in (task / "children").read_text().split():
            children.append(Path(f"/proc/{child}/cmdline").read_bytes().replace(b"\0", b" ").decode().strip())
    return children


@dg.asset
def talkative_step() -> dg.MaterializeResult:
    print("hello from the step", flush=True)
    print("a warning from the step", file=sys.stderr, flush=True)
    return dg.MaterializeResult(metadata={"children": dg.MetadataValue.json(_children())})


def talkative_job() -> dg.JobDefinition:
    defs = dg.Definitions(
        assets=[talkative_step],
        jobs=[dg.define_asset_job("talkative_job", selection=[talkative_step.key])],
        executor=trading_data_executor,
    )
    return defs.resolve_job_def("talkative_job")


@pytest.mark.skipif(not Path("/proc/self/task").exists(), reason="reads child processes from /proc")
def test_a_step_run_keeps_its_output_for_the_ui_and_echoes_it_without_helper_processes(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    compute_logs = yaml.safe_load((PROJECT_ROOT / "dagster.yaml").read_text())["compute_logs"]
    compute_logs["config"] = {"base_dir": str(tmp_path / "storage")}
    with dg.instance_for_test(overrides={"compute_logs": compute_logs}) as instance:
        manager = instance.compute_log_manager
        assert isinstance(manager, ThreadMirroredComputeLogManager)
        result = dg.execute_job(dg.reconstructable(talkative_job), instance=instance)
        assert result.success
        event = instance.get_latest_materialization_event(talkative_step.key)
        assert event is not None and event.asset_materialization is not None
        assert event.asset_materialization.metadata["children"].value == []

        # Where the UI reads them: Dagster's files under base_dir, one pair per step process.
        [out] = (tmp_path / "storage").rglob("*.out")
        [err] = (tmp_path / "storage").rglob("*.err")
        assert "hello from the step\n" in out.read_text()
        assert "a warning from the step\n" in err.read_text()
    echoed = capfd.readouterr()
    assert "hello from the step\n" in echoed.out
    assert "a warning from the step\n" in echoed.err
