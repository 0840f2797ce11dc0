"""Migrations against a real server: idempotent, matching the pandera models, TimescaleDB-aware."""

import psycopg
import pytest

from trading_data.db.migrate import (
    MigrationError,
    migrate,
    storage_mode,
    timescale_available,
    timescale_ddl,
    validate_schema_name,
)
from trading_data.schemas import TABLES, sql_columns


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
    assert status["applied"] == ["0001_market_tables", "0002_operations"]
    assert status["pending"] == []


def test_other_schema_and_bad_schema_names(database_url: str) -> None:
    result = migrate(database_url, "market_alt")
    assert result.applied == ["0001_market_tables", "0002_operations"]
    with psycopg.connect(database_url) as conn:
        assert conn.execute("SELECT to_regclass('market_alt.quotes')").fetchone() == ("market_alt.quotes",)
    with pytest.raises(MigrationError, match="not a plain lower-case identifier"):
        validate_schema_name("market; DROP TABLE x")


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
    result = migrate(database_url, "market_ts", use_timescale=True)
    assert result.timescale
    status = storage_mode(database_url, "market_ts")
    assert status["mode"] == "timescaledb"
    assert set(status["hypertables"]) == set(TABLES)  # type: ignore[arg-type]
