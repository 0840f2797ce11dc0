"""``TRADING_DATA_PG_SERVER_OPTIONS`` reaches the embedded server's ``postgres`` command (how a TimescaleDB
installed into the wheel's server is preloaded), and a malformed value is one sentence."""

from __future__ import annotations

import socket
from pathlib import Path

import psycopg
import pytest

from trading_data.db import server
from trading_data.db.url import embedded_url
from trading_data.settings import SettingsError
from trading_data.settings.platform import PG_SERVER_OPTIONS


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.slow
def test_the_embedded_server_starts_with_the_extra_options(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    port = _free_port()
    monkeypatch.setenv("TRADING_DATA_PGDATA", str(tmp_path / "pgdata"))
    monkeypatch.setenv("TRADING_DATA_PG_PORT", str(port))
    monkeypatch.setenv("TRADING_DATA_PG_SERVER_OPTIONS", "-c work_mem=7777kB -c statement_timeout=123s")
    monkeypatch.delenv("TRADING_DATA_DATABASE_URL", raising=False)
    try:
        assert server.start().running
        with psycopg.connect(embedded_url(port, "postgres")) as conn:
            assert conn.execute("SHOW work_mem").fetchone() == ("7777kB",)
            assert conn.execute("SHOW statement_timeout").fetchone() == ("123s",)
    finally:
        server.stop()


def test_a_malformed_option_string_is_one_sentence() -> None:
    with pytest.raises(SettingsError) as error:
        PG_SERVER_OPTIONS.get({"TRADING_DATA_PG_SERVER_OPTIONS": "-c search_path='market"})
    message = str(error.value)
    assert "TRADING_DATA_PG_SERVER_OPTIONS" in message
    assert "must be postgres command-line options, e.g. -c shared_preload_libraries=timescaledb" in message
    assert PG_SERVER_OPTIONS.get({"TRADING_DATA_PG_SERVER_OPTIONS": "  "}) is None
