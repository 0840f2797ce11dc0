"""The platform's executor forks step processes from a forkserver that has the definitions imported
(issue 11: with ``spawn`` every step imported them again), unless the run config chooses a start method.

Runs go through the multiprocess executor on a real temporary instance: ``execute_job(reconstructable(...))``.
"""

from __future__ import annotations

import gc
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import dagster as dg
import pytest
from dagster_shared.utils.cached_method import CACHED_METHOD_CACHE_FIELD

from trading_data.orchestration.executor import (
    FORKSERVER_START,
    STEP_PRELOAD_MODULES,
    trading_data_executor,
    with_default_start_method,
)


@dg.asset
def modules_seen_by_the_step() -> dg.MaterializeResult:
    # Read before anything here imports the definitions: only a preloading forkserver has them.
    definitions = sys.modules.get("trading_data.definitions")
    return dg.MaterializeResult(
        metadata={
            "definitions_preloaded": definitions is not None,
            # What the server did once for every step (trading_data/step_forkserver.py): the CLI package
            # (pytest is this run's main script, so nothing else imports it), the code location's repository
            # (Definitions caches it), a frozen heap.
            "cli_preloaded": "dagster._cli" in sys.modules,
            "repository_built": definitions is not None
            and "get_repository_def" in vars(definitions.defs).get(CACHED_METHOD_CACHE_FIELD, {}),
            "frozen_objects": gc.get_freeze_count(),
        }
    )


def probe_job() -> dg.JobDefinition:
    defs = dg.Definitions(
        assets=[modules_seen_by_the_step],
        jobs=[dg.define_asset_job("probe_job", selection=[modules_seen_by_the_step.key])],
        executor=trading_data_executor,
    )
    return defs.resolve_job_def("probe_job")


@pytest.fixture
def instance() -> Iterator[dg.DagsterInstance]:
    with dg.instance_for_test() as instance:
        yield instance


def _seen_by_the_step(instance: dg.DagsterInstance, run_config: dict[str, Any]) -> dict[str, Any]:
    result = dg.execute_job(dg.reconstructable(probe_job), instance=instance, run_config=run_config)
    assert result.success
    event = instance.get_latest_materialization_event(modules_seen_by_the_step.key)
    assert event is not None and event.asset_materialization is not None
    return {key: value.value for key, value in event.asset_materialization.metadata.items()}


def test_steps_fork_from_a_server_with_the_definitions_imported(instance: dg.DagsterInstance) -> None:
    seen = _seen_by_the_step(instance, {})
    assert seen["definitions_preloaded"] is True
    assert seen["cli_preloaded"] is True
    assert seen["repository_built"] is True
    assert seen["frozen_objects"] > 100_000


def test_a_start_method_in_the_run_config_wins(instance: dg.DagsterInstance) -> None:
    config = {"execution": {"config": {"multiprocess": {"start_method": {"spawn": {}}}}}}
    seen = _seen_by_the_step(instance, config)
    assert seen["definitions_preloaded"] is False
    assert seen["frozen_objects"] == 0


def test_the_default_start_method_fills_only_what_is_unset() -> None:
    assert with_default_start_method({"multiprocess": {"max_concurrent": 2}}) == {
        "multiprocess": {"max_concurrent": 2, "start_method": FORKSERVER_START}
    }
    spawn = {"multiprocess": {"start_method": {"spawn": {}}}}
    assert with_default_start_method(spawn) == spawn
    assert with_default_start_method({"in_process": {}}) == {"in_process": {}}


def test_every_preloaded_module_imports() -> None:
    # The forkserver skips a preload module that fails to import without a word (multiprocessing's
    # forkserver.main), so a renamed module would silently bring the per-step imports back.
    code = "import importlib, sys; [importlib.import_module(m) for m in sys.argv[1:]]"
    done = subprocess.run([sys.executable, "-c", code, *STEP_PRELOAD_MODULES], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]


# Imported by the steps only (the vendor clients by the feed steps, the drivers by every step that reads or
# writes): a definitions load (the CLI's orchestrating process, the code server)
# does without them, and the forkserver preloads them for the steps (issue 11).
STEP_ONLY_MODULES = (
    "httpx",
    "tenacity",
    "trading_data.sources.client",
    "trading_data.sources.simulator.app",
    "psycopg",
    "adbc_driver_manager",
    "adbc_driver_postgresql",
    "pyarrow.dataset",
    "talib",
)


@pytest.mark.parametrize("collecting", [True, False])
def test_definitions_load_leaves_out_step_only_modules_and_restores_the_collector(collecting: bool) -> None:
    code = (
        "import gc, sys\n"
        f"{'' if collecting else 'gc.disable()'}\n"
        "import trading_data.definitions\n"
        "print(gc.isenabled(), *sorted(m for m in sys.argv[1:] if m in sys.modules))\n"
    )
    done = subprocess.run([sys.executable, "-c", code, *STEP_ONLY_MODULES], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == [str(collecting)]


def test_the_forkserver_preloads_the_step_only_modules() -> None:
    code = (
        "import importlib, sys\n"
        f"for m in {STEP_PRELOAD_MODULES!r}: importlib.import_module(m)\n"
        "print(*[m for m in sys.argv[1:] if m not in sys.modules])\n"
    )
    done = subprocess.run([sys.executable, "-c", code, *STEP_ONLY_MODULES], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == []


def test_definitions_load_prints_no_warning() -> None:
    # The beta `backfill_policy` parameter and the preview package loader would print at every load of the
    # code location (the CLI, `dagster dev`, every step) without the filters in trading_data/definitions.py.
    done = subprocess.run(
        [sys.executable, "-W", "default", "-c", "import trading_data.definitions"],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "Warning" not in done.stderr, done.stderr[-2000:]
