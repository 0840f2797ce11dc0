"""Resolve the database URLs the platform uses and show them without secrets.

Every URL is resolved in code, from the user's own variables first, then the embedded dev server:
nothing needs a ``.env`` file, which Dagster's CLI would inject *over* the user's environment
(DESIGN.md decision 10).

| what | variable | unset |
|---|---|---|
| market data | ``TRADING_DATA_DATABASE_URL`` | the embedded server's ``trading_data`` database |
| Dagster storage | ``TRADING_DATA_DAGSTER_DATABASE_URL`` (older name ``TRADING_DATA_DAGSTER_PG_URL``) | a ``dagster`` database beside the market data |

The embedded server's port is here too (``TRADING_DATA_PG_PORT``): its URL needs it, and
:mod:`trading_data.db.server`, which starts the server, imports this module, never the reverse.
"""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

from trading_data.errors import ConfigurationError
from trading_data.redact import redact
from trading_data.settings import platform as settings

DATABASE_URL_ENV = settings.DATABASE_URL.env_var
DAGSTER_DATABASE_URL_ENV = settings.DAGSTER_DATABASE_URL.env_var
# The older name of the same setting (psycopg2 scheme), still read: deployments and scripts set it.
DAGSTER_PG_URL_ENV = settings.DAGSTER_PG_URL.env_var
MARKET_DATABASE = "trading_data"
DAGSTER_DATABASE = "dagster"
PORT_ENV = settings.PG_PORT.env_var
DEFAULT_PORT = settings.PG_PORT.default


def mask_password(url: str) -> str:
    """Return ``url`` with any password (and other credential) replaced by ``***`` so it can be logged."""
    return redact(url)


def with_database(url: str, database: str) -> str:
    """Return ``url`` pointing at another database on the same server."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{database}"))


def embedded_port() -> int:
    """The embedded dev server's port: ``TRADING_DATA_PG_PORT``, else 54329."""
    return settings.PG_PORT.get()


def embedded_url(port: int, database: str = MARKET_DATABASE) -> str:
    return f"postgresql://postgres@127.0.0.1:{port}/{database}"


def market_database_url() -> str:
    """The market-data database: ``TRADING_DATA_DATABASE_URL`` or the embedded server's."""
    explicit = settings.DATABASE_URL.get()
    if explicit:
        return explicit
    return embedded_url(embedded_port())


def dagster_database_url() -> str:
    """The Dagster instance storage: ``TRADING_DATA_DAGSTER_DATABASE_URL`` (or its older name
    ``TRADING_DATA_DAGSTER_PG_URL``), else a ``dagster`` database on the market data's server."""
    explicit = settings.DAGSTER_DATABASE_URL.get()
    older = settings.DAGSTER_PG_URL.get()
    if explicit and older and sqlalchemy_psycopg2_url(explicit) != sqlalchemy_psycopg2_url(older):
        raise ConfigurationError(
            f"{DAGSTER_DATABASE_URL_ENV}={mask_password(explicit)!r} and {DAGSTER_PG_URL_ENV}="
            f"{mask_password(older)!r} name different Dagster storage databases; set only "
            f"{DAGSTER_DATABASE_URL_ENV}"
        )
    return explicit or older or with_database(market_database_url(), DAGSTER_DATABASE)


def sqlalchemy_psycopg2_url(url: str) -> str:
    """dagster-postgres needs the psycopg2 scheme (DESIGN.md decision 9)."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(scheme="postgresql+psycopg2"))
