"""Runs of several sessions: a backfill launches one run per ``SESSIONS_PER_RUN`` sessions
(``BackfillPolicy.multi_run``), and in such a run every asset and check does, for each session of the
run's partition range in turn, exactly what a one-session run does. A one-session run (a schedule tick,
the UI's materialize of one partition) takes the same paths as before: ``context.partition_keys`` is
its one key, and metadata and check results are reported as they always were.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import dagster as dg
import pandas as pd

from trading_data.db.frame_chunks import FrameChunks, SessionChunks

SESSIONS_PER_RUN = 20
"""Sessions one backfill run materializes (about a month): a year is 13 runs, not 252. Bounded so a
failed run repeats at most a month, and a feed's transaction stays a month long."""


def session_backfill_policy() -> dg.BackfillPolicy:
    """The backfill policy of every session-partitioned asset that handles a range of sessions."""
    return dg.BackfillPolicy.multi_run(max_partitions_per_run=SESSIONS_PER_RUN)


def run_sessions(context: dg.AssetExecutionContext | dg.AssetCheckExecutionContext) -> list[str]:
    """The run's session keys, oldest first: one for a one-session run."""
    return list(context.partition_keys)


def is_one_session(context: dg.AssetExecutionContext | dg.AssetCheckExecutionContext) -> bool:
    return context.has_partition_key


def label(context: dg.AssetExecutionContext, name: str, key: str) -> str:
    """``name`` in messages: with the session when the run has several, so an error names it."""
    return name if is_one_session(context) else f"{name} {key}"


def add_session_metadata(context: dg.AssetExecutionContext, key: str, metadata: Mapping[str, Any]) -> None:
    """The session's materialization metadata: the output's in a one-session run, else scoped to ``key``."""
    if is_one_session(context):
        context.add_output_metadata(dict(metadata))
    else:
        context.add_asset_metadata(dict(metadata), partition_key=key)


def rows_of_session(frame: pd.DataFrame, key: str, column: str = "session") -> pd.DataFrame:
    """The rows of one session of an upstream frame loaded for the run's range (each session its own)."""
    if frame.empty:
        return frame
    if column == "session":
        return frame[frame["session"] == dt.date.fromisoformat(key)]
    days = frame[column].dt.tz_convert("America/New_York").dt.date
    return frame[days == dt.date.fromisoformat(key)]


def session_frames(context: dg.AssetExecutionContext, build: Callable[[str], pd.DataFrame]) -> pd.DataFrame:
    """``build(key)`` for every session of the run, as one frame (the IO manager writes the range)."""
    frames = [build(key) for key in run_sessions(context)]
    if len(frames) == 1:
        return frames[0]
    kept = [f for f in frames if len(f)] or frames[:1]
    return pd.concat(kept, ignore_index=True)


def session_streams(context: dg.AssetExecutionContext, build: Callable[[str], FrameChunks]) -> FrameChunks:
    """``build(key)``'s stream for one session, or a :class:`SessionChunks` of one per session of the run
    (planned up front, so a missing selection fails the run before any fetch; fetched session by session)."""
    keys = run_sessions(context)
    if is_one_session(context):
        return build(keys[0])
    return SessionChunks({key: build(key) for key in keys})


def check_sessions(
    context: dg.AssetCheckExecutionContext, evaluate: Callable[[str], dg.AssetCheckResult]
) -> Iterator[Any]:
    """A partitioned check's results: ``evaluate(key)`` for the one session of a one-session run, else one
    evaluation per session of the range, each recorded against its session (and describing it), and the
    check's output once. A failed blocking check then stops the run's downstream steps as in one session.

    Check bodies ``yield from`` it and are annotated ``-> Any``: Dagster's typing of ``@asset_check`` wants
    a function returning one AssetCheckResult, though it runs generators too."""
    if is_one_session(context):
        yield evaluate(context.partition_key)
        return
    spec = context.check_specs[0]
    failed = []
    for key in run_sessions(context):
        result = evaluate(key)
        if not result.passed:
            failed.append(key)
        yield dg.AssetCheckEvaluation(
            asset_key=spec.asset_key,
            check_name=spec.name,
            passed=result.passed,
            metadata=result.metadata,
            target_materialization_data=_latest_materialization(context, spec.asset_key, key),
            severity=result.severity,
            description=f"{key}: {result.description or ('passed' if result.passed else 'failed')}",
            blocking=spec.blocking,
            partition=key,
        )
    if failed:
        context.log.error(f"{spec.name} failed for session(s) {', '.join(failed)}")
    yield dg.Output(None)


def _latest_materialization(context: dg.AssetCheckExecutionContext, asset_key: dg.AssetKey, key: str) -> Any:
    """What Dagster records as a check's target for one partition: that partition's latest materialization."""
    from dagster._core.definitions.asset_checks.asset_check_evaluation import (
        AssetCheckEvaluationTargetMaterializationData,
    )

    records = context.instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=asset_key, asset_partitions=[key]), limit=1
    ).records
    if not records:
        return None
    record = records[0]
    return AssetCheckEvaluationTargetMaterializationData(
        run_id=record.event_log_entry.run_id, storage_id=record.storage_id, timestamp=record.timestamp
    )
