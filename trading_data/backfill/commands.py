"""``trading-data backfill plan`` and ``trading-data backfill run``."""

from __future__ import annotations

import argparse
import datetime as dt
import sys

from trading_data.backfill.plan import (
    ASSETS,
    POLYGON,
    UNUSUAL_WHALES,
    PlanInputs,
    TableRates,
    plan_backfill,
    render,
)
from trading_data.calendar import NEW_YORK
from trading_data.clock import utc_now
from trading_data.settings import PipelineSettings, SettingsError, parse_tickers
from trading_data.settings.platform import POLYGON_RATE_LIMIT_PER_MINUTE, UNUSUAL_WHALES_RATE_LIMIT_PER_MINUTE


def _date(option: str, value: str) -> dt.date:
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise SettingsError(option, f"must be a date YYYY-MM-DD, got {value!r}") from None


def _assets(value: str | None) -> tuple[str, ...]:
    if not value:
        return ASSETS
    names = tuple(a.strip() for a in value.split(",") if a.strip())
    unknown = [a for a in names if a not in ASSETS]
    if unknown:
        raise SettingsError("--assets", f"unknown asset(s) {', '.join(unknown)}; known: {', '.join(ASSETS)}")
    return names


def add_parser(sub: argparse._SubParsersAction) -> None:
    backfill = sub.add_parser("backfill", help="plan or run a backfill of a range of sessions")
    actions = backfill.add_subparsers(dest="action", required=True)
    for name, text in (
        ("plan", "requests per vendor, duration at the plan limits, rows and bytes"),
        ("run", "launch it as one Dagster backfill (seen in the UI) and follow it"),
    ):
        action = actions.add_parser(name, help=text)
        action.add_argument("--from", dest="first", required=True, help="first session (YYYY-MM-DD)")
        action.add_argument("--to", dest="last", required=True, help="last session (YYYY-MM-DD), inclusive")
        action.add_argument("--assets", help=f"comma-separated, default all: {','.join(ASSETS)}")
        action.add_argument("--symbols", help="fixed tickers (comma-separated) instead of selection")
    run = actions.choices["run"]
    run.add_argument("--no-follow", action="store_true", help="launch and return")


def _inputs(args: argparse.Namespace) -> PlanInputs:
    options = PipelineSettings.from_env()
    symbols = parse_tickers("--symbols", args.symbols) if args.symbols else options.symbols
    rates = {
        POLYGON: POLYGON_RATE_LIMIT_PER_MINUTE.get(),
        UNUSUAL_WHALES: UNUSUAL_WHALES_RATE_LIMIT_PER_MINUTE.get(),
    }
    return PlanInputs(
        symbols=tuple(symbols),
        lookback_days=options.lookback_days,
        max_active_tickers=options.max_active_tickers,
        rate_per_minute=rates,
        rates=_measured_rates(),
    )


def _measured_rates() -> dict[str, TableRates]:
    from trading_data.db.stored import table_rates
    from trading_data.db.url import market_database_url
    from trading_data.settings.platform import SCHEMA

    try:
        measured = table_rates(market_database_url(), SCHEMA.get())
    except Exception as exc:  # noqa: BLE001 - an estimate without the database is still an estimate
        print(f"(database not reachable, typical figures used: {type(exc).__name__})", file=sys.stderr)
        return {}
    return {t: TableRates(rows, width, measured=True) for t, (rows, width) in measured.items()}


def cmd_backfill(args: argparse.Namespace) -> int:
    first, last = _date("--from", args.first), _date("--to", args.last)
    if last < first:
        raise SettingsError("--to", f"{last} is before --from {first}")
    assets = _assets(args.assets)
    inputs = _inputs(args)
    today = utc_now().astimezone(NEW_YORK).date()
    plan = plan_backfill(first, last, inputs, assets, today=today)
    from trading_data.backfill.run import backfill_runs, follow, launch

    if plan.sessions:
        plan.runs = backfill_runs(plan)
    print(render(plan))
    if args.action == "plan" or not plan.sessions:
        return 0

    backfill_id = launch(plan, inputs.symbols)
    print(f"\nlaunched backfill {backfill_id}: the UI shows it at /runs/b/{backfill_id}")
    return 0 if args.no_follow else follow(backfill_id, plan)
