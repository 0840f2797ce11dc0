"""The freshness sensor: every asset's ``<asset>_calendar_fresh`` verdict in one evaluation, with no run
(issue 11: the 5-minute schedule launched a run and a process per check), the same verdicts the checks
give, recorded on the instance as the checks' evaluations."""

from __future__ import annotations

import datetime as dt

import dagster as dg
import pytest

from trading_data.defs.monitoring.freshness import freshness_sensor
from trading_data.monitoring.freshness import FAMILIES
from trading_data_tests.monitoring.test_freshness import materialize_at, ny, run_checks


def _evaluate(instance: dg.DagsterInstance, monkeypatch: pytest.MonkeyPatch, now: dt.datetime) -> object:
    monkeypatch.setenv("TRADING_DATA_NOW", now.isoformat())
    monkeypatch.delenv("TRADING_DATA_MARKET_HOURS_ONLY", raising=False)
    return freshness_sensor(dg.build_sensor_context(instance=instance))


def test_one_evaluation_gives_every_check_the_verdict_of_its_check(monkeypatch: pytest.MonkeyPatch) -> None:
    now = ny("2026-11-24 11:00")
    with dg.instance_for_test() as instance:
        materialize_at(instance, "quotes", "2026-11-24", ny("2026-11-24 10:20"))
        materialize_at(instance, "trades", "2026-11-24", ny("2026-11-24 10:31"))
        result = _evaluate(instance, monkeypatch, now)
        assert isinstance(result, dg.SensorResult)
        evaluations = {e.asset_key.to_user_string(): e for e in result.asset_events}
        assert all(isinstance(e, dg.AssetCheckEvaluation) for e in evaluations.values())
        assert set(evaluations) == {f.asset for f in FAMILIES.values()}
        checks = run_checks(instance, now)
        for asset, evaluation in evaluations.items():
            assert evaluation.check_name == f"{asset}_calendar_fresh"
            assert (evaluation.passed, evaluation.severity) == (checks[asset].passed, checks[asset].severity)
            assert evaluation.metadata == checks[asset].metadata, asset
        assert not evaluations["quotes"].passed and evaluations["trades"].passed

        # What the daemon does with a SensorResult's asset events: the checks' latest executions.
        for evaluation in result.asset_events:
            instance.report_runless_asset_event(evaluation)
        key = dg.AssetCheckKey(dg.AssetKey("quotes"), "quotes_calendar_fresh")
        latest = instance.event_log_storage.get_latest_asset_check_execution_by_key([key])[key]
        assert latest.evaluation is not None and latest.evaluation.passed is False


def test_after_the_close_a_stale_asset_is_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    with dg.instance_for_test() as instance:
        materialize_at(instance, "quotes", "2026-12-01", ny("2026-12-01 11:00"), rows=100)
        result = _evaluate(instance, monkeypatch, ny("2026-12-01 16:10"))
        assert isinstance(result, dg.SensorResult)
        quotes = next(e for e in result.asset_events if e.asset_key == dg.AssetKey("quotes"))
        assert isinstance(quotes, dg.AssetCheckEvaluation)
        assert not quotes.passed and quotes.severity == dg.AssetCheckSeverity.ERROR


@pytest.mark.parametrize(
    "now", ["2026-11-24 08:55", "2026-11-24 18:00", "2026-11-28 12:00"], ids=["early", "late", "saturday"]
)
def test_outside_the_freshness_hours_it_skips(monkeypatch: pytest.MonkeyPatch, now: str) -> None:
    with dg.instance_for_test() as instance:
        result = _evaluate(instance, monkeypatch, ny(now))
    assert isinstance(result, dg.SkipReason)
    assert "outside the freshness hours" in (result.skip_message or "")
