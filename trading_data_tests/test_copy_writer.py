"""The writer thread's streamed COPY against a real server: many chunks through one COPY, in order; an
abandoned write that ends its COPY and keeps nothing; a failing COPY that reaches the caller instead of
hanging it."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import adbc_driver_postgresql.dbapi as adbc
import psycopg
import pyarrow as pa
import pytest

from trading_data.db.copy_writer import BATCH_ROWS, FEED_BATCHES, BatchFeed, CopyThread, StreamedCopies

TABLE = "copy_writer_probe"
SCHEMA = pa.schema([("id", pa.int64()), ("label", pa.string())])


def rows(start: int, count: int) -> pa.Table:
    ids = list(range(start, start + count))
    return pa.table({"id": ids, "label": [f"row {i}" for i in ids]}, schema=SCHEMA)


@pytest.fixture
def probe_table(database_url: str) -> Iterator[str]:
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(f"DROP TABLE IF EXISTS public.{TABLE}")
        conn.execute(f"CREATE TABLE public.{TABLE} (id bigint PRIMARY KEY, label text NOT NULL)")
    yield database_url
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(f"DROP TABLE IF EXISTS public.{TABLE}")


def stored_ids(url: str) -> list[int]:
    with psycopg.connect(url) as conn:
        return [r[0] for r in conn.execute(f"SELECT id FROM public.{TABLE} ORDER BY id").fetchall()]


def test_chunks_go_through_one_copy_whole_and_in_order(probe_table: str) -> None:
    chunks = [rows(0, BATCH_ROWS + 5), rows(BATCH_ROWS + 5, 7), rows(BATCH_ROWS + 12, 2 * BATCH_ROWS)]
    with adbc.connect(probe_table) as conn, conn.cursor() as cur:
        writer = CopyThread()
        feed = BatchFeed(writer, SCHEMA)
        writer.submit(lambda: cur.adbc_ingest(TABLE, feed.reader(), mode="append", db_schema_name="public"))
        for chunk in chunks:
            feed.put(chunk)
        feed.finish()
        writer.close()
        conn.commit()
    assert stored_ids(probe_table) == list(range(3 * BATCH_ROWS + 12))


def test_an_abandoned_write_ends_its_copy_and_keeps_nothing(probe_table: str) -> None:
    with adbc.connect(probe_table) as conn, conn.cursor() as cur:
        writer = CopyThread()
        feed = BatchFeed(writer, SCHEMA)
        writer.submit(lambda: cur.adbc_ingest(TABLE, feed.reader(), mode="append", db_schema_name="public"))
        # One batch more than the feed holds: the last put returns once the COPY has taken a batch.
        for i in range(FEED_BATCHES + 1):
            feed.put(rows(i, 1))
        # The caller fails before finishing: the COPY waits for a batch that never comes, until abandoned.
        abandoning = threading.Thread(target=writer.abandon, daemon=True)
        abandoning.start()
        abandoning.join(timeout=10)
        assert not abandoning.is_alive(), "abandon() still waits for the COPY after 10 s"
        conn.rollback()
    assert stored_ids(probe_table) == []


def test_a_failing_copy_reaches_the_caller(probe_table: str) -> None:
    with adbc.connect(probe_table) as conn, conn.cursor() as cur:
        writer = CopyThread()
        feed = BatchFeed(writer, SCHEMA)
        writer.submit(lambda: cur.adbc_ingest(TABLE, feed.reader(), mode="append", db_schema_name="public"))
        with pytest.raises(Exception, match="duplicate key"):
            # The same ids twice: the server refuses the COPY; the caller learns it while putting (the
            # feed is full, nobody reads it) or at the latest when it closes, never by waiting forever.
            for _ in range(20):
                feed.put(rows(0, BATCH_ROWS))
            feed.finish()
            writer.close()
        writer.abandon()
        conn.rollback()
    assert stored_ids(probe_table) == []


def test_a_new_destination_or_a_statement_ends_the_copy_in_progress(probe_table: str) -> None:
    with adbc.connect(probe_table) as conn, conn.cursor() as cur:
        copies = StreamedCopies()

        def into(name: str, temporary: bool = False):  # type: ignore[no-untyped-def]
            if temporary:
                return lambda r: cur.adbc_ingest(name, r, mode="append", temporary=True)
            return lambda r: cur.adbc_ingest(name, r, mode="append", db_schema_name="public")

        copies.put("table", into(TABLE), rows(0, 3))
        copies.put("table", into(TABLE), rows(3, 3))
        # The statement runs after the COPY in progress, then the staging COPY, then the table's again.
        copies.submit(lambda: cur.execute(f"CREATE TEMP TABLE staged (LIKE public.{TABLE}) ON COMMIT DROP"))
        copies.put("staging", into("staged", temporary=True), rows(100, 2))
        copies.put("table", into(TABLE), rows(6, 1))
        copies.close()
        cur.execute("SELECT count(*) FROM staged")
        assert cur.fetchone() == (2,)
        conn.commit()
    assert stored_ids(probe_table) == list(range(7))
