"""The shared circuit breaker against the real database, with an injected clock."""

import datetime as dt
import threading

import pytest

from trading_data.calendar import NEW_YORK
from trading_data.sources.breaker import CircuitBreaker, CircuitOpenError
from trading_data.sources.errors import VendorNotFound, VendorUnavailable

T0 = dt.datetime(2026, 11, 24, 10, 31, tzinfo=NEW_YORK)


class Clock:
    def __init__(self, now: dt.datetime = T0):
        self.now = now

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += dt.timedelta(**delta)


@pytest.fixture
def clock() -> Clock:
    return Clock()


def breaker(url: str, clock: Clock, **kw: object) -> CircuitBreaker:
    return CircuitBreaker(
        url, vendor="polygon", failure_threshold=5, reset_timeout=dt.timedelta(minutes=5), clock=clock, **kw
    )  # type: ignore[arg-type]


def test_opens_at_the_threshold_and_fails_fast_with_a_message(clean_market: str, clock: Clock) -> None:
    b = breaker(clean_market, clock)
    assert b.state().state == "closed"
    for i in range(4):
        assert b.before_call() == "closed"
        assert b.record_failure(f"HTTP 503 #{i}").state == "closed"
    assert b.state().consecutive_failures == 4
    state = b.record_failure("VendorUnavailable: polygon GET /v3/quotes/AAPL: 503 after 5 attempts")
    assert state.state == "open" and state.consecutive_failures == 5
    clock.advance(minutes=1)
    with pytest.raises(CircuitOpenError) as err:
        b.before_call()
    assert str(err.value) == (
        "polygon circuit open since 10:31 ET, next probe 10:36 ET (5 consecutive failures; "
        "last: VendorUnavailable: polygon GET /v3/quotes/AAPL: 503 after 5 attempts)"
    )
    assert err.value.vendor == "polygon"


def test_success_resets_the_count(clean_market: str, clock: Clock) -> None:
    b = breaker(clean_market, clock)
    for _ in range(4):
        b.record_failure("boom")
    b.record_success()
    assert b.state().consecutive_failures == 0
    for _ in range(4):
        b.record_failure("boom")
    assert b.state().state == "closed"


def test_error_text_is_scrubbed_and_bounded(clean_market: str, clock: Clock) -> None:
    b = breaker(
        clean_market,
        clock,
    )
    state = b.record_failure(
        "GET https://api.polygon.io/v3/quotes?apiKey=SECRET123&limit=5 failed " + "x" * 900
    )
    assert "SECRET123" not in (state.last_error or "") and "apiKey=***" in (state.last_error or "")
    assert len(state.last_error or "") <= 500


def _open(b: CircuitBreaker) -> None:
    for _ in range(b.failure_threshold):
        b.record_failure("down")
    assert b.state().state == "open"


def test_exactly_one_half_open_probe_under_concurrency(clean_market: str, clock: Clock) -> None:
    # Two instances and two threads: as two processes would.
    breakers = [breaker(clean_market, clock), breaker(clean_market, clock)]
    _open(breakers[0])
    clock.advance(minutes=5)
    barrier = threading.Barrier(2)
    outcomes: list[str] = []
    lock = threading.Lock()

    def call(b: CircuitBreaker) -> None:
        barrier.wait()
        result: str
        try:
            result = b.before_call()
        except CircuitOpenError as exc:
            result = f"refused: {exc}"
        with lock:
            outcomes.append(result)

    for _ in range(5):  # repeat to give the race a chance to show
        for b in breakers:
            b.reset()
        _open(breakers[0])
        clock.advance(minutes=5)
        outcomes.clear()
        threads = [threading.Thread(target=call, args=(b,)) for b in breakers]
        for t in threads:
            t.start()
        for t in threads:
            t.join(10)
        assert sorted(o.split(":")[0] for o in outcomes) == ["half_open", "refused"], outcomes
        assert breakers[1].state().state == "half_open"


def test_probe_success_closes(clean_market: str, clock: Clock) -> None:
    b = breaker(clean_market, clock)
    _open(b)
    clock.advance(minutes=5)
    assert b.before_call() == "half_open"
    with pytest.raises(CircuitOpenError, match="half-open"):
        b.before_call()
    state = b.record_success()
    assert (state.state, state.consecutive_failures, state.opened_at) == ("closed", 0, None)
    assert b.before_call() == "closed"


def test_probe_failure_reopens_with_a_new_probe_time(clean_market: str, clock: Clock) -> None:
    b = breaker(clean_market, clock)
    _open(b)
    clock.advance(minutes=6)
    assert b.before_call() == "half_open"
    clock.advance(seconds=30)
    state = b.record_failure("still down")
    assert state.state == "open"
    assert state.next_probe_at == clock.now + dt.timedelta(minutes=5)
    clock.advance(minutes=4)
    with pytest.raises(CircuitOpenError, match="still down"):
        b.before_call()
    clock.advance(minutes=1)
    assert b.before_call() == "half_open"


def test_a_probe_that_never_reports_is_replaced_after_the_lease(clean_market: str, clock: Clock) -> None:
    b = breaker(clean_market, clock)
    _open(b)
    clock.advance(minutes=5)
    assert b.before_call() == "half_open"
    clock.advance(minutes=5)
    assert b.before_call() == "half_open"


def test_state_is_shared_between_instances(clean_market: str, clock: Clock) -> None:
    one, two = breaker(clean_market, clock), breaker(clean_market, clock)
    for _ in range(3):
        one.record_failure("a")
    for _ in range(2):
        two.record_failure("b")
    with pytest.raises(CircuitOpenError):
        one.before_call()
    assert two.state().state == "open" and two.state().last_error == "b"
    other_vendor = CircuitBreaker(clean_market, vendor="unusual_whales", clock=clock)
    assert other_vendor.before_call() == "closed"


def test_guard_counts_only_vendor_outages(clean_market: str, clock: Clock) -> None:
    b = breaker(
        clean_market,
        clock,
    )
    with pytest.raises(VendorNotFound), b.guard():
        raise VendorNotFound("404", vendor="polygon")
    assert b.state().consecutive_failures == 0
    for _ in range(5):
        with pytest.raises(VendorUnavailable), b.guard():
            raise VendorUnavailable("503", vendor="polygon")
    with pytest.raises(CircuitOpenError), b.guard():
        pass
    clock.advance(minutes=5)
    with b.guard() as mode:
        assert mode == "half_open"
    assert b.state().state == "closed"
