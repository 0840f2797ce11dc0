"""Calendar-aware freshness: the pure expectations, and the Dagster checks against an instance."""

import datetime as dt

import dagster as dg
import pytest

from trading_data.calendar import NEW_YORK
from trading_data.defs.monitoring.freshness import (
    FRESHNESS_CHECKS,
    FRESHNESS_JOB,
    build_freshness_checks,
    freshness_sensor,
)
from trading_data.monitoring.freshness import (
    FAMILIES,
    Materialization,
    evaluate_freshness,
    evaluate_past_session,
    expected_latest,
)
from trading_data_tests.factories import materialize_at


def ny(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=NEW_YORK)


@pytest.mark.parametrize(
    ("moment", "previous", "quotes_tick"),
    [
        ("2026-11-26 11:00", "2026-11-25", "15:45"),  # Thanksgiving
        ("2026-11-26 17:00", "2026-11-25", "15:45"),
        ("2026-11-28 11:00", "2026-11-27", "13:00"),  # a Saturday after the early close
        ("2026-11-29 15:00", "2026-11-27", "13:00"),
        ("2026-12-25 12:00", "2026-12-24", "13:00"),
    ],
)
def test_closed_days_expect_the_previous_session_complete(
    moment: str, previous: str, quotes_tick: str
) -> None:
    assert expected_latest("quotes", ny(moment)) == ny(f"{previous} {quotes_tick}")
    assert expected_latest("daily_report", ny(moment)) == ny(f"{previous} 16:30")
    missing = evaluate_freshness("quotes", ny(moment), None)
    assert not missing.passed and missing.severity == "fail"
    assert f"no materialization of {previous} yet" in missing.reason
    assert f"--partition {previous}" in missing.reason
    assert evaluate_freshness("quotes", ny(moment), ny(f"{previous} 16:35")).passed


def test_before_the_first_tick_the_previous_session_must_be_complete() -> None:
    """Regression: at 00:18 or 09:05, before today's first due tick, an empty previous session was
    "no expectation" and health said OK all night."""
    assert expected_latest("quotes", ny("2026-11-24 09:05")) == ny("2026-11-23 15:45")  # 09:00 + 10 min
    assert expected_latest("selection", ny("2026-11-24 09:40")) == ny("2026-11-23 09:35")
    assert expected_latest("daily_report", ny("2026-11-24 16:45")) == ny("2026-11-23 16:30")
    assert expected_latest("quotes", ny("2026-11-30 08:00")) == ny("2026-11-27 13:00")  # Monday morning
    overnight = evaluate_freshness("prices", ny("2026-12-02 00:18"), None)
    assert not overnight.passed and overnight.severity == "fail"
    assert "15:05 ET prices_schedule tick of 2026-12-01" in overnight.reason
    # Recomputed by the 16:30 full pipeline: complete.
    assert evaluate_freshness("prices", ny("2026-12-02 00:18"), ny("2026-12-01 16:41")).passed


def test_due_ticks_on_a_normal_session() -> None:
    now = ny("2026-11-24 11:00")
    assert expected_latest("quotes", now) == ny("2026-11-24 10:45")
    assert expected_latest("trades", now) == ny("2026-11-24 10:30")
    assert expected_latest("prices", now) == ny("2026-11-24 10:05")
    assert expected_latest("options", now) == ny("2026-11-24 09:15")
    assert expected_latest("options_flow", now) == ny("2026-11-24 09:15")  # asset names work too
    assert expected_latest("selection", now) == ny("2026-11-24 09:35")
    assert expected_latest("sizing", now) == ny("2026-11-24 09:45")
    assert expected_latest("daily_report", ny("2026-11-24 17:05")) == ny("2026-11-24 16:30")


def test_quotes_forty_minutes_stale_at_eleven_alarm() -> None:
    verdict = evaluate_freshness("quotes", ny("2026-11-24 11:00"), ny("2026-11-24 10:20"))
    assert not verdict.passed
    assert (
        "10:45 ET quotes_schedule tick of 2026-11-24" in verdict.reason and "40 minutes old" in verdict.reason
    )
    assert evaluate_freshness("quotes", ny("2026-11-24 11:00"), ny("2026-11-24 10:46")).passed


def test_no_alarm_after_the_early_close() -> None:
    # 2026-11-27 closes at 13:00: the 13:00 quotes/trades ticks are the last; prices' last is 12:05.
    for now in ("2026-11-27 14:00", "2026-11-27 15:50"):
        assert expected_latest("quotes", ny(now)) == ny("2026-11-27 13:00")
        assert evaluate_freshness("quotes", ny(now), ny("2026-11-27 13:02")).passed
        assert evaluate_freshness("trades", ny(now), ny("2026-11-27 13:03")).passed
        assert evaluate_freshness("prices", ny(now), ny("2026-11-27 12:06")).passed
    # The same data at the same hour of a normal session is stale.
    assert not evaluate_freshness("quotes", ny("2026-11-24 15:50"), ny("2026-11-24 13:02")).passed
    # The report still runs at 16:30 on an early close.
    assert expected_latest("daily_report", ny("2026-11-27 17:00")) == ny("2026-11-27 16:30")


def test_market_hours_only_drops_pre_open_ticks() -> None:
    assert expected_latest("quotes", ny("2026-11-24 09:25")) == ny("2026-11-24 09:15")
    # The 09:00 and 09:15 ticks do not run: the previous session's last one is still the expectation.
    assert expected_latest("quotes", ny("2026-11-24 09:25"), market_hours_only=True) == ny("2026-11-23 15:45")
    assert expected_latest("quotes", ny("2026-11-24 09:50"), market_hours_only=True) == ny("2026-11-24 09:30")


# --- the Dagster checks --------------------------------------------------------------------------------


def run_checks(instance: dg.DagsterInstance, now: dt.datetime) -> dict[str, dg.AssetCheckEvaluation]:
    checks = build_freshness_checks(clock=lambda: now, market_hours_only=False)
    job = dg.define_asset_job("freshness_checks_job", selection=dg.AssetSelection.checks(*checks))
    defs = dg.Definitions(
        assets=[dg.AssetSpec(f.asset) for f in FAMILIES.values()], asset_checks=checks, jobs=[job]
    )
    result = defs.resolve_job_def("freshness_checks_job").execute_in_process(instance=instance)
    assert result.success
    return {e.asset_key.to_user_string(): e for e in result.get_asset_check_evaluations()}


def test_checks_alarm_on_stale_quotes_and_name_the_expectation() -> None:
    with dg.instance_for_test() as instance:
        materialize_at(instance, "quotes", "2026-11-24", ny("2026-11-24 10:20"))
        materialize_at(instance, "trades", "2026-11-24", ny("2026-11-24 10:31"))
        # A later materialization of another session's partition (a backfill) does not count.
        materialize_at(instance, "prices", "2026-11-23", ny("2026-11-24 10:50"))
        evals = run_checks(instance, ny("2026-11-24 11:00"))
        assert not evals["quotes"].passed
        meta = evals["quotes"].metadata
        assert "10:45 ET quotes_schedule tick" in str(meta["expectation"].value)
        assert meta["due_tick"].value == ny("2026-11-24 10:45").isoformat()
        assert evals["trades"].passed
        assert not evals["prices"].passed


def test_checks_on_thanksgiving_judge_the_day_before_and_pass_after_the_early_close() -> None:
    with dg.instance_for_test() as instance:
        holiday = run_checks(instance, ny("2026-11-26 11:00"))
        assert not any(e.passed for e in holiday.values())
        assert all("of 2026-11-25" in str(e.metadata["expectation"].value) for e in holiday.values())
        assert holiday["quotes"].severity == dg.AssetCheckSeverity.ERROR
        for asset in ("quotes", "trades", "prices", "options_flow", "selected_tickers", "position_sizes"):
            materialize_at(instance, asset, "2026-11-25", ny("2026-11-25 16:35"))
        for asset in ("indicators", "daily_report"):
            materialize_at(instance, asset, "2026-11-25", ny("2026-11-25 16:40"))
        assert all(e.passed for e in run_checks(instance, ny("2026-11-26 11:00")).values())
        for asset, when in [
            ("quotes", "13:00"),
            ("trades", "13:01"),
            ("prices", "12:06"),
            ("options_flow", "11:20"),
            ("selected_tickers", "09:36"),
            ("position_sizes", "09:46"),
            ("indicators", "13:31"),
        ]:  # a fixed schedule: its 13:30 tick runs after the close
            materialize_at(instance, asset, "2026-11-27", ny(f"2026-11-27 {when}"))
        # At 15:50 the report's 16:30 tick is not due yet: Wednesday's report (stored above) is the latest.
        evals = run_checks(instance, ny("2026-11-27 15:50"))
        failed = [k for k, e in evals.items() if not e.passed]
        assert failed == []


def test_exports_load_in_definitions() -> None:
    assert len(FRESHNESS_CHECKS) == len(FAMILIES)
    defs = dg.Definitions(
        assets=[dg.AssetSpec(f.asset) for f in FAMILIES.values()],
        asset_checks=FRESHNESS_CHECKS,
        jobs=[FRESHNESS_JOB],
        sensors=[freshness_sensor],
    )
    defs.resolve_all_job_defs()
    assert defs.resolve_job_def("freshness_checks_job").name == "freshness_checks_job"


# --- empty materializations, the close, past sessions ----------------------------------------------


def test_a_materialization_that_stored_nothing_is_not_fresh() -> None:
    """The 14:15 tick "succeeded" with 0 rows for a session with active tickers: not fresh."""
    empty = Materialization(ny("2026-12-01 14:15"), rows=0, tickers=10)
    verdict = evaluate_freshness("quotes", ny("2026-12-01 14:26"), empty)
    assert not verdict.passed and verdict.severity == "warn"
    assert "stored 0 rows for 10 active ticker(s)" in verdict.reason
    full = Materialization(ny("2026-12-01 14:15"), rows=52_000, tickers=10)
    assert evaluate_freshness("quotes", ny("2026-12-01 14:26"), full).passed


def test_an_empty_materialization_before_the_open_is_fresh_until_a_tick_after_it() -> None:
    """`make dev` at 09:00 ET: the 09:15 quotes tick stored nothing (no pre-market quotes in the
    simulator; thin names and options trade none) and health said "empty, not fresh" until 09:45."""
    pre_market = Materialization(ny("2026-12-02 09:15"), rows=0, tickers=10)
    verdict = evaluate_freshness("quotes", ny("2026-12-02 09:16"), pre_market)
    assert verdict.passed and "before the open" in verdict.reason
    options = Materialization(ny("2026-12-02 09:15"), rows=0, tickers=10)
    assert evaluate_freshness("options", ny("2026-12-02 09:50"), options).passed
    # The 09:45 tick ran after the open and stored nothing: that one is not fresh.
    after_open = Materialization(ny("2026-12-02 09:45"), rows=0, tickers=10)
    assert not evaluate_freshness("quotes", ny("2026-12-02 09:56"), after_open).passed
    # Nor is the pre-market materialization once the 09:45 tick is due and has not run.
    assert not evaluate_freshness("quotes", ny("2026-12-02 09:56"), pre_market).passed


def test_a_tick_missed_by_a_late_start_names_the_tick_that_collects_it() -> None:
    """`make dev` at 09:00:37 ET: the 09:00 trades tick never ran; health says when the data comes."""
    verdict = evaluate_freshness("trades", ny("2026-12-02 09:17"), None)
    assert not verdict.passed and verdict.severity == "warn"
    assert verdict.reason.endswith(
        "no materialization of 2026-12-02 yet (the next tick, 09:30 ET, collects the session so far)"
    )
    # The last tick of the day missed: nothing more runs today, so no such promise.
    late = evaluate_freshness("trades", ny("2026-12-02 15:50"), None)
    assert "next tick" not in late.reason


def test_no_active_ticker_stores_nothing_and_is_fresh() -> None:
    none_active = Materialization(ny("2026-12-01 14:15"), rows=0, tickers=0)
    assert evaluate_freshness("quotes", ny("2026-12-01 14:26"), none_active).passed


def test_stale_or_empty_after_the_close_fails() -> None:
    empty = Materialization(ny("2026-12-01 15:45"), rows=0, tickers=10)
    after = evaluate_freshness("quotes", ny("2026-12-01 16:10"), empty)
    assert not after.passed and after.severity == "fail"
    stale = evaluate_freshness("quotes", ny("2026-12-01 16:10"), ny("2026-12-01 11:00"))
    assert stale.severity == "fail"
    during = evaluate_freshness("quotes", ny("2026-12-01 12:10"), ny("2026-12-01 11:00"))
    assert during.severity == "warn"


def test_a_past_session_is_judged_as_a_whole() -> None:
    assert evaluate_past_session("quotes", "2026-11-24", Materialization(ny("2026-12-01 10:00"), 9, 2)).passed
    assert not evaluate_past_session("quotes", "2026-11-24", None).passed
    assert not evaluate_past_session(
        "quotes", "2026-11-24", Materialization(ny("2026-12-01 10:00"), 0, 2)
    ).passed
    partial = evaluate_past_session("quotes", "2026-11-24", Materialization(ny("2026-11-24 11:00"), 9, 2))
    assert not partial.passed and "before its close" in partial.reason


@pytest.mark.parametrize(
    "tags",
    [
        {"dagster/partition": "2026-11-24"},
        # A batched backfill run of several sessions judges the last of them.
        {
            "dagster/asset_partition_range_start": "2026-11-20",
            "dagster/asset_partition_range_end": "2026-11-24",
        },
    ],
)
def test_checks_in_a_backfill_run_judge_the_backfilled_session(tags: dict[str, str]) -> None:
    """A check evaluated inside a run of 2026-11-24 (a backfill) on 2026-12-01 mid-session judges
    2026-11-24, not the live session's ticks."""
    now = ny("2026-12-01 14:26")
    with dg.instance_for_test() as instance:
        materialize_at(instance, "quotes", "2026-11-24", ny("2026-12-01 14:20"), rows=5_000)
        materialize_at(instance, "trades", "2026-11-24", ny("2026-12-01 14:20"), rows=0)
        checks = build_freshness_checks(clock=lambda: now, market_hours_only=False)
        job = dg.define_asset_job("backfill_checks", selection=dg.AssetSelection.checks(*checks))
        defs = dg.Definitions(
            assets=[dg.AssetSpec(f.asset) for f in FAMILIES.values()], asset_checks=checks, jobs=[job]
        )
        result = defs.resolve_job_def("backfill_checks").execute_in_process(instance=instance, tags=tags)
        evals = {e.asset_key.to_user_string(): e for e in result.get_asset_check_evaluations()}
    assert evals["quotes"].passed, evals["quotes"].description
    assert not evals["trades"].passed and evals["trades"].severity == dg.AssetCheckSeverity.ERROR
    assert "2026-11-24" in (evals["trades"].description or "")
