"""market.rejects keeps every reject of a run, with one concise reason per row (issue 9, point 4)."""

from __future__ import annotations

import psycopg
import pytest

from trading_data.calendar import session
from trading_data.db.resources import MarketDatabase
from trading_data.domain.report import coverage_report
from trading_data.orchestration.steps import ChunkValidator
from trading_data.schemas import Prices, Quotes
from trading_data.validation import ValidationFailed, split_valid, validate
from trading_data_tests.factories import sample_frame

SESSION = "2026-11-25"


def _stored(url: str) -> list[tuple[str, str, str]]:
    with psycopg.connect(url) as conn:
        return [
            (r[0], r[1], r[2])
            for r in conn.execute(
                "SELECT run_id, record->>'ticker', reason FROM market.rejects ORDER BY id"
            ).fetchall()
        ]


def _pages() -> list:
    """Two quote pages of one ticker feed, each with bad rows (the asset's ChunkValidator sees pages)."""
    first = sample_frame("quotes", SESSION, 6, seed=1)
    first.loc[1, "bid_price"] = -1.0
    first.loc[4, "ask_size"] = -3.0
    second = sample_frame("quotes", SESSION, 6, seed=2)
    second.loc[2, "bid_price"] = -2.0
    return [first, second]


def _validator(database: MarketDatabase, run_id: str) -> ChunkValidator:
    # What the feed assets do: each page's rejects go to market.rejects as the page is validated.
    return ChunkValidator(
        "quotes",
        strict=False,
        on_rejects=lambda rejects: database.record_rejects("quotes", SESSION, run_id, rejects),
    )


def test_every_page_of_a_run_keeps_its_rejects(clean_market: str) -> None:
    database = MarketDatabase(database_url=clean_market)
    validator = _validator(database, "run-1")
    kept = [validator(page) for page in _pages()]
    assert [len(k) for k in kept] == [4, 5] and validator.failures == 3
    stored = _stored(clean_market)
    assert len(stored) == 3, stored
    counts = database.reject_counts(SESSION)
    assert sum(counts.values()) == 3


def test_a_retried_step_clears_its_rejects_once_then_records_them_again(clean_market: str) -> None:
    database = MarketDatabase(database_url=clean_market)
    for attempt in range(2):  # the step's first attempt, then its retry, in the same run
        assert database.clear_rejects("quotes", SESSION, "run-1") == (0 if attempt == 0 else 3)
        validator = _validator(database, "run-1")
        for page in _pages():
            validator(page)
    # Another run's and another partition's rejects are not the step's to clear.
    other = sample_frame("quotes", "2026-11-27", 2)
    other.loc[0, "bid_price"] = -1.0
    database.record_rejects("quotes", "2026-11-27", "run-1", split_valid(Quotes, other, "quotes").rejects)
    database.record_rejects("quotes", SESSION, "run-0", split_valid(Quotes, other, "quotes").rejects)
    assert database.clear_rejects("quotes", SESSION, "run-1") == 3
    assert [r[0] for r in _stored(clean_market)] == ["run-1", "run-0"]


def test_one_concise_reason_per_row() -> None:
    quotes = sample_frame("quotes", SESSION, 4)
    quotes.loc[1, "bid_price"] = -1.0
    quotes.loc[2, "bid_price"] = -1.0
    quotes.loc[2, "ticker"] = "bad ticker"
    reasons = split_valid(Quotes, quotes, "quotes").rejects["reject_reason"].tolist()
    assert reasons == [
        "bid_price: greater_than_or_equal_to(0) failed (value -1.0)",
        "ticker: str_matches('\\A[A-Z][A-Z0-9.\\-]{0,9}\\Z') failed (value 'bad ticker'); "
        "bid_price: greater_than_or_equal_to(0) failed (value -1.0)",
    ]
    # A frame-wide check reports every column of a failing row: the reason names it once.
    prices = sample_frame("prices", SESSION, 3)
    prices.loc[0, "high"] = prices.loc[0, "low"] - 0.5
    (reason,) = split_valid(Prices, prices, "prices").rejects["reject_reason"].tolist()
    assert reason == "high must be >= max(open, close, low) and low <= min(open, close) failed"


def test_daily_report_failures_equal_the_rejects_table(clean_market: str) -> None:
    database = MarketDatabase(database_url=clean_market)
    for run_id in ("run-1", "run-2"):  # a later run (a tick, a re-run) rejecting the same rows again
        validator = _validator(database, run_id)
        for page in _pages():
            validator(page)
    with psycopg.connect(clean_market) as conn:
        table = {
            (t, k): int(n)
            for t, k, n in conn.execute(
                "SELECT table_name, record->>'ticker', count(DISTINCT record) FROM market.rejects "
                "WHERE partition_key = %s GROUP BY 1, 2",
                (SESSION,),
            ).fetchall()
        }
    counts = database.reject_counts(SESSION)
    assert counts == table and sum(counts.values()) == 3
    report = coverage_report(
        session(SESSION), {"quotes": sample_frame("quotes", SESSION, 6)}, counts, session(SESSION).close
    )
    by_ticker = report.set_index("ticker")["validation_failures"].to_dict()
    assert {("quotes", t): n for t, n in by_ticker.items() if n} == counts


@pytest.mark.parametrize("empty", [True, False])
def test_record_rejects_counts_what_it_stores(clean_market: str, empty: bool) -> None:
    database = MarketDatabase(database_url=clean_market)
    page = _pages()[0]
    rejects = split_valid(Quotes, page, "quotes").rejects
    rejects = rejects.iloc[0:0] if empty else rejects
    assert database.record_rejects("quotes", SESSION, "run-1", rejects) == len(rejects)
    assert len(_stored(clean_market)) == len(rejects)


def test_rejects_with_missing_values_are_stored(clean_market: str) -> None:
    # A NaN (a bar without vwap) is not JSON: it is stored as null, not refused by PostgreSQL.
    prices = sample_frame("prices", SESSION, 3)
    prices.loc[0, "vwap"] = float("nan")
    prices.loc[0, "close"] = -1.0
    rejects = split_valid(Prices, prices, "prices").rejects
    database = MarketDatabase(database_url=clean_market)
    assert database.record_rejects("prices", SESSION, "run-1", rejects) == 1
    with psycopg.connect(clean_market) as conn:
        row = conn.execute("SELECT record->'vwap', record->>'close' FROM market.rejects").fetchone()
    assert row == (None, "-1.0")


def test_strict_validation_names_a_frame_wide_check_once_per_row() -> None:
    prices = sample_frame("prices", SESSION, 5)
    prices.loc[[1, 3], "high"] = prices.loc[[1, 3], "low"] - 0.5
    with pytest.raises(ValidationFailed) as info:
        validate(Prices, prices, "prices")
    message = str(info.value)
    assert info.value.failure_count == 2 and message.startswith("prices: 2 validation failure(s)")
    assert message.count("high must be >=") == 1 and "on 2 row(s)" in message
