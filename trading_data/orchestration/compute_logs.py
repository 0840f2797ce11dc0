"""Dagster's local compute logs, mirrored to the terminal by a thread instead of two processes per stream.

Dagster's ``LocalComputeLogManager`` captures each step's stdout and stderr in files (the UI's logs) and
echoes each file back to the terminal with a ``tail -F`` subprocess, itself watched by a Python subprocess
that kills the tail if the step dies: four processes per step, ~0.2 s of CPU a step, ~5 s of a 25-step
session run (``bench/bench_session_run.py``, issue 11). Here a thread of the step's process echoes the
file: it ends with the process, so nothing needs watching. The files, their paths and the UI's view of
them are Dagster's own.

    compute_logs:
      module: trading_data.orchestration.compute_logs
      class: ThreadMirroredComputeLogManager
      config: {}          # base_dir: $DAGSTER_HOME/storage, as Dagster's (see default_base_dir)
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Generator, Iterator, Sequence
from contextlib import contextmanager
from typing import IO, Any, cast

from dagster import Field, StringSource

# No public names in Dagster 1.13 for the pieces its LocalComputeLogManager.capture_logs is made of.
from dagster._core.execution.compute_logs import _fileno, redirect_to_file
from dagster._core.instance.ref import compute_logs_directory
from dagster._core.storage.compute_log_manager import CapturedLogContext, ComputeIOType
from dagster._core.storage.local_compute_log_manager import IO_TYPE_EXTENSION, LocalComputeLogManager
from dagster._serdes import ConfigurableClassData
from dagster._utils import ensure_file, touch_file

# How often the echo looks for new output: `tail -F` looks every second.
POLL_SECONDS = 0.1
# How long the end of a capture waits for the echo to copy the rest.
DRAIN_SECONDS = 5.0
CHUNK_BYTES = 1 << 16


class ThreadMirroredComputeLogManager(LocalComputeLogManager):
    """``LocalComputeLogManager`` whose captured output reaches the terminal through a thread."""

    @classmethod
    def config_type(cls) -> dict[str, Any]:
        # Dagster's fields (a dict), with base_dir optional (see default_base_dir).
        fields = cast("dict[str, Any]", super().config_type())
        return {**fields, "base_dir": Field(StringSource, is_required=False)}

    @classmethod
    def from_config_value(  # type: ignore[override]
        cls, inst_data: ConfigurableClassData | None, config_value: dict[str, Any]
    ) -> ThreadMirroredComputeLogManager:
        config = dict(config_value)
        config.setdefault("base_dir", default_base_dir())
        return cls(inst_data=inst_data, **config)

    @contextmanager
    def capture_logs(self, log_key: Sequence[str]) -> Generator[CapturedLogContext, None, None]:
        outpath = self.get_captured_local_path(log_key, IO_TYPE_EXTENSION[ComputeIOType.STDOUT])
        errpath = self.get_captured_local_path(log_key, IO_TYPE_EXTENSION[ComputeIOType.STDERR])
        with mirrored_to_file(sys.stdout, outpath), mirrored_to_file(sys.stderr, errpath):
            yield CapturedLogContext(log_key)
        # What Dagster leaves to say the capture is complete.
        touch_file(self.complete_artifact_path(log_key))


def default_base_dir() -> str:
    """Dagster's default, ``$DAGSTER_HOME/storage``. Without DAGSTER_HOME (plain ``dagster dev``, whose
    instance is a temporary folder each process cannot know), ``.dagster_home/storage`` in the working
    folder, where ``make dev`` keeps them: every process of ``dagster dev`` runs in the project root."""
    home = os.environ.get("DAGSTER_HOME") or os.path.join(os.getcwd(), ".dagster_home")
    return compute_logs_directory(home)


@contextmanager
def mirrored_to_file(stream: IO[Any], path: str) -> Iterator[None]:
    """Send ``stream``'s file descriptor to ``path`` while echoing what arrives there to where it went before."""
    ensure_file(path)
    fd = _fileno(stream)
    if fd is None:  # a stream without a descriptor (a test's capture): Dagster's redirect captures nothing
        with redirect_to_file(stream, path):
            yield
        return
    terminal = os.dup(fd)
    start = os.path.getsize(path)  # only this capture's output, not an earlier attempt's
    stop = threading.Event()
    echo = threading.Thread(
        target=_echo, args=(path, start, terminal, stop), name="compute-log-echo", daemon=True
    )
    echo.start()
    try:
        with redirect_to_file(stream, path):
            yield
    finally:
        stop.set()  # after the redirect has flushed the stream and restored the descriptor
        # A terminal nobody reads (a full pipe) blocks the echo's writes; the step does not wait for it
        # longer than this (Dagster's `tail` was a process of its own, which the step never waited for).
        echo.join(DRAIN_SECONDS)


def _echo(path: str, start: int, terminal: int, stop: threading.Event) -> None:
    """Copy what is written to ``path`` from ``start`` on to ``terminal`` until ``stop``, then what is left;
    ``terminal`` is closed at the end."""
    try:
        with open(path, "rb") as source:
            source.seek(start)
            while True:
                last_pass = stop.is_set()  # read before draining: everything written before stop is copied
                while chunk := source.read(CHUNK_BYTES):
                    _write_all(terminal, chunk)
                if last_pass:
                    return
                stop.wait(POLL_SECONDS)
    except OSError:  # the terminal went away; the file keeps the output
        return
    finally:
        os.close(terminal)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]
