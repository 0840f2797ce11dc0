"""`trading-data backfill`: bad arguments are one sentence; `run` submits one asset backfill of the plan's
sessions and assets (with the symbols in its run config) to the Dagster instance."""

from __future__ import annotations

import datetime as dt

import dagster as dg
import pytest

from trading_data.backfill.plan import PlanInputs, plan_backfill
from trading_data.backfill.run import launch, progress_line
from trading_data.cli import CONFIGURATION_ERROR_EXIT, main
from trading_data.definitions import defs


@pytest.mark.parametrize(
    ("argv", "problem"),
    [
        (["--from", "2026-11-25", "--to", "2026-11-24"], "2026-11-24 is before --from 2026-11-25"),
        (["--from", "25/11/2026", "--to", "2026-11-24"], "must be a date YYYY-MM-DD"),
        (["--from", "2026-11-24", "--to", "2026-11-25", "--assets", "prices,bars"], "unknown asset(s) bars"),
        (["--from", "2026-11-24", "--to", "2026-11-25", "--symbols", "AAPL,no way"], "--symbols"),
    ],
)
def test_bad_arguments_are_one_sentence(
    argv: list[str], problem: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["backfill", "plan", *argv]) == CONFIGURATION_ERROR_EXIT
    err = capsys.readouterr().err
    assert problem in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_run_submits_one_backfill_of_the_plan() -> None:
    plan = plan_backfill(
        dt.date(2026, 11, 24),
        dt.date(2026, 11, 30),
        PlanInputs(symbols=("AAPL",)),
        ["selected_tickers", "prices"],
        today=dt.date(2026, 12, 1),
    )
    with dg.instance_for_test() as instance:
        backfill_id = launch(plan, ("AAPL",), instance=instance)
        backfill = instance.get_backfill(backfill_id)
        assert backfill is not None
        data = backfill.get_asset_backfill_data(defs.resolve_asset_graph())
        targets = {
            (key.asset_key.to_user_string(), key.partition_key)
            for key in data.target_subset.iterate_asset_partitions()
        }
    sessions = ["2026-11-24", "2026-11-25", "2026-11-27", "2026-11-30"]  # Thanksgiving is no session
    assert targets == {(a, s) for a in ("selected_tickers", "prices") for s in sessions}
    assert backfill.run_config == {"resources": {"settings": {"config": {"symbols": ["AAPL"]}}}}


def test_run_targets_only_the_plans_sessions_of_every_asset() -> None:
    """indicators reads the previous session's prices too: Dagster's from_asset_partitions then targets the
    session after the range as well (its parent's child), which the backfill would materialize from half
    its data. The plan names sessions, so each asset gets exactly those."""
    plan = plan_backfill(
        dt.date(2026, 11, 24),
        dt.date(2026, 11, 27),
        PlanInputs(symbols=("AAPL",)),
        ["prices", "indicators", "daily_report"],
        today=dt.date(2026, 12, 1),
    )
    with dg.instance_for_test() as instance:
        backfill = instance.get_backfill(launch(plan, ("AAPL",), instance=instance))
        assert backfill is not None
        data = backfill.get_asset_backfill_data(defs.resolve_asset_graph())
        targets = {
            (key.asset_key.to_user_string(), key.partition_key)
            for key in data.target_subset.iterate_asset_partitions()
        }
    sessions = ["2026-11-24", "2026-11-25", "2026-11-27"]
    assert targets == {(a, s) for a in ("prices", "indicators", "daily_report") for s in sessions}


def test_progress_line() -> None:
    assert progress_line(3, 1, 8, 120.0, "REQUESTED") == (
        "[###############...............] 3/8 asset-sessions (1 failed), 2m00s elapsed, ETA 2m00s [requested]"
    )
    assert progress_line(0, 0, 8, 5.0, "REQUESTED").endswith(
        "ETA after the first materialization [requested]"
    )
