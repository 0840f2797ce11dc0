"""trading-data export: the Parquet files, opened as one hive dataset (pyarrow, DuckDB), equal the
tables; CSV holds the same rows; a failed export leaves no file behind."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import duckdb
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest

from trading_data import cli, read
from trading_data.db.aggregate_sql import AGGREGATE_COLUMNS
from trading_data.db.arrow_frames import frame_from_arrow, frame_from_typed_arrow
from trading_data.db.reads import READABLE
from trading_data.read.export import export, session_file
from trading_data.schemas import TABLES
from trading_data_tests.read.conftest import Stored

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("read")]
FIRST, LAST = dt.date(2026, 10, 30), dt.date(2026, 11, 2)


def dataset_frame(out: Path, table: str) -> pd.DataFrame:
    """One table of the export as a frame typed like its model (session tables get their column back
    from the folder name)."""
    spec = TABLES[table]
    folders = ds.partitioning(pa.schema([("session", pa.date32())]), flavor="hive")
    data = ds.dataset(out / f"table={table}", format="parquet", partitioning=folders).to_table()
    data = data.select(spec.columns)  # the ts tables' session (the folder) is not a column of theirs
    order = [spec.time_column, *(c for c in spec.primary_key if c != spec.time_column)]
    return frame_from_arrow(spec, data).sort_values(order, ignore_index=True)


def test_the_parquet_round_trip_equals_every_table(stored: Stored, tmp_path: Path) -> None:
    files = export(stored.url, "market", tmp_path, list(TABLES), FIRST, LAST, chunk_rows=1000, progress=False)
    assert {f.table for f in files} == set(TABLES) - {"daily_report"}  # not materialized: no file
    for table in TABLES:
        if table == "daily_report":
            assert not (tmp_path / "table=daily_report").exists()
            continue
        expected = read.read_table(table, sessions=(FIRST, LAST), database_url=stored.url)
        pd.testing.assert_frame_equal(dataset_frame(tmp_path, table), expected, check_like=False)
    quotes = stored.rows(
        "SELECT (ts AT TIME ZONE 'America/New_York')::date, count(*), sum(bid_price) FROM market.quotes "
        "WHERE ts < '2026-11-03' GROUP BY 1 ORDER BY 1"
    )
    pattern = str(tmp_path / "table=*" / "session=*" / "*.parquet")
    got = duckdb.sql(
        f"SELECT session, count(*), sum(bid_price) FROM read_parquet('{pattern}', hive_partitioning = true, "
        "union_by_name = true) WHERE \"table\" = 'quotes' GROUP BY 1 ORDER BY 1"
    ).fetchall()
    assert [(d, n) for d, n, _ in got] == [(d, n) for d, n, _ in quotes]
    assert [s for *_, s in got] == pytest.approx([s for *_, s in quotes])


@pytest.mark.parametrize("name", ["bars_5m", "bars_1h"])
def test_the_bar_aggregates_export_as_read_returns_them(stored: Stored, tmp_path: Path, name: str) -> None:
    files = export(stored.url, "market", tmp_path, [name], FIRST, LAST, progress=False)
    assert files and {f.table for f in files} == {name}
    folders = ds.partitioning(pa.schema([("session", pa.date32())]), flavor="hive")
    data = ds.dataset(tmp_path / f"table={name}", format="parquet", partitioning=folders).to_table()
    # each bucket lies in the New York day its folder names (the 09:00 hour bar holds 09:30-10:00)
    ny_days = pc.cast(
        pc.local_timestamp(data.column("ts").cast(pa.timestamp("us", "America/New_York"))), pa.date32()
    )
    assert pc.all(pc.equal(ny_days, data.column("session"))).as_py()
    spec = READABLE[name]
    got = frame_from_typed_arrow(data.select(list(spec.columns)), spec.nullable_ints)
    expected = read.read_table(name, sessions=(FIRST, LAST), database_url=stored.url)
    order = ["ts", "ticker"]
    pd.testing.assert_frame_equal(
        got.sort_values(order, ignore_index=True), expected.sort_values(order, ignore_index=True)
    )
    assert len(got) == sum(f.rows for f in files) > 0


def test_csv_export_holds_the_same_rows(stored: Stored, tmp_path: Path) -> None:
    [done] = export(
        stored.url,
        "market",
        tmp_path,
        ["trades"],
        LAST,
        LAST,
        fmt="csv",
        tickers=stored.tickers[:1],
        progress=False,
    )
    assert done.path == session_file(tmp_path, "trades", LAST, "csv") and done.path.is_file()
    table = pa_csv.read_csv(done.path)
    expected = read.trades(stored.tickers[0], sessions=LAST.isoformat(), database_url=stored.url)
    assert table.num_rows == done.rows == len(expected) > 0
    assert table.column("price").to_pylist() == expected["price"].tolist()
    assert set(table.column("ticker").to_pylist()) == {stored.tickers[0]}


def test_export_command(
    stored: Stored, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("TRADING_DATA_DATABASE_URL", stored.url)
    args = [
        "export",
        "--out",
        str(tmp_path),
        "--tables",
        "prices",
        "--from",
        "2026-11-25",
        "--to",
        "2026-11-27",
    ]
    assert cli.main([*args, "--no-progress"]) == 0
    [(rows,)] = stored.rows("SELECT count(*) FROM market.prices WHERE ts >= '2026-11-25 05:00+00'")
    assert capsys.readouterr().out.strip() == f"wrote 2 file(s), {rows:,} rows, to {tmp_path}"
    assert sorted(p.parent.name for p in tmp_path.rglob("*.parquet")) == [
        "session=2026-11-25",
        "session=2026-11-27",
    ]
    assert list(tmp_path.rglob("*.tmp")) == []
    # A symbol typed in lower case exports the stored (upper-case) ticker's rows.
    ticker = stored.tickers[0]
    lowered = tmp_path / "lowered"
    assert cli.main([*args[:2], str(lowered), *args[3:], "--tickers", ticker.lower(), "--no-progress"]) == 0
    [(ticker_rows,)] = stored.rows(
        "SELECT count(*) FROM market.prices WHERE ts >= '2026-11-25 05:00+00' AND ticker = %s", (ticker,)
    )
    assert (
        ticker_rows
        and capsys.readouterr().out.strip() == f"wrote 2 file(s), {ticker_rows:,} rows, to {lowered}"
    )
    assert cli.main(["export", "--out", str(tmp_path), "--tables", "prices"]) == 2
    assert "say which sessions to export" in capsys.readouterr().err


def test_read_command_prints_a_small_table(
    stored: Stored, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("TRADING_DATA_DATABASE_URL", stored.url)
    ticker = stored.tickers[0]
    args = ["read", "prices", "--tickers", ticker, "--session", "2026-11-02", "--tz", "America/New_York"]
    assert cli.main([*args, "--limit", "3"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == TABLES["prices"].columns and len(lines) == 4
    # The day bar (New York midnight) comes first, then the minute bars, in New York time.
    assert lines[1].split()[:4] == ["2026-11-02", "00:00:00-05:00", ticker, "day"]
    assert lines[2].split()[3] == "minute"
    # Typed in lower case, with a space after the comma: the same rows (every stored symbol is upper case).
    lowered = [
        "read",
        "prices",
        "--tickers",
        f"{ticker.lower()}, {ticker.lower()}",
        *args[4:],
        "--limit",
        "3",
    ]
    assert cli.main(lowered) == 0
    assert capsys.readouterr().out.splitlines() == lines
    assert cli.main(["read", "prices", "--session", "2026-11-26"]) == 2
    assert "2026-11-26 is not an NYSE session (holiday: Thanksgiving)" in capsys.readouterr().err
    # The hourly aggregate: in New York time the session's first bar is the 09:00 hour (pre-market included).
    args = ["read", "bars_1h", "--tickers", ticker, "--session", "2026-11-02", "--tz", "America/New_York"]
    assert cli.main([*args, "--limit", "100"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == list(AGGREGATE_COLUMNS)
    hours = [line.split()[1] for line in lines[1:]]
    assert "09:00:00-05:00" in hours and all(h.endswith(":00:00-05:00") for h in hours)
    assert cli.main(["read", "bars_1h", "--timespan", "day", "--session", "2026-11-02"]) == 2
    assert "--timespan applies to prices only" in capsys.readouterr().err


def test_an_export_that_fails_midway_keeps_the_previous_file_whole(
    stored: Stored, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    [before] = export(stored.url, "market", tmp_path, ["quotes"], LAST, LAST, progress=False)
    content = before.path.read_bytes()
    writes = 0
    real_write = pq.ParquetWriter.write_table

    def disk_full_on_the_third_chunk(self, table, *args, **kwargs):
        nonlocal writes
        writes += 1
        if writes == 3:
            raise OSError(28, "No space left on device")
        return real_write(self, table, *args, **kwargs)

    monkeypatch.setattr(pq.ParquetWriter, "write_table", disk_full_on_the_third_chunk)
    with pytest.raises(OSError, match="No space left"):
        export(stored.url, "market", tmp_path, ["quotes"], LAST, LAST, chunk_rows=500, progress=False)
    assert writes == 3
    assert before.path.read_bytes() == content  # the previous export's file, whole
    assert list(tmp_path.rglob("*.tmp")) == []
