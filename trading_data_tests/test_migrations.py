"""Migrations against a real server: idempotent, matching the pandera models, TimescaleDB-aware."""

import psycopg
import pytest

from trading_data.db.migrate import (
    RESERVED_KEY_WORDS,
    DatabaseSettingError,
    migrate,
    storage_mode,
    timescale_available,
    timescale_ddl,
    validate_schema_name,
)
from trading_data.schemas import TABLES, sql_columns
from trading_data.settings import SettingsError


def test_tables_match_the_models(database_url: str) -> None:
    with psycopg.connect(database_url) as conn:
        for spec in TABLES.values():
            rows = conn.execute(
                "SELECT column_name, data_type, is_nullable FROM information_schema.columns "
                "WHERE table_schema = 'market' AND table_name = %s ORDER BY ordinal_position",
                (spec.name,),
            ).fetchall()
            stored = {name: (kind.upper(), nullable == "YES") for name, kind, nullable in rows}
            expected = {
                name: ({"TIMESTAMPTZ": "TIMESTAMP WITH TIME ZONE"}.get(kind, kind), nullable)
                for name, (kind, nullable) in sql_columns(spec).items()
            }
            assert stored == expected, spec.name
            key = conn.execute(
                "SELECT array_agg(a.attname ORDER BY array_position(i.indkey, a.attnum)) FROM pg_index i "
                "JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey) "
                "WHERE i.indrelid = %s::regclass AND i.indisprimary",
                (f"market.{spec.name}",),
            ).fetchone()
            assert key is not None
            assert tuple(key[0]) == spec.primary_key
            assert spec.time_column in spec.primary_key


def test_migrate_is_idempotent_and_versioned(database_url: str) -> None:
    again = migrate(database_url)
    assert again.applied == []
    status = storage_mode(database_url)
    assert status["applied"] == [
        "0001_market_tables",
        "0002_operations",
        "0003_daily_report_reconciliation",
        "0004_views",
        "0005_bar_aggregates",
    ]
    assert status["pending"] == []


def test_other_schema_and_bad_schema_names(database_url: str) -> None:
    result = migrate(database_url, "market_alt")
    assert result.applied == [
        "0001_market_tables",
        "0002_operations",
        "0003_daily_report_reconciliation",
        "0004_views",
        "0005_bar_aggregates",
    ]
    with psycopg.connect(database_url) as conn:
        assert conn.execute("SELECT to_regclass('market_alt.quotes')").fetchone() == ("market_alt.quotes",)
    with pytest.raises(DatabaseSettingError, match="must be a plain lower-case identifier"):
        validate_schema_name("market; DROP TABLE x")


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        ("information_schema", "that is a PostgreSQL system schema"),
        ("pg_catalog", "that is a PostgreSQL system schema"),
        ("pg_toast", "that is a PostgreSQL system schema"),
        ("pg_market", "that is a PostgreSQL system schema"),  # pg_ is reserved for system schemas
        ("order", "that is a reserved SQL key word"),
        ("user", "that is a reserved SQL key word"),
        ("join", "that is a reserved SQL key word"),
        ("Market", "must be a plain lower-case identifier"),
        ("", "must be a plain lower-case identifier"),
        ("m" * 64, "must be a plain lower-case identifier"),
    ],
)
def test_rejected_schema_names_name_the_variable(name: str, problem: str) -> None:
    with pytest.raises(DatabaseSettingError) as error:
        validate_schema_name(name)
    message = str(error.value)
    assert message.startswith(f"invalid setting schema (from TRADING_DATA_SCHEMA={name!r}): ")
    assert problem in message and "\n" not in message
    assert isinstance(error.value, SettingsError)


def test_a_rejected_schema_changes_nothing(database_url: str) -> None:
    with pytest.raises(DatabaseSettingError):
        migrate(database_url, "information_schema")
    with psycopg.connect(database_url) as conn:
        assert conn.execute("SELECT to_regclass('information_schema.quotes')").fetchone() == (None,)


def test_reserved_key_words_are_the_servers(database_url: str) -> None:
    """The embedded list is PostgreSQL's own: reserved (R) and type/function-name (T) key words."""
    with psycopg.connect(database_url) as conn:
        words = {r[0] for r in conn.execute("SELECT word FROM pg_get_keywords() WHERE catcode IN ('R', 'T')")}
    assert words == RESERVED_KEY_WORDS


def test_non_reserved_key_words_work_unquoted(database_url: str) -> None:
    """Key words outside R and T (here: ``between``, a column-name key word) are valid schema names in
    every unquoted statement the migrations run; ``public`` is a user schema and is accepted."""
    with psycopg.connect(database_url) as conn:
        category = conn.execute("SELECT catcode FROM pg_get_keywords() WHERE word = 'between'").fetchone()
    assert category == ("C",)
    result = migrate(database_url, "between")
    assert result.applied == [
        "0001_market_tables",
        "0002_operations",
        "0003_daily_report_reconciliation",
        "0004_views",
        "0005_bar_aggregates",
    ]
    assert validate_schema_name("public") == "public"


def test_timescale_ddl_generation() -> None:
    ddl = timescale_ddl("market", compress_after="45 days")
    assert ddl[0] == "CREATE EXTENSION IF NOT EXISTS timescaledb"
    quotes = [s for s in ddl if "market.quotes'" in s or "market.quotes " in s]
    assert any("by_range('ts', INTERVAL '1 day')" in s and "if_not_exists => TRUE" in s for s in quotes)
    assert any(
        "compress_segmentby = 'ticker'" in s and "compress_orderby = 'ts DESC, sequence_number'" in s
        for s in quotes
    )
    assert any(
        "add_compression_policy('market.quotes', compress_after => INTERVAL '45 days'" in s for s in quotes
    )
    sessions = [s for s in ddl if "market.selected_tickers" in s]
    assert any("by_range('session', INTERVAL '30 days')" in s for s in sessions)
    # Every table becomes a hypertable, compressed by ticker, with a policy.
    assert len([s for s in ddl if "create_hypertable" in s]) == len(TABLES)
    assert len([s for s in ddl if "add_compression_policy" in s]) == len(TABLES)


def test_timescale_branch(database_url: str) -> None:
    with psycopg.connect(database_url) as conn:
        available = timescale_available(conn)
    if not available:
        pytest.skip(
            "the TimescaleDB extension is not installed on this PostgreSQL server "
            "(plain PostgreSQL mode; DDL generation is tested above)"
        )
    result = migrate(database_url, "market_ts", mode="timescaledb")
    assert result.timescale
    status = storage_mode(database_url, "market_ts")
    assert status["mode"] == "timescaledb"
    assert set(status["hypertables"]) == set(TABLES)  # type: ignore[arg-type]
