"""Load the code location and snapshot its shape: asset keys, dependencies, partitions, checks, crons."""

import dagster as dg

from trading_data.definitions import defs
from trading_data.partitions import session_partitions

EXPECTED_DEPS = {
    "selected_tickers": set(),
    "position_sizes": {"selected_tickers"},
    "prices": {"selected_tickers"},
    "quotes": {"selected_tickers"},
    "trades": {"selected_tickers"},
    "options_flow": {"selected_tickers"},
    "indicators": {"prices"},
    # issue 13: 5-minute and hourly bars from the minute bars, refreshed after prices.
    "bar_aggregates": {"prices"},
    "daily_report": {
        "selected_tickers",
        "indicators",
        "prices",
        "quotes",
        "trades",
        "options_flow",
        "position_sizes",
    },
}

EXPECTED_CRONS = {
    "ticker_selection_schedule": "35 9 * * 1-5",
    "position_sizing_schedule": "45 9 * * 1-5",
    "prices_schedule": "5 9-15 * * 1-5",
    "quotes_schedule": "0,15,30,45 9-15 * * 1-5",
    "trades_schedule": "0,30 9-15 * * 1-5",
    "options_schedule": "15 9,11,13,15 * * 1-5",
    "indicators_schedule": "30 9,13 * * 1-5",
    "full_pipeline_schedule": "30 16 * * 1-5",
}


def test_definitions_load_and_validate() -> None:
    dg.Definitions.validate_loadable(defs)


def test_asset_keys_and_dependencies_snapshot() -> None:
    graph = defs.resolve_asset_graph()
    deps = {
        key.to_user_string(): {p.to_user_string() for p in graph.get(key).parent_keys}
        for key in graph.get_all_asset_keys()
    }
    assert deps == EXPECTED_DEPS


def test_every_asset_is_session_partitioned_and_described() -> None:
    graph = defs.resolve_asset_graph()
    for key in graph.get_all_asset_keys():
        node = graph.get(key)
        assert node.partitions_def == session_partitions, key
        assert node.description, key
        assert node.kinds, key
        assert node.metadata["partition_expr"] in ("ts", "session")
        assert node.metadata["write_mode"] in ("replace", "upsert")


def test_backfill_policies_snapshot() -> None:
    """A backfill batches sessions: up to SESSIONS_PER_RUN (20) per run; bar_aggregates takes a range in one."""
    graph = defs.resolve_asset_graph()
    policies = {key.to_user_string(): graph.get(key).backfill_policy for key in graph.get_all_asset_keys()}
    batched = dg.BackfillPolicy.multi_run(max_partitions_per_run=20)
    assert policies == {
        **{name: batched for name in EXPECTED_DEPS if name != "bar_aggregates"},
        "bar_aggregates": dg.BackfillPolicy.single_run(),
    }


def test_schedule_crons_snapshot() -> None:
    schedules = {s.name: s for s in defs.get_repository_def().schedule_defs}
    assert {name: s.cron_schedule for name, s in schedules.items()} == EXPECTED_CRONS
    for schedule in schedules.values():
        assert schedule.execution_timezone == "America/New_York"
        assert schedule.default_status == dg.DefaultScheduleStatus.RUNNING


def test_sensors_snapshot() -> None:
    sensors = {s.name: s.default_status for s in defs.get_repository_def().sensor_defs}
    assert sensors == {
        "run_failure_alert_sensor": dg.DefaultSensorStatus.RUNNING,
        "volatility_burst_sensor": dg.DefaultSensorStatus.RUNNING,
        "freshness_sensor": dg.DefaultSensorStatus.RUNNING,
    }


def test_checks_are_partitioned() -> None:
    checks = list(defs.resolve_asset_graph().asset_check_keys)
    names = {c.name for c in checks}
    assert {"selected_tickers_has_active", "prices_covers_active_tickers", "quotes_not_crossed"} <= names
    # `trading-data health` reads the reconciliation by this key.
    assert dg.AssetCheckKey(dg.AssetKey("daily_report"), "daily_report_reconciled") in checks


def test_jobs_resources_and_executor_snapshot() -> None:
    # What the package loader collects besides assets, checks, schedules and sensors (it replaced
    # dg.load_from_defs_folder, which found the same: issue 11).
    repository = defs.get_repository_def()
    jobs = {job.name: job for job in repository.get_all_jobs() if not job.name.startswith("__")}
    assert set(jobs) == {
        "selected_tickers_job",
        "position_sizes_job",
        "prices_job",
        "quotes_job",
        "trades_job",
        "options_flow_job",
        "indicators_job",
        "full_pipeline_job",
        "freshness_checks_job",
    }
    assert all(job.executor_def.name == "trading_data_executor" for job in jobs.values())
    assert all(
        job.partitions_def == session_partitions
        for name, job in jobs.items()
        if name != "freshness_checks_job"
    )
    assert set(repository.get_top_level_resources()) == {
        "io_manager",
        "database",
        "settings",
        "polygon",
        "unusual_whales",
    }
