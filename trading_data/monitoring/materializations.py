"""What the Dagster instance knows of the assets' latest materializations, judged by the freshness rules
(:mod:`trading_data.monitoring.freshness`): for the freshness checks and ``trading-data health``."""

import datetime as dt
from collections.abc import Mapping

import dagster as dg

from trading_data.monitoring.freshness import (
    FAMILIES,
    FreshnessVerdict,
    Materialization,
    evaluate_freshness,
    freshness_expectation,
)
from trading_data.scheduling import market_hours_only_from_env


def latest_materialization(
    instance: dg.DagsterInstance, asset_key: dg.AssetKey, partition_key: str
) -> Materialization | None:
    """The latest materialization of one partition of ``asset_key``, with its row and ticker counts."""
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=asset_key, asset_partitions=[partition_key]), limit=1
    ).records
    if not records:
        return None
    event = records[0].asset_materialization
    metadata = event.metadata if event else {}

    def number(key: str) -> int | None:
        value = getattr(metadata.get(key), "value", None)
        return int(value) if isinstance(value, int | float) else None

    return Materialization(
        at=dt.datetime.fromtimestamp(records[0].timestamp, dt.UTC),
        rows=number("dagster/row_count"),
        tickers=number("active_tickers"),
    )


def freshness_report(
    instance: dg.DagsterInstance | None, now: dt.datetime, *, environ: Mapping[str, str] | None = None
) -> dict[str, FreshnessVerdict | None]:
    """Per asset: the verdict, or None when there is no instance to ask (health's "unknown")."""
    mho = market_hours_only_from_env(environ)
    out: dict[str, FreshnessVerdict | None] = {}
    for fam in FAMILIES.values():
        if instance is None:
            out[fam.asset] = None
            continue
        exp = freshness_expectation(fam.name, now, market_hours_only=mho)
        last = latest_materialization(instance, dg.AssetKey(fam.asset), exp.session) if exp else None
        out[fam.asset] = evaluate_freshness(fam.name, now, last, market_hours_only=mho)
    return out
