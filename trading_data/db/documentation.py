"""What the store says about itself: each table's time convention, the views (migration 0004) and
their columns, and the ``COMMENT ON`` statements that put every description into the database.

The descriptions come from the pandera models (:func:`trading_data.schemas.column_descriptions`);
:func:`apply_comments` runs after every migration, so a changed description reaches the database
with the next ``trading-data db migrate`` without a migration of its own.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from trading_data.db.aggregate_sql import AGGREGATE_COLUMNS, AGGREGATE_DESCRIPTIONS, AGGREGATES
from trading_data.schemas import TABLES, column_descriptions

if TYPE_CHECKING:
    from psycopg import sql


SESSION_OF_TS = "NYSE session: the New York date of ts"

TIME_CONVENTIONS: dict[str, str] = {
    "selected_tickers": "one row per session and ticker; `session` is the New York date",
    "position_sizes": "one row per session and active ticker; `session` is the New York date",
    "prices": (
        "`timespan` = 'minute': `ts` is the bar's start in UTC (a bar covers [ts, ts + 1 min)); "
        "`timespan` = 'day': `ts` is New York midnight of the session (05:00 UTC in winter, 04:00 UTC "
        "in summer). Every query needs a `timespan` filter (or use the `minute_bars` / `daily_bars` views)"
    ),
    "quotes": "`ts`: the SIP timestamp in UTC, truncated to microseconds (`sip_ns` keeps the nanoseconds)",
    "trades": "`ts`: the SIP timestamp in UTC, truncated to microseconds (`sip_ns` keeps the nanoseconds)",
    "options_flow": "`ts`: the alert's time, or a chain snapshot's poll time, in UTC",
    "indicators": "`ts`: the start of the minute bar the indicators close on, in UTC (no look-ahead)",
    "daily_report": "one row per session, table and ticker, written after the close",
}
"""A session's rows are those whose time falls within its New York day (midnight to midnight)."""


@dataclass(frozen=True)
class View:
    name: str
    description: str
    columns: dict[str, str]


def _prices_columns() -> dict[str, str]:
    described = column_descriptions(TABLES["prices"])
    return {"session": SESSION_OF_TS, **{c: d for c, d in described.items() if c != "timespan"}}


def views() -> list[View]:
    """The views of migration 0004 with their columns (in the views' order) and descriptions."""
    quotes = column_descriptions(TABLES["quotes"])
    return [
        View(
            "minute_bars",
            "Minute bars: prices where timespan = 'minute'; ts is the bar's start (UTC).",
            _prices_columns(),
        ),
        View(
            "daily_bars",
            "Daily bars: prices where timespan = 'day'; ts is New York midnight of the session.",
            _prices_columns(),
        ),
        View(
            "latest_nbbo",
            "The newest stored quote of each ticker active in the latest selected session.",
            {"session": "The latest session in selected_tickers (its active tickers)", **quotes},
        ),
    ]


def table_description(table: str) -> str:
    spec = TABLES[table]
    doc = (spec.model.__doc__ or "").strip().split("\n\n")[0]
    return " ".join(f"{doc} Time: {TIME_CONVENTIONS[table]}.".split())


def aggregate_columns() -> dict[str, str]:
    """The bar aggregates' column descriptions (``bars_5m`` and ``bars_1h`` share them)."""
    return {c: column.description for c, column in AGGREGATE_COLUMNS.items()}


def comment_statements(
    schema: str, aggregate_kinds: dict[str, str | None] | None = None
) -> list[sql.Composed]:
    """``COMMENT ON`` every market table, view and column (idempotent); the bar aggregates too where
    ``aggregate_kinds`` says what each is (``table``, or a continuous aggregate, which is a view)."""
    from psycopg import sql

    statements = []

    def relation(kind: str, name: str, text: str, columns: dict[str, str]) -> None:
        target = sql.SQL("{}.{}").format(sql.Identifier(schema), sql.Identifier(name))
        statements.append(sql.SQL("COMMENT ON " + kind + " {} IS {}").format(target, sql.Literal(text)))
        for column, description in columns.items():
            statements.append(
                sql.SQL("COMMENT ON COLUMN {}.{} IS {}").format(
                    target, sql.Identifier(column), sql.Literal(description)
                )
            )

    for name, spec in TABLES.items():
        relation("TABLE", name, table_description(name), column_descriptions(spec))
    for view in views():
        relation("VIEW", view.name, view.description, view.columns)
    for name, found in (aggregate_kinds or {}).items():
        if found:
            relation(
                "TABLE" if found == "table" else "VIEW",
                name,
                AGGREGATE_DESCRIPTIONS[name],
                aggregate_columns(),
            )
    return statements


def apply_comments(conn: Any, schema: str, aggregate_kinds: dict[str, str | None]) -> None:
    """Run :func:`comment_statements` on ``conn`` (a psycopg connection, inside the caller's transaction);
    ``aggregate_kinds`` says what each aggregate is now (``migrate.aggregate_kinds``)."""
    for statement in comment_statements(schema, aggregate_kinds):
        conn.execute(statement)


def stored_comments(conn: Any, schema: str) -> dict[tuple[str, str], str | None]:
    """(relation, column) -> its comment (None when missing), for every column of the schema's market
    tables and views; (relation, "") is the relation's own comment."""
    names = [*TABLES, *(v.name for v in views()), *AGGREGATES]
    rows = conn.execute(
        "SELECT c.relname, a.attname, col_description(c.oid, a.attnum), obj_description(c.oid, 'pg_class') "
        "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped "
        "WHERE n.nspname = %s AND c.relname = ANY(%s)",
        (schema, names),
    ).fetchall()
    found: dict[tuple[str, str], str | None] = {}
    for relation, column, comment, relation_comment in rows:
        found[(relation, column)] = comment
        found[(relation, "")] = relation_comment
    return found
