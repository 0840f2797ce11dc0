"""The ``trading-data export``, ``read`` and ``catalog`` commands (registered by :mod:`trading_data.cli`)."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from pathlib import Path
from typing import Any

import pandas as pd
import psycopg

from trading_data.db.catalog import CATALOG_TABLES
from trading_data.db.reads import READABLE, DatabaseUnreachableError
from trading_data.db.url import market_database_url
from trading_data.read import api
from trading_data.read.catalog import catalog, render
from trading_data.read.export import DEFAULT_CHUNK_ROWS, FORMATS, export
from trading_data.settings.platform import SCHEMA

BAD_ARGUMENTS_EXIT = 2


def _names(text: str | None) -> list[str] | None:
    return [t.strip() for t in text.split(",") if t.strip()] if text else None


def _date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date (YYYY-MM-DD): {text!r}") from None


def _session_range(args: argparse.Namespace) -> tuple[dt.date, dt.date] | None:
    if args.session and (args.first or args.last):
        raise ValueError("give --session or --from/--to, not both")
    if args.session:
        return args.session, args.session
    if args.first or args.last:
        if not (args.first and args.last):
            raise ValueError("--from and --to go together (both sessions inclusive)")
        return args.first, args.last
    return None


def _add_sessions(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--session", type=_date, help="one NYSE session, YYYY-MM-DD")
    parser.add_argument("--from", dest="first", type=_date, help="first session (inclusive)")
    parser.add_argument("--to", dest="last", type=_date, help="last session (inclusive)")


def add_parsers(sub: Any) -> None:
    """Add the three commands to ``trading-data``'s subparsers."""
    out = sub.add_parser(
        "export", help="write market tables to Parquet or CSV, one file per table and session"
    )
    out.add_argument("--out", type=Path, required=True, help="folder (hive layout: table=<t>/session=<d>/)")
    out.add_argument("--tables", help=f"comma-separated (default: all: {', '.join(READABLE)})")
    out.add_argument("--tickers", help="comma-separated (default: every ticker)")
    out.add_argument("--format", choices=FORMATS, default="parquet")
    out.add_argument("--chunk-rows", type=int, default=DEFAULT_CHUNK_ROWS, help="rows held in memory at once")
    out.add_argument("--no-progress", action="store_true", help="no progress bar")
    _add_sessions(out)
    look = sub.add_parser("read", help="print the first rows of a market table")
    look.add_argument("table", choices=list(READABLE))
    look.add_argument("--tickers", help="comma-separated (default: every ticker)")
    look.add_argument("--start", help="first instant (inclusive), e.g. '2026-11-25 09:30'")
    look.add_argument("--end", help="end instant (exclusive)")
    look.add_argument("--timespan", choices=["minute", "day"], help="prices only")
    look.add_argument("--tz", default="UTC", help="UTC or an IANA zone, e.g. America/New_York")
    look.add_argument("--columns", help="comma-separated columns")
    look.add_argument("--limit", type=int, default=20, help="rows to print (default 20)")
    _add_sessions(look)
    cat = sub.add_parser("catalog", help="what is stored: sessions, tickers, rows, bytes, missing sessions")
    cat.add_argument("--tables", help="comma-separated (default: all)")
    cat.add_argument("--from", dest="first", type=_date, help="count missing sessions from this one")
    cat.add_argument("--to", dest="last", type=_date, help="... to this one (inclusive)")
    cat.add_argument("--json", action="store_true", help="machine-readable output")


def cmd_export(args: argparse.Namespace) -> int:
    sessions = _session_range(args)
    if sessions is None:
        raise ValueError("say which sessions to export: --session D, or --from D --to D")
    files = export(
        market_database_url(),
        SCHEMA.get(),
        args.out,
        _names(args.tables) or list(READABLE),
        *sessions,
        fmt=args.format,
        tickers=_names(args.tickers),
        chunk_rows=args.chunk_rows,
        progress=not args.no_progress,
    )
    rows = sum(f.rows for f in files)
    print(f"wrote {len(files)} file(s), {rows:,} rows, to {args.out}")
    return 0


def cmd_read(args: argparse.Namespace) -> int:
    sessions = _session_range(args)
    options: dict[str, Any] = {"tz": args.tz, "chunk_rows": max(args.limit, 1)}
    if sessions is not None:
        # One session is checked against the calendar (a holiday is refused, naming it).
        options["sessions"] = args.session or sessions
    if args.timespan:
        if args.table != "prices":
            raise ValueError("--timespan applies to prices only")
        options["timespan"] = args.timespan
    if args.columns:
        options["columns"] = _names(args.columns)
    chunks = api.read_table(args.table, _names(args.tickers), args.start, args.end, **options)
    first = next(iter(chunks), None)  # type: ignore[call-overload]
    if first is None or first.empty:
        print(f"{args.table}: no rows")
        return 0
    with pd.option_context("display.width", 200, "display.max_columns", 30):
        print(first.head(args.limit).to_string(index=False))
    return 0


def cmd_catalog(args: argparse.Namespace) -> int:
    tables = _names(args.tables)
    unknown = [t for t in tables or [] if t not in CATALOG_TABLES]
    if unknown:
        raise ValueError(f"no table {unknown[0]!r}; tables: {', '.join(CATALOG_TABLES)}")
    entries = catalog(market_database_url(), SCHEMA.get(), tables, args.first, args.last)
    if args.json:
        print(json.dumps([e.as_json() for e in entries], indent=2))
    else:
        print(render(entries))
    return 0


def run(args: argparse.Namespace) -> int:
    """Run one of the three commands; a bad argument or an unreachable database is one line."""
    handler = {"export": cmd_export, "read": cmd_read, "catalog": cmd_catalog}[args.command]
    try:
        return handler(args)
    except (ValueError, DatabaseUnreachableError) as err:
        print(f"trading-data {args.command}: {err}", file=sys.stderr)
        return BAD_ARGUMENTS_EXIT
    except psycopg.OperationalError as err:
        first = (str(err).strip().splitlines() or ["unreachable"])[0]
        print(f"trading-data {args.command}: cannot reach the database: {first}", file=sys.stderr)
        return 1


COMMANDS = ("export", "read", "catalog")
