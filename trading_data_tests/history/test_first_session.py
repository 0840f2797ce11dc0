"""The first session is a setting: the partitions start there (default: January 1st two years before the
current year), a bad value fails in one sentence, and moving it keeps the stored data."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys

import psycopg
import pytest

from trading_data.partitions import build_session_partitions, first_session
from trading_data.settings import SettingsError
from trading_data.settings.history import FIRST_SESSION

pytestmark = pytest.mark.clock


def test_default_is_january_two_years_back_moving_once_a_year(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(FIRST_SESSION.env_var, raising=False)
    assert first_session(dt.date(2026, 12, 2)) == dt.date(2024, 1, 2)  # Jan 1st is a holiday
    assert first_session(dt.date(2026, 1, 2)) == dt.date(2024, 1, 2)
    assert first_session(dt.date(2027, 1, 4)) == dt.date(2025, 1, 2)


def test_setting_names_the_first_session_on_or_after_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(FIRST_SESSION.env_var, "2005-07-04")  # Independence Day: the 5th is the first
    start = first_session(dt.date(2026, 12, 2))
    assert start == dt.date(2005, 7, 5)
    partitions = build_session_partitions(start)
    keys = partitions.get_partition_keys(current_time=dt.datetime(2005, 7, 12, 12, tzinfo=dt.UTC))
    assert keys == ["2005-07-05", "2005-07-06", "2005-07-07", "2005-07-08", "2005-07-11", "2005-07-12"]
    # 2012-10-29/30 (Hurricane Sandy) and 2007-01-02 (President Ford's funeral) are no partitions.
    all_keys = set(partitions.get_partition_keys(current_time=dt.datetime(2013, 1, 1, tzinfo=dt.UTC)))
    assert {"2012-10-29", "2012-10-30", "2007-01-02"}.isdisjoint(all_keys)
    assert {"2012-10-26", "2012-10-31", "2007-01-03"} <= all_keys


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("2002-12-31", "on or after 2003-01-02"),
        ("last year", "must be a date YYYY-MM-DD"),
        ("2027-06-01", "is after today"),
    ],
)
def test_a_bad_first_session_is_one_sentence(
    monkeypatch: pytest.MonkeyPatch, value: str, problem: str
) -> None:
    monkeypatch.setenv(FIRST_SESSION.env_var, value)
    with pytest.raises(SettingsError, match=problem) as err:
        first_session(dt.date(2026, 12, 2))
    assert FIRST_SESSION.env_var in str(err.value)


def test_definitions_load_with_the_setting_and_agree_across_processes() -> None:
    """Two processes loading the definitions the same day see the same partitions (the code server and a
    run worker must agree); the setting moves them."""
    code = (
        "from trading_data.definitions import defs; "
        "p = defs.resolve_asset_graph().get(__import__('dagster').AssetKey('prices')).partitions_def; "
        "print(p.start.date(), len(p.get_partition_keys()))"
    )
    env = {**os.environ, "TRADING_DATA_NOW": "2026-12-02T10:00:00-05:00"}
    env.pop(FIRST_SESSION.env_var, None)
    runs = [
        subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True) for _ in "ab"
    ]
    assert runs[0].returncode == 0, runs[0].stderr
    assert runs[0].stdout == runs[1].stdout
    assert runs[0].stdout.split()[0] == "2024-01-02"
    moved = subprocess.run(
        [sys.executable, "-c", code],
        env={**env, FIRST_SESSION.env_var: "2022-01-01"},
        capture_output=True,
        text=True,
    )
    assert moved.stdout.split()[0] == "2022-01-03", moved.stderr
    assert int(moved.stdout.split()[1]) > int(runs[0].stdout.split()[1]) + 500


def test_moving_the_first_session_later_keeps_stored_data(clean_market: str) -> None:
    """The partitions shrink; the rows of older sessions stay in the table (nothing deletes them), and
    moving the setting back shows their partitions again."""
    insert = (
        "INSERT INTO market.prices (ts, ticker, timespan, open, high, low, close, volume) "
        "VALUES ('2024-03-01 14:30+00', 'AAPL', 'minute', 1, 2, 0.5, 1.5, 100)"
    )
    with psycopg.connect(clean_market) as conn:
        conn.execute(insert)
    now = dt.datetime(2026, 12, 2, tzinfo=dt.UTC)
    later = build_session_partitions(dt.date(2025, 1, 2))
    assert "2024-03-01" not in later.get_partition_keys(current_time=now)
    with psycopg.connect(clean_market) as conn:
        row = conn.execute("SELECT count(*) FROM market.prices WHERE ts::date = '2024-03-01'").fetchone()
    assert row == (1,)
    assert "2024-03-01" in build_session_partitions(dt.date(2024, 1, 2)).get_partition_keys(current_time=now)
