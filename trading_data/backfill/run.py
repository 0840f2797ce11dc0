"""Run a planned backfill as one Dagster asset backfill (the daemon of ``trading-data dev`` launches its
runs; the UI's backfill page shows it) and follow it in the terminal with progress and an ETA."""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Sequence

import dagster as dg
from dagster._core.definitions.assets.graph.asset_graph_subset import AssetGraphSubset
from dagster._core.definitions.events import AssetKeyPartitionKey
from dagster._core.execution.backfill import BulkActionStatus, PartitionBackfill
from dagster._core.utils import make_new_backfill_id

from trading_data.backfill.plan import BackfillPlan

POLL_SECONDS = 2.0
DONE = {
    BulkActionStatus.COMPLETED,
    BulkActionStatus.COMPLETED_SUCCESS,
    BulkActionStatus.COMPLETED_FAILED,
    BulkActionStatus.FAILED,
    BulkActionStatus.CANCELED,
}


def _instance() -> dg.DagsterInstance:
    """The instance of DAGSTER_HOME (``trading-data backfill`` sets it to the one `trading-data dev` runs)."""
    return dg.DagsterInstance.get()


def launch(
    plan: BackfillPlan, symbols: Sequence[str] = (), instance: dg.DagsterInstance | None = None
) -> str:
    """Submit the plan's assets and sessions as one backfill; returns its id."""
    from trading_data.definitions import defs

    instance = instance or _instance()
    backfill_id = make_new_backfill_id()
    config = {"resources": {"settings": {"config": {"symbols": list(symbols)}}}} if symbols else None
    graph = defs.resolve_asset_graph()
    # Exactly the plan's sessions of every asset: from_asset_partitions would also target what an offset
    # partition mapping puts downstream of them (indicators of the session after the range).
    target = AssetGraphSubset.from_asset_partition_set(
        {AssetKeyPartitionKey(dg.AssetKey(a), day.isoformat()) for a in plan.assets for day in plan.sessions},
        graph,
    )
    backfill = PartitionBackfill.from_asset_graph_subset(
        backfill_id=backfill_id,
        asset_graph_subset=target,
        backfill_timestamp=time.time(),
        tags={},
        dynamic_partitions_store=instance,
        title=f"trading-data backfill {plan.sessions[0]}..{plan.sessions[-1]}",
        description=f"{len(plan.sessions)} session(s) of {', '.join(plan.assets)}",
        run_config=config,
    )
    instance.add_backfill(backfill)
    return backfill_id


def backfill_runs(plan: BackfillPlan) -> int:
    """How many runs the asset backfill of ``plan`` launches, from the assets' backfill policies and
    dependencies as Dagster's asset backfill groups them (dagster/_core/execution/asset_backfill.py,
    ``_get_cant_run_because_of_parent_reason``): an asset joins its parents' runs when it has their policy
    and reads the same sessions of them, or reads an offset window (indicators: the session before too) and
    the whole range fits one of their runs; otherwise it runs once they are done. Each such wave of assets
    with one policy takes ``ceil(sessions / max_partitions_per_run)`` runs (one for a single-run policy).
    Checked against Dagster's own backfill iterations in trading_data_tests/history/test_batched_backfill.py.
    """
    from trading_data.definitions import defs

    graph = defs.resolve_asset_graph()
    sessions = len(plan.sessions)
    selected = {dg.AssetKey(a) for a in plan.assets}
    waves: dict[dg.AssetKey, int] = {}

    def joins(parent: dg.AssetKey, child: dg.AssetKey) -> bool:
        policy = graph.get(child).backfill_policy
        if policy != graph.get(parent).backfill_policy or policy is None:
            return False
        mapping = graph.get_partition_mapping(child, parent_asset_key=parent)
        if isinstance(mapping, dg.IdentityPartitionMapping) or (
            isinstance(mapping, dg.TimeWindowPartitionMapping)
            and mapping.start_offset == mapping.end_offset == 0
        ):
            return True
        return policy.max_partitions_per_run is None or policy.max_partitions_per_run > sessions

    def wave(key: dg.AssetKey) -> int:
        if key not in waves:
            parents = [p for p in graph.get(key).parent_keys if p in selected]
            waves[key] = max((wave(p) + (0 if joins(p, key) else 1) for p in parents), default=0)
        return waves[key]

    groups = {(wave(key), graph.get(key).backfill_policy) for key in selected}
    return sum(_runs(policy, sessions) for _, policy in groups)


def _runs(policy: dg.BackfillPolicy | None, sessions: int) -> int:
    if policy is None:
        return sessions
    if policy.max_partitions_per_run is None:
        return 1
    return math.ceil(sessions / policy.max_partitions_per_run)


def progress_line(done: int, failed: int, total: int, elapsed: float, status: str) -> str:
    """``[#####.....] 12/40 asset-sessions (1 failed), 3m10s elapsed, ETA 7m55s``."""
    width = 30
    filled = int(width * (done + failed) / total) if total else width
    eta = elapsed / (done + failed) * (total - done - failed) if done + failed else None
    text = f"[{'#' * filled}{'.' * (width - filled)}] {done}/{total} asset-sessions"
    if failed:
        text += f" ({failed} failed)"
    text += f", {_clock(elapsed)} elapsed"
    text += f", ETA {_clock(eta)}" if eta is not None else ", ETA after the first materialization"
    return f"{text} [{status.lower()}]"


def _clock(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m{secs:02d}s" if hours else f"{minutes}m{secs:02d}s"


def follow(backfill_id: str, plan: BackfillPlan, poll_seconds: float = POLL_SECONDS) -> int:
    """Print progress until the backfill ends; 0 when every asset-session materialized."""
    from trading_data.definitions import defs

    instance = _instance()
    graph = defs.resolve_asset_graph()
    started = time.monotonic()
    warned = False
    while True:
        backfill = instance.get_backfill(backfill_id)
        if backfill is None:
            print(f"backfill {backfill_id} is gone from the instance", file=sys.stderr)
            return 1
        data = backfill.get_asset_backfill_data(graph)
        total = data.target_subset.num_partitions_and_non_partitioned_assets
        done = data.materialized_subset.num_partitions_and_non_partitioned_assets
        failed = data.failed_and_downstream_subset.num_partitions_and_non_partitioned_assets
        elapsed = time.monotonic() - started
        print("\r" + progress_line(done, failed, total, elapsed, backfill.status.value), end="", flush=True)
        if backfill.status in DONE:
            print()
            return (
                0
                if backfill.status in (BulkActionStatus.COMPLETED_SUCCESS, BulkActionStatus.COMPLETED)
                else 1
            )
        if not warned and elapsed > 60 and done + failed == 0 and not data.requested_subset.asset_keys:
            print("\nno run launched yet: is the daemon running (`trading-data dev`)?", file=sys.stderr)
            warned = True
        time.sleep(poll_seconds)
