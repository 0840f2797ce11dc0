"""Faults against the real assets: the simulator over loopback, a real PostgreSQL.

Each test injects a fault, runs the real feed assets (``dg.materialize``), checks that the failure is
clear or that the client's retries absorbed it, then clears the fault, runs again and compares every
market table with a clean reference run: row counts and checksums, rows lost / unexpected (row-level
``EXCEPT ALL`` against a copy of the reference) and duplicate keys.

Two thin tickers are given ~51k quotes a session (two 50k pages each) so that page faults apply.
"Mid-session" runs use the simulator's clock: at 11:00 New York only the morning exists, the next
run (clock back to now) resumes from each ticker's watermark.

Tests 4 and 5 (database restart, run worker SIGKILLed) restart the shared server / need a quiet one:
they run only with ``TRADING_DATA_DESTRUCTIVE_TESTS=1``, in a pytest invocation of their own.
A summary line per scenario is printed at the end of the session (``conftest.py``).
"""

import datetime as dt
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import dagster as dg
import psycopg
import pytest

from trading_data.calendar import NEW_YORK
from trading_data.clock import utc_now
from trading_data.db import server as pg_server
from trading_data.sources.simulator.faults import Fault
from trading_data.sources.simulator.market import SimulatedMarket
from trading_data.sources.simulator.server import SimulatorServer
from trading_data_tests.factories import truncate_market
from trading_data_tests.faults import support
from trading_data_tests.faults.support import FEEDS, failure_text, materialize, snapshot

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("faults")]

REFERENCE_SCHEMA = "faults_reference"
MID_SESSION = dt.datetime(2026, 11, 25, 11, 0, tzinfo=NEW_YORK)
QUOTES_PER_MINUTE = 130.0  # ~51k quotes a session: the client's 50k-row pages make two pages per ticker
DESTRUCTIVE = os.environ.get("TRADING_DATA_DESTRUCTIVE_TESTS") == "1"
destructive = pytest.mark.skipif(
    not DESTRUCTIVE,
    reason="restarts or loads the shared PostgreSQL server: set TRADING_DATA_DESTRUCTIVE_TESTS=1 "
    "and run trading_data_tests/faults alone",
)
REPO = Path(__file__).resolve().parents[2]


class Clock:
    """The simulator's now: a fixed instant while ``at`` is set, else the platform's clock (``utc_now``)."""

    def __init__(self) -> None:
        self.at: dt.datetime | None = None

    def __call__(self) -> dt.datetime:
        return self.at or utc_now()


@dataclass
class Sim:
    server: SimulatorServer
    clock: Clock
    tickers: list[str]

    @property
    def url(self) -> str:
        return self.server.base_url

    def inject(self, faults: list[Fault]) -> list[Fault]:
        self.server.faults.replace(faults)
        return faults

    def clear(self) -> None:
        self.server.faults.clear()


@dataclass
class Tally:
    """What one scenario did, for the summary line."""

    name: str
    faults: list[Fault] = field(default_factory=list)
    events: int = 0  # faults outside the simulator: a server restart, a SIGKILL
    error: str = ""
    failed_as_expected: int = 0
    absorbed: int = 0
    recovered: int = 0
    lost: int = 0
    unexpected: int = 0
    duplicated: int = 0

    def line(self) -> str:
        injected = sum(f.hits for f in self.faults) + self.events
        error = f" | error: {self.error}" if self.error else ""
        return (
            f"{self.name}: faults injected={injected}, runs failed as expected={self.failed_as_expected}, "
            f"runs that absorbed the faults={self.absorbed}, runs recovered={self.recovered}, "
            f"rows lost={self.lost}, rows duplicated={self.duplicated}, unexpected rows={self.unexpected}{error}"
        )

    def failed(self, text: str, pattern: str) -> None:
        """Count a run that failed as expected; keep the matching line of its error for the summary."""
        found = re.search(pattern, text)
        assert found, text
        line = text[text.rfind("\n", 0, found.start()) + 1 :].split("\n", 1)[0]
        self.error = line if len(line) <= 220 else line[:219] + "…"
        self.failed_as_expected += 1


@pytest.fixture(scope="module")
def sim() -> Iterator[Sim]:
    clock = Clock()
    market = SimulatedMarket(now=clock)
    profiles = sorted((p for p in market.universe() if p.avg_volume >= 300_000), key=lambda p: p.avg_volume)
    tickers = sorted(p.ticker for p in profiles[:2])
    market.quotes_per_minute.update({t: QUOTES_PER_MINUTE for t in tickers})
    with SimulatorServer(market) as server:
        yield Sim(server, clock, tickers)


def _seed(url: str, sim: Sim) -> None:
    """The session's selected tickers (the feeds read them)."""
    result = materialize(url, sim.url, sim.tickers, ["selected_tickers"])
    assert result.success, failure_text(result)


@pytest.fixture(scope="module")
def reference(database_url: str, sim: Sim) -> Iterator[dict[str, tuple[int, str]]]:
    """A clean run of the feeds, snapshotted and copied to ``faults_reference`` for row diffs."""
    truncate_market(database_url)
    _seed(database_url, sim)
    result = materialize(database_url, sim.url, sim.tickers)
    assert result.success, failure_text(result)
    snap = snapshot(database_url)
    assert snap["quotes"][0] > 2 * 50_000, "every ticker should need two quote pages"
    assert snap["trades"][0] > 0
    support.save_reference(database_url, REFERENCE_SCHEMA)
    yield snap
    support.drop_reference(database_url, REFERENCE_SCHEMA)


@pytest.fixture
def market(reference: dict, clean_market: str, sim: Sim) -> Iterator[str]:
    """The worker's database, empty but for the session's selected tickers; no faults."""
    sim.clear()
    sim.clock.at = None
    _seed(clean_market, sim)
    yield clean_market
    sim.clear()
    sim.clock.at = None


@pytest.fixture
def tally(request: pytest.FixtureRequest, record_property: Callable[[str, object], None]) -> Iterator[Tally]:
    found = Tally(request.node.name.removeprefix("test_"))
    yield found
    record_property("fault_summary", found.line())


def _morning(url: str, sim: Sim) -> dict[str, tuple[int, str]]:
    """Store the session up to 11:00 New York (the partition's state before the fault)."""
    sim.clock.at = MID_SESSION
    try:
        result = materialize(url, sim.url, sim.tickers)
    finally:
        sim.clock.at = None
    assert result.success, failure_text(result)
    before = snapshot(url)
    assert 0 < before["quotes"][0] < support_reference_rows(url, "quotes")
    return before


def support_reference_rows(url: str, table: str) -> int:
    with psycopg.connect(url) as conn:
        return int(conn.execute(f"SELECT count(*) FROM {REFERENCE_SCHEMA}.{table}").fetchone()[0])


def _assert_like_reference(url: str, reference: dict, tally: Tally) -> None:
    lost, unexpected = support.row_diff(url, REFERENCE_SCHEMA)
    duplicated = support.duplicate_keys(url)
    tally.lost += lost
    tally.unexpected += unexpected
    tally.duplicated += duplicated
    assert (lost, unexpected, duplicated) == (0, 0, 0)
    assert snapshot(url) == reference


def _recover(url: str, sim: Sim, reference: dict, tally: Tally) -> dg.ExecuteInProcessResult:
    """Clear the faults, run the feeds again, compare with the reference."""
    sim.clear()
    result = materialize(url, sim.url, sim.tickers)
    assert result.success, failure_text(result)
    _assert_like_reference(url, reference, tally)
    tally.recovered += 1
    return result


def _metadata(result: dg.ExecuteInProcessResult, name: str) -> int:
    return sum(
        int(m.metadata[name].value)
        for feed in FEEDS
        for m in result.asset_materializations_for_node(feed)
        if name in m.metadata
    )


# -- 1. vendor outage ---------------------------------------------------------------------------------


def test_vendor_outage_mid_session(market: str, sim: Sim, reference: dict, tally: Tally) -> None:
    before = _morning(market, sim)
    tally.faults = sim.inject([Fault("http_5xx_html", path_prefix="/v3/quotes", count=None)])
    result = materialize(market, sim.url, sim.tickers)
    assert not result.success
    text = failure_text(result)
    assert "[quotes]" in text and "[trades]" not in text
    assert "quotes: every ticker failed (2)" in text
    tally.failed(
        text,
        r"VendorUnavailable: polygon GET /v3/quotes/\w+\S*: HTTP 502 Bad Gateway \(text/html body\) "
        r"\(gave up after 3 attempts\)",
    )
    after = snapshot(market)
    assert after["quotes"] == before["quotes"], "the failed run changed the quotes partition"
    assert after["trades"] == reference["trades"], "trades (no fault) should have caught up"
    _recover(market, sim, reference, tally)


# -- 2. a storm of 429s -------------------------------------------------------------------------------


def test_429_storm_is_absorbed_by_retries(market: str, sim: Sim, reference: dict, tally: Tally) -> None:
    storm = [
        Fault("http_429", path_prefix="/v3/", count=3, retry_after=1),
        Fault("http_429", path_prefix="/v3/", count=9),
    ]
    tally.faults = sim.inject(storm)
    result = materialize(market, sim.url, sim.tickers, retry_attempts=14)
    assert result.success, failure_text(result)
    tally.absorbed += 1
    assert [f.hits for f in storm] == [3, 9]
    assert _metadata(result, "polygon/http_429") == 12
    assert _metadata(result, "polygon/retries") == 12
    assert _metadata(result, "tickers_failed") == 0
    _assert_like_reference(market, reference, tally)
    again = _recover(market, sim, reference, tally)
    assert _metadata(again, "polygon/http_429") == 0


# -- 3. malformed pages -------------------------------------------------------------------------------


def test_truncated_json_fails_clearly(market: str, sim: Sim, reference: dict, tally: Tally) -> None:
    tally.faults = sim.inject([Fault("truncated_json", path_prefix="/v3/trades", count=None)])
    result = materialize(market, sim.url, sim.tickers)
    assert not result.success
    text = failure_text(result)
    assert "[trades]" in text and "[quotes]" not in text
    tally.failed(
        text,
        r"MalformedResponse: polygon GET /v3/trades/\w+\S*: malformed response: body is not valid "
        r"JSON .*\(gave up after 3 attempts\)",
    )
    after = snapshot(market)
    assert after["trades"][0] == 0, "nothing of the failed feed may be stored"
    assert after["quotes"] == reference["quotes"]
    _recover(market, sim, reference, tally)


def test_repeated_last_row_is_not_stored_twice(market: str, sim: Sim, reference: dict, tally: Tally) -> None:
    repeat = tally.faults = sim.inject([Fault("repeat_last_row", path_prefix="/v3/quotes", count=None)])
    result = materialize(market, sim.url, sim.tickers)
    assert result.success, failure_text(result)
    tally.absorbed += 1
    assert repeat[0].hits == len(sim.tickers), "every ticker's second page should repeat a row"
    _assert_like_reference(market, reference, tally)
    _recover(market, sim, reference, tally)


def test_cycling_next_url_fails_as_a_paging_loop(
    market: str, sim: Sim, reference: dict, tally: Tally
) -> None:
    cycle = tally.faults = sim.inject([Fault("next_url_cycle", path_prefix="/v3/quotes", count=None)])
    result = materialize(market, sim.url, sim.tickers)
    assert not result.success
    assert cycle[0].hits >= len(sim.tickers)
    text = failure_text(result)
    assert "quotes: every ticker failed (2)" in text
    tally.failed(
        text,
        r"PagingLoopError: polygon GET /v3/quotes/\w+: next_url repeated after \d+ pages .*"
        r"the vendor's cursor is cycling",
    )
    after = snapshot(market)
    assert after["quotes"][0] == 0, "the pages read before the loop was seen must be rolled back"
    assert after["trades"] == reference["trades"]
    _recover(market, sim, reference, tally)


# -- 4 and 5: the database restarted / the run worker killed mid-write ----------------------------------


def _with_application(url: str, name: str) -> str:
    parts = urlsplit(url)
    query = f"{parts.query}&application_name={name}" if parts.query else f"application_name={name}"
    return urlunsplit(parts._replace(query=query))


def _slow_second_ticker(sim: Sim, seconds: float) -> list[Fault]:
    """The first ticker's quote page comes at once (and is COPYed), the second's only after ``seconds``:
    the write transaction stays open in between."""
    first, second = sim.tickers
    return sim.inject(
        [
            Fault("latency", path_prefix=f"/v3/quotes/{first}", count=None, seconds=0.2),
            Fault("latency", path_prefix=f"/v3/quotes/{second}", count=None, seconds=seconds),
        ]
    )


def _wait_for_copy(
    url: str, application: str, timeout: float, alive: Callable[[], bool] = lambda: True
) -> int | None:
    """The pid of the backend of ``application`` inside a transaction that has run a COPY, once it exists."""
    deadline = time.monotonic() + timeout
    with psycopg.connect(url, autocommit=True) as conn:
        while time.monotonic() < deadline and alive():
            row = conn.execute(
                "SELECT pid FROM pg_stat_activity WHERE application_name = %s "
                "AND xact_start IS NOT NULL AND query ILIKE 'COPY%%'",
                (application,),
            ).fetchone()
            if row:
                return int(row[0])
            time.sleep(0.05)
    return None


def _backends(url: str, application: str) -> int:
    with psycopg.connect(url, autocommit=True) as conn:
        return int(
            conn.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s", (application,)
            ).fetchone()[0]
        )


def _restart_postgres() -> float:
    """``pg_ctl restart -m fast`` on the embedded server's data directory; returns the seconds it took."""
    status = pg_server.status()
    started = time.monotonic()
    subprocess.run(
        [
            pg_server._bin("pg_ctl"),
            "-D",
            str(status.data_dir),
            "-w",
            "-t",
            "60",
            "-m",
            "fast",
            "-l",
            str(status.data_dir / "server.log"),
            "restart",
        ],
        user=pg_server._run_as(),
        check=True,
        capture_output=True,
        text=True,
        timeout=90,
    )
    assert pg_server.status().running
    return time.monotonic() - started


@destructive
def test_database_restarted_during_write(market: str, sim: Sim, reference: dict, tally: Tally) -> None:
    if os.environ.get("TRADING_DATA_DATABASE_URL"):
        pytest.skip("TRADING_DATA_DATABASE_URL points at a server this test must not restart")
    before = _morning(market, sim)
    _slow_second_ticker(sim, seconds=8)  # a slowdown, not a fault
    application = "faults_restart"
    seen: dict[str, object] = {}

    def restart_when_writing() -> None:
        pid = _wait_for_copy(market, application, timeout=60)
        seen["pid"] = pid
        if pid is not None:
            seen["restart_seconds"] = _restart_postgres()

    restarter = threading.Thread(target=restart_when_writing, daemon=True)
    restarter.start()
    result = materialize(_with_application(market, application), sim.url, sim.tickers, ["quotes"])
    restarter.join(timeout=120)
    assert seen.get("pid") is not None, "the write never started"
    assert "restart_seconds" in seen
    tally.events += 1
    assert not result.success, "the run committed although the server restarted mid-write"
    text = failure_text(result)
    assert "[quotes]" in text
    tally.failed(
        text,
        r"terminating connection due to administrator command|server closed the connection "
        r"unexpectedly|connection to server .* failed|no connection to the server",
    )
    assert _backends(market, application) == 0
    assert snapshot(market)["quotes"] == before["quotes"], "half a write survived the restart"
    _recover(market, sim, reference, tally)


@destructive
def test_run_worker_killed_mid_write(
    market: str, sim: Sim, reference: dict, tally: Tally, tmp_path: Path
) -> None:
    before = _morning(market, sim)
    _slow_second_ticker(sim, seconds=8)  # a slowdown, not a fault
    application = "faults_worker"
    config = {
        "url": _with_application(market, application),
        "simulator_url": sim.url,
        "symbols": sim.tickers,
        "selection": ["quotes"],
    }
    log = tmp_path / "worker.log"
    with log.open("w") as out:
        worker = subprocess.Popen(
            [sys.executable, "-m", "trading_data_tests.faults.support", json.dumps(config)],
            cwd=REPO,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        pid = _wait_for_copy(market, application, timeout=120, alive=lambda: worker.poll() is None)
        assert pid is not None, f"the worker never started writing:\n{log.read_text()[-3000:]}"
        os.kill(worker.pid, signal.SIGKILL)
        tally.events += 1
        assert worker.wait(timeout=30) == -signal.SIGKILL
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait(timeout=30)
    tally.failed_as_expected += 1
    tally.error = (
        f"worker pid {worker.pid} killed by SIGKILL while its COPY transaction (backend {pid}) was open"
    )
    lingering = _backends(market, application)
    deadline = time.monotonic() + 15
    while lingering and time.monotonic() < deadline:
        time.sleep(0.1)
        lingering = _backends(market, application)
    assert lingering == 0, "the killed worker's transaction is still open on the server"
    assert snapshot(market)["quotes"] == before["quotes"], "the killed worker committed part of its write"
    _recover(market, sim, reference, tally)
