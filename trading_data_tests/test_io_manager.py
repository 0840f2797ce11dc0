"""The PostgreSQL IO manager against a real server: round trips, windows, modes, failures."""

import threading
from collections.abc import Iterator

import dagster as dg
import pandas as pd
import psycopg
import pytest

from trading_data.db.frame_chunks import FrameChunks
from trading_data.db.io_manager import PostgresPandasIOManager
from trading_data.db.table_slices import StorageError
from trading_data.partitions import session_partitions
from trading_data.schemas import TABLES
from trading_data.validation import ValidationFailed
from trading_data_tests.factories import sample_frame

SESSION = "2026-11-27"


def _asset(table: str, frame_or_fn, **metadata) -> dg.AssetsDefinition:
    spec = TABLES[table]

    @dg.asset(
        name=table,
        partitions_def=session_partitions,
        metadata={"partition_expr": spec.time_column, **metadata},
    )
    def _table(context: dg.AssetExecutionContext):
        return frame_or_fn(context) if callable(frame_or_fn) else frame_or_fn

    return _table


def _reader(table: str, start: int = 0, end: int = 0) -> tuple[dg.AssetsDefinition, dict]:
    loaded: dict = {}

    @dg.asset(
        partitions_def=session_partitions,
        ins={
            "upstream": dg.AssetIn(
                table, partition_mapping=dg.TimeWindowPartitionMapping(start_offset=start, end_offset=end)
            )
        },
    )
    def reader(upstream: pd.DataFrame) -> None:
        loaded["frame"] = upstream

    return reader, loaded


def _materialize(url: str, assets, partition: str = SESSION, raise_on_error: bool = True, selection=None):
    return dg.materialize(
        assets,
        partition_key=partition,
        raise_on_error=raise_on_error,
        selection=selection,
        resources={"io_manager": PostgresPandasIOManager(database_url=url)},
    )


def _count(url: str, table: str) -> int:
    with psycopg.connect(url) as conn:
        return conn.execute(f"SELECT count(*) FROM market.{table}").fetchone()[0]


@pytest.mark.parametrize("table", list(TABLES))
def test_round_trip_every_table(clean_market: str, table: str) -> None:
    frame = sample_frame(table, SESSION)
    reader, loaded = _reader(table)
    result = _materialize(clean_market, [_asset(table, frame), reader])
    materialization = result.asset_materializations_for_node(table)[0]
    assert materialization.metadata["dagster/row_count"].value == len(frame)
    assert materialization.metadata["write_mode"].value == TABLES[table].write_mode
    assert [c.name for c in materialization.metadata["dagster/column_schema"].schema.columns] == TABLES[
        table
    ].columns
    back = loaded["frame"]
    key = list(TABLES[table].primary_key)
    pd.testing.assert_frame_equal(
        back.sort_values(key).reset_index(drop=True),
        frame.sort_values(key).reset_index(drop=True),
        check_dtype=True,
    )


def test_replace_twice_leaves_same_rows(clean_market: str) -> None:
    frame = sample_frame("indicators", SESSION)
    for _ in range(2):
        _materialize(clean_market, [_asset("indicators", frame)])
    assert _count(clean_market, "indicators") == len(frame)


def test_replace_only_touches_its_window(clean_market: str) -> None:
    _materialize(clean_market, [_asset("indicators", sample_frame("indicators", "2026-11-25"))], "2026-11-25")
    _materialize(clean_market, [_asset("indicators", sample_frame("indicators", SESSION))])
    _materialize(clean_market, [_asset("indicators", sample_frame("indicators", SESSION, 3))])
    assert _count(clean_market, "indicators") == 8 + 3


def test_upsert_merges(clean_market: str) -> None:
    first = sample_frame("quotes", SESSION, 6)
    result = _materialize(clean_market, [_asset("quotes", first)])
    # An empty window takes the fast path: a straight COPY, no staging table.
    assert result.asset_materializations_for_node("quotes")[0].metadata["upsert_fast_path"].value is True
    second = sample_frame("quotes", SESSION, 10)
    second["bid_price"] = 1.0
    second["ask_price"] = 2.0
    merged = _materialize(clean_market, [_asset("quotes", second)])
    assert merged.asset_materializations_for_node("quotes")[0].metadata["upsert_fast_path"].value is False
    with psycopg.connect(clean_market) as conn:
        rows = conn.execute("SELECT count(*), min(bid_price), max(bid_price) FROM market.quotes").fetchone()
    assert rows == (10, 1.0, 1.0)


def test_upsert_of_iterator_streams_chunks_in_one_transaction(clean_market: str) -> None:
    frame = sample_frame("trades", SESSION, 30)
    chunks = [frame.iloc[i : i + 7] for i in range(0, 30, 7)]
    result = _materialize(clean_market, [_asset("trades", lambda _: FrameChunks(chunks))])
    assert result.asset_materializations_for_node("trades")[0].metadata["chunks"].value == 5
    assert _count(clean_market, "trades") == 30


def test_failure_mid_stream_leaves_old_partition(clean_market: str) -> None:
    old = sample_frame("indicators", SESSION, 8)
    _materialize(clean_market, [_asset("indicators", old)])
    new = sample_frame("indicators", SESSION, 20, seed=1)

    def failing(_: dg.AssetExecutionContext) -> Iterator[pd.DataFrame]:
        yield new.iloc[:10]
        raise ConnectionError("vendor went away after the first page")

    result = _materialize(
        clean_market, [_asset("indicators", lambda c: FrameChunks(failing(c)))], raise_on_error=False
    )
    assert not result.success
    assert "vendor went away" in str(result.all_events)
    with psycopg.connect(clean_market) as conn:
        closes = sorted(r[0] for r in conn.execute("SELECT close FROM market.indicators"))
    assert closes == sorted(old["close"].tolist())


def test_killed_connection_leaves_old_partition(clean_market: str) -> None:
    old = sample_frame("indicators", SESSION, 8)
    _materialize(clean_market, [_asset("indicators", old)])
    new = sample_frame("indicators", SESSION, 40, seed=2)
    killed = threading.Event()

    def killer_chunks(_: dg.AssetExecutionContext) -> Iterator[pd.DataFrame]:
        yield new.iloc[:20]
        # Kill every other backend writing to this database: the IO manager's connection dies mid-write.
        with psycopg.connect(clean_market, autocommit=True) as conn:
            conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        killed.set()
        yield new.iloc[20:]

    result = _materialize(
        clean_market, [_asset("indicators", lambda c: FrameChunks(killer_chunks(c)))], raise_on_error=False
    )
    assert killed.is_set() and not result.success
    failure = result.failure_data_for_node("indicators")
    assert failure is not None and "transaction was rolled back" in str(failure.error)
    assert _count(clean_market, "indicators") == 8


def test_validation_failure_writes_nothing_and_names_the_problem(clean_market: str) -> None:
    bad = sample_frame("quotes", SESSION, 5)
    bad.loc[2, "bid_price"] = -1.0  # a negative price cannot be true (a crossed quote can)
    bad.loc[3, "ticker"] = "bad ticker"
    with pytest.raises(ValidationFailed) as info:
        _materialize(clean_market, [_asset("quotes", bad)])
    message = str(info.value)
    assert "'bid_price'" in message and "greater_than_or_equal_to(0)" in message
    assert "'ticker'" in message and "str_matches" in message
    assert "bad ticker" in message
    assert _count(clean_market, "quotes") == 0


def test_columns_that_differ_are_named(clean_market: str) -> None:
    frame = sample_frame("prices", SESSION).rename(columns={"vwap": "vw"})
    with pytest.raises(StorageError, match=r"missing \['vwap'\], unexpected \['vw'\]"):
        _materialize(clean_market, [_asset("prices", frame)])


def test_rows_outside_the_window_are_refused(clean_market: str) -> None:
    frame = sample_frame("prices", "2026-11-25")
    with pytest.raises(StorageError, match="outside the partition window"):
        _materialize(clean_market, [_asset("prices", frame)])


def test_missing_table_says_run_migrations(server_url: str, clean_market: str) -> None:
    with psycopg.connect(clean_market, autocommit=True) as conn:
        conn.execute("ALTER TABLE market.daily_report RENAME TO daily_report_moved")
    try:
        with pytest.raises(StorageError, match="trading-data db migrate"):
            _materialize(clean_market, [_asset("daily_report", sample_frame("daily_report", SESSION))])
    finally:
        with psycopg.connect(clean_market, autocommit=True) as conn:
            conn.execute("ALTER TABLE market.daily_report_moved RENAME TO daily_report")


def test_unreachable_database_names_masked_url(clean_market: str) -> None:
    url = "postgresql://trader:s3cret-pw@127.0.0.1:1/nowhere"
    with pytest.raises(StorageError) as info:
        _materialize(url, [_asset("prices", sample_frame("prices", SESSION))])
    assert "trader:***@127.0.0.1:1" in str(info.value)
    assert "s3cret-pw" not in str(info.value)


def test_row_at_2359_new_york_belongs_to_that_session(clean_market: str) -> None:
    frame = sample_frame("quotes", SESSION, 2)
    frame["ts"] = [
        pd.Timestamp(f"{SESSION} 23:59:59.999", tz="America/New_York").tz_convert("UTC"),
        pd.Timestamp("2026-11-30 00:00", tz="America/New_York").tz_convert("UTC"),
    ]
    with pytest.raises(StorageError, match="outside the partition window"):
        _materialize(clean_market, [_asset("quotes", frame)])
    _materialize(clean_market, [_asset("quotes", frame.iloc[:1])])
    next_session = frame.iloc[1:]
    _materialize(clean_market, [_asset("quotes", next_session)], "2026-11-30")
    reader, loaded = _reader("quotes")
    _materialize(clean_market, [_asset("quotes", frame.iloc[:1]), reader], selection=[reader.key])
    assert len(loaded["frame"]) == 1
    assert loaded["frame"]["ts"].iloc[0] == frame["ts"].iloc[0]


def test_range_load_across_a_holiday(clean_market: str) -> None:
    # Sessions 2026-11-24, 11-25, (11-26 Thanksgiving), 11-27: a window of three sessions back.
    for key in ("2026-11-24", "2026-11-25", SESSION):
        _materialize(clean_market, [_asset("prices", sample_frame("prices", key, 4))], key)
    reader, loaded = _reader("prices", start=-2)
    _materialize(
        clean_market, [_asset("prices", sample_frame("prices", SESSION, 4)), reader], selection=[reader.key]
    )
    days = sorted(loaded["frame"]["ts"].dt.tz_convert("America/New_York").dt.date.astype(str).unique())
    assert days == ["2026-11-24", "2026-11-25", SESSION]
    assert len(loaded["frame"]) == 12


@pytest.mark.parametrize("table", ["indicators", "selected_tickers"])
def test_concurrent_replaces_of_one_window_take_turns(clean_market: str, table: str) -> None:
    """Two runs replacing the same empty window at once: the second waits for the first, then replaces
    (without the window lock it failed with a duplicate key once the first committed)."""
    frame = sample_frame(table, SESSION)
    loaded, release = threading.Event(), threading.Event()

    def held_open(context: dg.AssetExecutionContext) -> FrameChunks:
        def chunks() -> Iterator[pd.DataFrame]:
            yield frame
            loaded.set()  # the first frame is in the open transaction: hold it there
            release.wait(30)

        return FrameChunks(chunks())

    results: dict[str, bool] = {}

    def run(name: str, value) -> None:  # type: ignore[no-untyped-def]
        results[name] = _materialize(clean_market, [_asset(table, value)], raise_on_error=False).success

    first = threading.Thread(target=run, args=("first", held_open))
    first.start()
    assert loaded.wait(30)
    second = threading.Thread(target=run, args=("second", frame))
    second.start()
    second.join(1.0)  # give the second write time to reach the table while the first holds it
    release.set()
    first.join(60)
    second.join(60)
    assert results == {"first": True, "second": True}
    with psycopg.connect(clean_market) as conn:
        count = conn.execute(f"SELECT count(*) FROM market.{table}").fetchone()
    assert count is not None and count[0] == len(frame)
