"""Crossed and locked NBBO quotes are market data: stored, counted, warned about past a share (issue 9.3)."""

from __future__ import annotations

import dagster as dg
import pandas as pd
import psycopg
import pytest

from trading_data.db.io_manager import PostgresPandasIOManager
from trading_data.db.resources import MarketDatabase
from trading_data.definitions import ASSET_CHECKS
from trading_data.defs.market_data.checks import CROSSED_QUOTES_WARN_SHARE
from trading_data.partitions import session_partitions
from trading_data.schemas import TABLES, Quotes
from trading_data.validation import ValidationFailed
from trading_data_tests.factories import sample_frame

SESSION = "2026-11-25"
CHECK = next(c for c in ASSET_CHECKS if "quotes_not_crossed" in {k.name for k in c.check_keys})


def _quotes(n: int, crossed: int, locked: int) -> pd.DataFrame:
    frame = sample_frame("quotes", SESSION, n)
    for i in range(crossed):
        frame.loc[i, "ask_price"] = frame.loc[i, "bid_price"] - 0.02
    for i in range(crossed, crossed + locked):
        frame.loc[i, "ask_price"] = frame.loc[i, "bid_price"]
    # One-sided quotes (a side at 0: nothing quoted there) are neither crossed nor locked.
    frame.loc[n - 1, "ask_price"] = 0.0
    frame.loc[n - 2, ["bid_price", "ask_price"]] = 0.0
    return frame


def _store_and_check(url: str, frame: pd.DataFrame) -> dg.AssetCheckEvaluation:
    @dg.asset(name="quotes", partitions_def=session_partitions, metadata={"partition_expr": "ts"})
    def quotes() -> pd.DataFrame:
        return frame

    result = dg.materialize(
        [quotes, CHECK],
        partition_key=SESSION,
        resources={
            "io_manager": PostgresPandasIOManager(database_url=url),
            "database": MarketDatabase(database_url=url),
        },
    )
    assert result.success
    (evaluation,) = result.get_asset_check_evaluations()
    return evaluation


def _stored(url: str) -> tuple[int, int, int]:
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT count(*), count(*) FILTER (WHERE ask_price < bid_price AND ask_price > 0), "
            "count(*) FILTER (WHERE ask_price = bid_price AND bid_price > 0) FROM market.quotes"
        ).fetchone()
    assert row is not None
    return int(row[0]), int(row[1]), int(row[2])


def test_model_accepts_crossed_and_locked_but_not_impossible_quotes() -> None:
    Quotes.validate(_quotes(10, crossed=3, locked=3))
    for column, value in (("bid_price", -1.0), ("ask_price", -0.01), ("bid_size", -5.0), ("ask_size", -1.0)):
        bad = sample_frame("quotes", SESSION, 4)
        bad.loc[1, column] = value
        with pytest.raises(Exception, match=column):
            Quotes.validate(bad)


def test_crossed_and_locked_quotes_are_stored_and_pass_below_the_share(clean_market: str) -> None:
    evaluation = _store_and_check(clean_market, _quotes(400, crossed=2, locked=3))
    assert _stored(clean_market) == (400, 2, 3)
    assert evaluation.passed
    metadata = {k: v.value for k, v in evaluation.metadata.items()}
    assert metadata["crossed_quotes"] == 2 and metadata["locked_quotes"] == 3
    assert metadata["quotes"] == 400
    assert metadata["crossed_share"] == pytest.approx(2 / 400)
    assert metadata["locked_share"] == pytest.approx(3 / 400)
    assert metadata["warn_share"] == CROSSED_QUOTES_WARN_SHARE


def test_crossed_quotes_past_the_share_warn(clean_market: str) -> None:
    n = 200
    crossed = int(n * CROSSED_QUOTES_WARN_SHARE) + 1
    evaluation = _store_and_check(clean_market, _quotes(n, crossed=crossed, locked=0))
    assert _stored(clean_market) == (n, crossed, 0)
    assert not evaluation.passed and evaluation.severity == dg.AssetCheckSeverity.WARN
    assert evaluation.metadata["crossed_quotes"].value == crossed
    assert evaluation.metadata["crossed_share"].value == pytest.approx(crossed / n)


def test_a_session_without_quotes_passes(clean_market: str) -> None:
    evaluation = _store_and_check(clean_market, _quotes(4, 0, 0).iloc[0:0])
    assert evaluation.passed and evaluation.metadata["crossed_share"].value == 0.0


def test_impossible_quotes_still_fail_the_io_manager(clean_market: str) -> None:
    bad = _quotes(6, crossed=1, locked=1)
    bad.loc[3, "bid_size"] = -1.0
    with pytest.raises(ValidationFailed, match="bid_size"):
        _store_and_check(clean_market, bad)
    with psycopg.connect(clean_market) as conn:
        assert conn.execute(f"SELECT count(*) FROM market.{TABLES['quotes'].name}").fetchone() == (0,)
