"""What the SPY-session benchmarks share: the session, the ticker, a dedicated database, quiet runs.

``bench_ingest.py`` and ``bench_quotes_session.py`` import it as a sibling module (a script's own
directory is on ``sys.path``). It imports nothing heavy at module level: ``bench_quotes_session``
measures the RSS of its child interpreter from before the platform's imports.
"""

from __future__ import annotations

SESSION = "2026-11-25"  # a full session (the day before Thanksgiving), ~2,000,000 SPY quotes
TICKER = "SPY"
SCHEMA = "market"
QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}
"""Run config for ``dg.materialize``: the console logger at WARNING, so logging does not weigh on the timings."""


def fresh_database(name: str) -> str:
    """The URL of database ``name`` on the platform's server, dropped, re-created and migrated
    (development data, in ``trading_data``, is never touched)."""
    import psycopg

    from trading_data.db.migrate import migrate
    from trading_data.db.url import market_database_url, with_database

    server_url = market_database_url()
    url = with_database(server_url, name)
    with psycopg.connect(with_database(server_url, "postgres"), autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {name}")
    migrate(url)
    return url
