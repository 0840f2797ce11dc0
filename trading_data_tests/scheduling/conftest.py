"""Schedules and settings read TRADING_DATA_* variables: every test here starts from a clean environment."""

from __future__ import annotations

import os

import pytest


@pytest.fixture(autouse=True)
def _clean_trading_data_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        # The database, and the clock `pytest --now` pins (make test-times), are the suite's, not a setting.
        if name.startswith("TRADING_DATA_") and name not in ("TRADING_DATA_DATABASE_URL", "TRADING_DATA_NOW"):
            monkeypatch.delenv(name)
