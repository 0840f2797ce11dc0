"""Database URLs: resolved without starting (or importing) the embedded server's module."""

import subprocess
import sys

import pytest

from trading_data.db.url import market_database_url
from trading_data.errors import ConfigurationError


def test_resolving_the_embedded_url_does_not_import_the_server_module() -> None:
    # db.url and db.server imported each other; the dependency now points one way (server -> url).
    code = (
        "import os, sys; os.environ.pop('TRADING_DATA_DATABASE_URL', None); "
        "os.environ['TRADING_DATA_PG_PORT'] = '6543'; "
        "from trading_data.db.url import market_database_url; "
        "print(market_database_url()); print('trading_data.db.server' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["postgresql://postgres@127.0.0.1:6543/trading_data", "False"]


def test_a_bad_embedded_port_is_one_sentence_naming_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TRADING_DATA_DATABASE_URL", raising=False)
    monkeypatch.setenv("TRADING_DATA_PG_PORT", "70000")
    with pytest.raises(ConfigurationError) as info:
        market_database_url()
    assert str(info.value) == "invalid setting TRADING_DATA_PG_PORT='70000': must be a port number (1-65535)"
