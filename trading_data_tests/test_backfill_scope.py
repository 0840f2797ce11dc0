"""A backfill touches only the partitions it names: nothing in the graph reacts to a materialization of
another session by materializing a partition nobody asked for (issue 8: a 2026-11-24..25 backfill of
prices also materialized indicators for 2026-11-27, with 0 rows)."""

from __future__ import annotations

import datetime as dt

import dagster as dg
import pytest

from trading_data.definitions import defs

NY = dt.timezone(dt.timedelta(hours=-5))


@pytest.mark.parametrize(
    "evaluated_at",
    [
        dt.datetime(2026, 11, 26, 11, tzinfo=NY),  # Thanksgiving: the latest partition is 2026-11-27
        dt.datetime(2026, 11, 28, 11, tzinfo=NY),  # a Saturday
        dt.datetime(2026, 12, 1, 14, tzinfo=NY),  # mid-session
    ],
)
def test_backfilling_prices_requests_no_other_partition(evaluated_at: dt.datetime) -> None:
    with dg.instance_for_test() as instance:
        for partition in ("2026-11-24", "2026-11-27", "2026-11-30", "2026-12-01"):
            instance.report_runless_asset_event(dg.AssetMaterialization("prices", partition=partition))
        first = dg.evaluate_automation_conditions(defs=defs, instance=instance, evaluation_time=evaluated_at)
        instance.report_runless_asset_event(dg.AssetMaterialization("prices", partition="2026-11-25"))
        after = dg.evaluate_automation_conditions(
            defs=defs,
            instance=instance,
            evaluation_time=evaluated_at + dt.timedelta(minutes=1),
            cursor=first.cursor,
        )
    requested = {
        (r.key.to_user_string(), pk.partition_key)
        for r in after.results
        for pk in r.true_subset.expensively_compute_asset_partitions()
    }
    assert requested == set()
