"""Streams into an empty window: chunks COPYed straight into the table on the writer thread, a later copy of a
key still wins, a discarded ticker leaves nothing, and a COPY that fails rolls the whole write back."""

import dagster as dg
import pandas as pd
import psycopg
import pytest

from trading_data.db.frame_chunks import FrameChunks
from trading_data.db.io_manager import PostgresPandasIOManager
from trading_data.db.table_slices import StorageError
from trading_data.partitions import session_partitions
from trading_data_tests.factories import sample_frame

SESSION = "2026-11-27"


def _materialize(url: str, make_stream, raise_on_error: bool = True, **metadata) -> dg.ExecuteInProcessResult:
    @dg.asset(
        name="quotes",
        partitions_def=session_partitions,
        metadata={"partition_expr": "ts", "write_mode": "upsert", **metadata},
    )
    def quotes() -> FrameChunks:
        return make_stream()

    return dg.materialize(
        [quotes],
        partition_key=SESSION,
        raise_on_error=raise_on_error,
        resources={"io_manager": PostgresPandasIOManager(database_url=url)},
    )


def _pages(ticker: str, n: int = 12, per_page: int = 4) -> list[pd.DataFrame]:
    frame = sample_frame("quotes", SESSION, n).assign(ticker=ticker).sort_values("ts", ignore_index=True)
    return [frame.iloc[i : i + per_page].reset_index(drop=True) for i in range(0, n, per_page)]


def _stored(url: str) -> list[tuple]:
    with psycopg.connect(url) as conn:
        return conn.execute(
            "SELECT ticker, ts, sequence_number, bid_price FROM market.quotes ORDER BY ticker, ts"
        ).fetchall()


def _fast_path(result: dg.ExecuteInProcessResult) -> bool:
    return bool(result.asset_materializations_for_node("quotes")[0].metadata["upsert_fast_path"].value)


def test_ordered_pages_go_straight_in(clean_market: str) -> None:
    pages = _pages("AAPL") + _pages("MSFT")
    result = _materialize(clean_market, lambda: FrameChunks(pages))
    assert _fast_path(result)
    assert len(_stored(clean_market)) == 24


def test_a_later_copy_of_a_key_wins_over_a_page_copied_straight_in(clean_market: str) -> None:
    first, second, third = _pages("AAPL")
    # The third page repeats the first page's keys with new prices: it cannot go straight in.
    again = first.assign(bid_price=7.0, ask_price=8.0)
    result = _materialize(clean_market, lambda: FrameChunks([first, second, third, again]))
    assert not _fast_path(result)
    stored = _stored(clean_market)
    assert len(stored) == 12
    assert sorted(row[3] for row in stored[:4]) == [7.0] * 4
    assert all(row[3] != 7.0 for row in stored[4:])


def test_discarded_ticker_leaves_no_row_in_an_empty_window(clean_market: str) -> None:
    def stream() -> FrameChunks:
        chunks = FrameChunks([])

        def pages():
            yield from _pages("AAPL")
            yield from _pages("MSFT")
            chunks.discard_tickers.add("MSFT")  # failed part-way, after its pages were copied

        chunks._chunks = pages()
        chunks.replace_tickers = ["AAPL", "MSFT"]
        return chunks

    result = _materialize(clean_market, stream)
    assert _fast_path(result)
    assert {row[0] for row in _stored(clean_market)} == {"AAPL"}
    assert len(_stored(clean_market)) == 12


def test_a_failing_copy_on_the_writer_thread_rolls_everything_back(clean_market: str) -> None:
    first, second, _ = _pages("AAPL")
    # replace mode COPYs every chunk straight in: the repeated keys violate the primary key.
    result = _materialize(
        clean_market, lambda: FrameChunks([first, second, first]), raise_on_error=False, write_mode="replace"
    )
    assert not result.success
    error = result.get_step_failure_events()[0].step_failure_data.error
    assert error is not None
    text = error.to_string()
    assert f"{StorageError.__name__}: " in text and "quotes_pkey" in text and "rolled back" in text
    assert _stored(clean_market) == []


@pytest.mark.parametrize("fail_at", [0, 2])
def test_a_failing_stream_stops_the_writer_and_stores_nothing(clean_market: str, fail_at: int) -> None:
    def pages():
        for i, page in enumerate(_pages("AAPL")):
            if i == fail_at:
                raise RuntimeError("vendor went away")
            yield page

    result = _materialize(clean_market, lambda: FrameChunks(pages()), raise_on_error=False)
    assert not result.success
    assert _stored(clean_market) == []
