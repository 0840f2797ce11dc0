"""The store documents itself: every model column has a description, the database carries each as a
COMMENT (re-applied by every migration), the Dagster column schema carries them, and
docs/data-dictionary.md is what the generator prints today."""

from __future__ import annotations

import psycopg

from trading_data.db.aggregate_sql import AGGREGATE_COLUMNS, AGGREGATE_DESCRIPTIONS, AGGREGATES
from trading_data.db.documentation import aggregate_columns, stored_comments, table_description, views
from trading_data.db.migrate import migrate
from trading_data.db.pandas_type_handler import column_schema
from trading_data.read.dictionary import DICTIONARY_PATH, render
from trading_data.schemas import TABLES, column_descriptions


def test_every_model_column_has_a_description() -> None:
    missing = [
        f"{t}.{c}" for t, spec in TABLES.items() for c, d in column_descriptions(spec).items() if not d
    ]
    assert missing == []


def test_the_data_dictionary_is_current() -> None:
    assert DICTIONARY_PATH.read_text() == render(), (
        "docs/data-dictionary.md is out of date: run "
        "`.venv/bin/python -m trading_data.read.dictionary > docs/data-dictionary.md`"
    )
    text = DICTIONARY_PATH.read_text()
    for name in [*TABLES, *(v.name for v in views()), *AGGREGATES]:
        assert f"`{name}`" in text


def test_every_table_and_view_column_is_commented_in_the_database(database_url: str) -> None:
    expected: dict[tuple[str, str], str] = {}
    for name, spec in TABLES.items():
        expected[(name, "")] = table_description(name)
        expected |= {(name, c): d for c, d in column_descriptions(spec).items()}
    for view in views():
        expected[(view.name, "")] = view.description
        expected |= {(view.name, c): d for c, d in view.columns.items()}
    for name in AGGREGATES:
        expected[(name, "")] = AGGREGATE_DESCRIPTIONS[name]
        expected |= {(name, c): d for c, d in aggregate_columns().items()}
    with psycopg.connect(database_url) as conn:
        assert stored_comments(conn, "market") == expected


SQL_TYPE_NAMES = {"TIMESTAMPTZ": "TIMESTAMP WITH TIME ZONE"}  # information_schema spells it out


def test_the_aggregates_columns_are_the_servers(database_url: str) -> None:
    """The dictionary's types of bars_5m and bars_1h are the server's, for a plain table (migration 0005)
    and for a continuous aggregate alike."""
    with psycopg.connect(database_url) as conn:
        for name in AGGREGATES:
            rows = conn.execute(
                "SELECT column_name, upper(data_type) FROM information_schema.columns "
                "WHERE table_schema = 'market' AND table_name = %s ORDER BY ordinal_position",
                (name,),
            ).fetchall()
            declared = [(c, SQL_TYPE_NAMES.get(s.sql_type, s.sql_type)) for c, s in AGGREGATE_COLUMNS.items()]
            assert rows == declared, name


def test_a_continuous_aggregate_keeps_its_comments(database_url: str) -> None:
    """In TimescaleDB mode the continuous aggregates replace migration 0005's tables: the comments are
    applied after that, so they are on the aggregates, not lost with the tables."""
    schema = "market_comments"
    migrate(database_url, schema)
    with psycopg.connect(database_url) as conn:
        comments = stored_comments(conn, schema)
    for name in AGGREGATES:
        assert comments[(name, "")] == AGGREGATE_DESCRIPTIONS[name]
        assert comments[(name, "ts")] == AGGREGATE_COLUMNS["ts"].description


def test_a_stale_comment_is_replaced_by_the_next_migration(database_url: str) -> None:
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("COMMENT ON COLUMN market.quotes.bid_price IS 'stale'")
        conn.execute("COMMENT ON COLUMN market.minute_bars.session IS NULL")
    migrate(database_url)
    with psycopg.connect(database_url) as conn:
        comments = stored_comments(conn, "market")
    assert comments[("quotes", "bid_price")] == column_descriptions(TABLES["quotes"])["bid_price"]
    assert comments[("minute_bars", "session")] == "NYSE session: the New York date of ts"


def test_the_dagster_column_schema_carries_the_descriptions() -> None:
    for spec in TABLES.values():
        described = {c.name: c.description for c in column_schema(spec).columns}
        assert described == column_descriptions(spec)


def test_the_bar_aggregates_asset_carries_the_aggregates_columns() -> None:
    from trading_data.defs.analytics.aggregates import bar_aggregates

    schema = bar_aggregates.metadata_by_key[bar_aggregates.key]["dagster/column_schema"]
    assert {c.name: c.description for c in schema.columns} == aggregate_columns()
