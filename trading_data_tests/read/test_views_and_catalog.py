"""The views (minute_bars, daily_bars, latest_nbbo) and the catalog over the four stored sessions."""

from __future__ import annotations

import datetime as dt
import json

import pandas as pd
import pytest

from trading_data import cli, read
from trading_data.calendar import sessions_between
from trading_data.read.catalog import catalog
from trading_data_tests.read.conftest import SESSIONS, Stored

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("read")]
STORED_DAYS = [dt.date.fromisoformat(s) for s in SESSIONS]


def test_minute_and_daily_bars_views_split_prices_by_timespan(stored: Stored) -> None:
    for view, timespan in (("minute_bars", "minute"), ("daily_bars", "day")):
        [(rows, bad_sessions)] = stored.rows(
            f"SELECT count(*), count(*) FILTER (WHERE session <> (ts AT TIME ZONE 'America/New_York')::date) "
            f"FROM market.{view}"
        )
        [(expected,)] = stored.rows("SELECT count(*) FROM market.prices WHERE timespan = %s", (timespan,))
        assert rows == expected > 0 and bad_sessions == 0
    days = stored.rows("SELECT DISTINCT session, ts FROM market.daily_bars ORDER BY 1")
    assert [d for d, _ in days] == STORED_DAYS
    assert {ts.astimezone(dt.UTC).hour for d, ts in days if d < dt.date(2026, 11, 1)} == {4}  # EDT
    assert {ts.astimezone(dt.UTC).hour for d, ts in days if d > dt.date(2026, 11, 1)} == {5}  # EST


def test_latest_nbbo_view_is_the_newest_quote_per_ticker_of_the_latest_selection(stored: Stored) -> None:
    rows = stored.rows(
        "SELECT session, ticker, ts, sequence_number, bid_price, ask_price FROM market.latest_nbbo ORDER BY ticker"
    )
    api = read.latest_nbbo("2026-11-27", database_url=stored.url)
    assert [r[0] for r in rows] == [dt.date(2026, 11, 27)] * len(stored.tickers)
    assert [(r[1], pd.Timestamp(r[2]), r[3], r[4], r[5]) for r in rows] == list(
        api[["ticker", "ts", "sequence_number", "bid_price", "ask_price"]].itertuples(index=False, name=None)
    )


def test_the_catalog_counts_what_is_stored_and_reports_missing_sessions(stored: Stored) -> None:
    entries = {e.table: e for e in catalog(stored.url, "market")}
    prices = entries["prices"]
    [(rows, tickers)] = stored.rows("SELECT count(*), count(DISTINCT ticker) FROM market.prices")
    assert (prices.rows, prices.tickers, prices.bytes) == (rows, tickers, _size_on_disk(stored, "prices"))
    assert (prices.sessions, prices.first_session, prices.last_session) == (
        4,
        STORED_DAYS[0],
        STORED_DAYS[-1],
    )
    expected_missing = [d for d in sessions_between(STORED_DAYS[0], STORED_DAYS[-1]) if d not in STORED_DAYS]
    assert prices.missing_sessions == expected_missing
    assert dt.date(2026, 11, 3) in prices.missing_sessions
    assert dt.date(2026, 11, 26) not in prices.missing_sessions  # Thanksgiving is no session
    assert dt.date(2026, 10, 31) not in prices.missing_sessions  # nor a Saturday
    assert prices.off_calendar_days == []
    assert entries["daily_report"].rows == 0 and entries["daily_report"].missing_sessions == []
    narrow = catalog(stored.url, "market", ["quotes"], dt.date(2026, 10, 29), dt.date(2026, 11, 2))
    assert narrow[0].missing_sessions == [dt.date(2026, 10, 29)]


def _size_on_disk(stored: Stored, relation: str) -> int:
    """A plain table's total size, or a hypertable's or continuous aggregate's with its chunks."""
    [(timescale,)] = stored.rows("SELECT count(*) FROM pg_extension WHERE extname = 'timescaledb'")
    function = "hypertable_size" if timescale else "pg_total_relation_size"
    [(size,)] = stored.rows(f"SELECT {function}('market.{relation}')")
    return int(size)


@pytest.mark.parametrize(("table", "width"), [("bars_5m", "5 minutes"), ("bars_1h", "1 hour")])
def test_the_catalog_has_a_row_per_bar_aggregate(stored: Stored, table: str, width: str) -> None:
    [entry] = catalog(stored.url, "market", [table])
    [(buckets, tickers)] = stored.rows(
        f"SELECT count(DISTINCT (ticker, date_bin(INTERVAL '{width}', ts, TIMESTAMPTZ '2000-01-01 00:00+00'))), "
        "count(DISTINCT ticker) FROM market.minute_bars"
    )
    assert (entry.rows, entry.tickers) == (buckets, tickers) and buckets > 0
    assert entry.bytes == _size_on_disk(stored, table) > 0
    prices = catalog(stored.url, "market", ["prices"])[0]
    assert (entry.sessions, entry.first_session, entry.last_session) == (4, STORED_DAYS[0], STORED_DAYS[-1])
    assert entry.missing_sessions == prices.missing_sessions and entry.off_calendar_days == []


def test_catalog_command(
    stored: Stored, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("TRADING_DATA_DATABASE_URL", stored.url)
    assert cli.main(["catalog", "--json", "--tables", "trades"]) == 0
    [entry] = json.loads(capsys.readouterr().out)
    assert entry["table"] == "trades" and entry["sessions"] == 4 and "2026-11-24" in entry["missing_sessions"]
    assert cli.main(["catalog"]) == 0
    text = capsys.readouterr().out
    assert text.splitlines()[0].split()[:3] == ["table", "sessions", "tickers"]
    assert [line.split()[0] for line in text.splitlines()[-2:]] == ["bars_5m", "bars_1h"]
    assert "16: 2026-11-03, 2026-11-04, 2026-11-05, …" in text
    assert cli.main(["catalog", "--json", "--tables", "bars_1h"]) == 0
    [entry] = json.loads(capsys.readouterr().out)
    assert entry["table"] == "bars_1h" and entry["sessions"] == 4 and entry["rows"] > 0
    assert cli.main(["catalog", "--tables", "nope"]) == 2
    assert "no table 'nope'" in capsys.readouterr().err
