"""Schedules and settings read TRADING_DATA_* variables: every test here starts from a clean environment."""

from __future__ import annotations

import os

import pytest


@pytest.fixture(autouse=True)
def _clean_trading_data_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("TRADING_DATA_") and name != "TRADING_DATA_DATABASE_URL":
            monkeypatch.delenv(name)
