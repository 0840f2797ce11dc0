"""VendorHTTP against httpx.MockTransport: paging, retries, errors, rate limiting, stats."""

from __future__ import annotations

import asyncio
import datetime as dt
import email.utils
import gc
import time
from typing import Any

import httpx
import pytest

from trading_data.sources import paging
from trading_data.sources.client import VendorHTTP
from trading_data.sources.errors import (
    MalformedResponse,
    PageLimitExceeded,
    PagingLoopError,
    VendorAuthError,
    VendorNotFound,
    VendorRequestError,
    VendorUnavailable,
)
from trading_data.sources.polygon import PolygonClient
from trading_data.sources.polygon import check_body as polygon_check
from trading_data.sources.rate_limit import RateLimit, reset_rate_limiters, shared_rate_limiter
from trading_data.sources.retry import RetryPolicy, parse_retry_after
from trading_data.sources.unusual_whales import UnusualWhalesClient
from trading_data_tests.sources.fakes import KEY, Recorder, SleepRecorder, scripted

FAST = RetryPolicy(attempts=4, initial_wait=0.01, max_wait=0.05, jitter=0.01, min_wait_after_429=0.02)
FAST_LIMIT = RateLimit(10_000, 1.0)


@pytest.fixture(autouse=True)
def _fresh_limiters():
    reset_rate_limiters()
    yield
    reset_rate_limiters()


def make_http(
    recorder: Recorder, *, sleep: SleepRecorder | None = None, retry: RetryPolicy = FAST, **kwargs: Any
) -> VendorHTTP:
    options: dict[str, Any] = dict(
        vendor="polygon",
        base_url="https://api.polygon.io",
        api_key=KEY,
        env_var="POLYGON_API_KEY",
        rate_limit=FAST_LIMIT,
        retry=retry,
        transport=recorder.transport(),
        body_check=polygon_check,
    )
    if sleep is not None:
        options["sleep"] = sleep
    options.update(kwargs)
    return VendorHTTP(**options)


def ok(body: Any, **headers: str) -> httpx.Response:
    return httpx.Response(200, json=body, headers=headers)


def run(coro: Any) -> Any:
    return asyncio.run(coro)


# -- paging ------------------------------------------------------------------------------------------


def paged_server(pages: dict[str | None, dict[str, Any]]) -> Recorder:
    """Serves ``pages`` keyed by the ``cursor`` query parameter (None = first page)."""
    return Recorder(lambda request: ok(pages[request.url.params.get("cursor")]))


def test_next_url_host_and_port_swapped_and_auth_reattached():
    server = paged_server(
        {
            None: {
                "status": "OK",
                "results": [{"id": 1}],
                "next_url": "https://api.massive.com:443/v3/trades/X?cursor=p2",
            },
            "p2": {
                "status": "OK",
                "results": [{"id": 2}],
                "next_url": "http://api.polygon.io:8080/v3/trades/X?cursor=p3&apiKey=LEAKED",
            },
            "p3": {"status": "DELAYED", "results": [{"id": 3}]},
        }
    )

    async def go() -> list[dict[str, Any]]:
        async with make_http(server) as http:
            return await paging.paginate(
                http, "/v3/trades/X", {"limit": 50000, "order": "asc"}, key=lambda r: r["id"]
            )

    rows = run(go())
    assert [r["id"] for r in rows] == [1, 2, 3]
    assert [str(r.url) for r in server.requests] == [
        "https://api.polygon.io/v3/trades/X?limit=50000&order=asc",
        "https://api.polygon.io/v3/trades/X?cursor=p2",
        "https://api.polygon.io/v3/trades/X?cursor=p3",
    ]
    for request in server.requests:
        assert request.headers["authorization"] == f"Bearer {KEY}"
        assert "apikey" not in str(request.url).lower() and KEY not in str(request.url)


def test_repeated_edge_row_is_dropped():
    server = paged_server(
        {
            None: {
                "status": "OK",
                "results": [{"id": 1}, {"id": 2}],
                "next_url": "https://api.polygon.io/x?cursor=b",
            },
            "b": {"status": "OK", "results": [{"id": 2}, {"id": 3}]},
        }
    )

    async def go() -> list[list[dict[str, Any]]]:
        async with make_http(server) as http:
            return [page async for page in paging.iter_pages(http, "/x", key=lambda r: r["id"])]

    pages = run(go())
    assert [[r["id"] for r in p] for p in pages] == [[1, 2], [3]]


def test_rows_repeated_at_the_edge_of_large_pages_are_dropped():
    """Pages longer than EDGE_ROWS are compared at their edges: the repeated rows go, the rest stay."""
    n = paging.EDGE_ROWS + 500
    first = [{"id": i} for i in range(n)]
    second = [{"id": i} for i in range(n - 3, 2 * n)]  # repeats the last 3 rows of the first page
    server = paged_server(
        {
            None: {"status": "OK", "results": first, "next_url": "https://api.polygon.io/x?cursor=b"},
            "b": {"status": "OK", "results": second},
        }
    )

    async def go() -> list[list[dict[str, Any]]]:
        async with make_http(server) as http:
            return [page async for page in paging.iter_pages(http, "/x", key=lambda r: r["id"])]

    pages = run(go())
    assert [r["id"] for r in pages[0]] == list(range(n))
    assert [r["id"] for r in pages[1]] == list(range(n, 2 * n))


def test_a_page_and_its_response_are_freed_without_the_cyclic_gc():
    """httpx ties a response to its stream in a reference cycle: the client breaks it, so a page's
    body (10 MB for 50,000 quotes) is freed by reference counting before the next page is fetched."""
    pages = {
        None: {"status": "OK", "results": [{"id": 1}], "next_url": "https://api.polygon.io/x?cursor=b"},
        "b": {"status": "OK", "results": [{"id": 2}], "next_url": "https://api.polygon.io/x?cursor=c"},
        "c": {"status": "OK", "results": [{"id": 3}]},
    }
    # The transport keeps no response of its own (Recorder would).
    transport = httpx.MockTransport(lambda request: ok(pages[request.url.params.get("cursor")]))

    def live_responses() -> int:
        return sum(isinstance(o, httpx.Response) for o in gc.get_objects())

    async def go() -> list[int]:
        counts = []
        async with make_http(Recorder(lambda r: ok({})), transport=transport) as http:
            async for _ in paging.iter_pages(http, "/x", key=lambda r: r["id"]):
                counts.append(live_responses())
        return counts

    gc.collect()
    gc.disable()
    try:
        before = live_responses()
        counts = run(go())
    finally:
        gc.enable()
    assert counts == [before] * 3


def test_next_url_cycle_raises_paging_loop_error():
    server = paged_server(
        {
            None: {"status": "OK", "results": [{"id": 1}], "next_url": "https://api.polygon.io/x?cursor=a"},
            "a": {"status": "OK", "results": [{"id": 2}], "next_url": "https://api.massive.com/x?cursor=b"},
            "b": {
                "status": "OK",
                "results": [{"id": 3}],
                "next_url": "https://api.polygon.io:443/x?cursor=a",
            },
        }
    )

    async def go() -> None:
        async with make_http(server) as http:
            await paging.paginate(http, "/x", key=lambda r: r["id"])

    with pytest.raises(PagingLoopError, match=r"next_url repeated after 3 pages .*cursor=a"):
        run(go())
    assert len(server.requests) == 3


def test_max_pages_bound():
    counter = {"n": 0}

    def endless(request: httpx.Request) -> httpx.Response:
        counter["n"] += 1
        return ok(
            {
                "status": "OK",
                "results": [{"id": counter["n"]}],
                "next_url": f"https://api.polygon.io/x?cursor=c{counter['n']}",
            }
        )

    server = Recorder(endless)

    async def go() -> None:
        async with make_http(server) as http:
            await paging.paginate(http, "/x", max_pages=3)

    with pytest.raises(PageLimitExceeded, match="max_pages=3"):
        run(go())
    assert len(server.requests) == 3


def test_no_results_key_is_an_empty_page_not_malformed():
    server = scripted([ok({"status": "OK", "resultsCount": 0, "queryCount": 0, "request_id": "r"})])

    async def go() -> list[dict[str, Any]]:
        async with make_http(server) as http:
            return await paging.paginate(http, "/x")

    assert run(go()) == []


# -- retries -----------------------------------------------------------------------------------------


def test_429_without_retry_after_backs_off_then_succeeds():
    sleep = SleepRecorder()
    server = scripted(
        [
            httpx.Response(
                429, json={"status": "ERROR", "error": "You've exceeded the maximum requests per minute"}
            ),
            ok({"status": "OK", "results": []}),
        ]
    )

    async def go() -> VendorHTTP:
        async with make_http(server, sleep=sleep) as http:
            await http.get_json("/x")
            return http

    http = run(go())
    assert len(sleep.waits) == 1 and sleep.waits[0] >= FAST.min_wait_after_429
    assert http.stats.rate_limited == 1 and http.stats.retries == 1 and http.stats.requests == 2
    assert http.stats.retry_waits == sleep.waits


@pytest.mark.parametrize(("header", "expected"), [("7", 7.0), ("0.5", 0.5)])
def test_429_retry_after_seconds_honoured(header, expected):
    sleep = SleepRecorder()
    server = scripted([httpx.Response(429, headers={"Retry-After": header}), ok({"status": "OK"})])

    async def go() -> None:
        async with make_http(server, sleep=sleep) as http:
            await http.get_json("/x")

    run(go())
    assert sleep.waits == [expected]


def test_429_retry_after_http_date_honoured():
    sleep = SleepRecorder()
    when = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=30)
    server = scripted(
        [
            httpx.Response(429, headers={"Retry-After": email.utils.format_datetime(when, usegmt=True)}),
            ok({"status": "OK"}),
        ]
    )

    async def go() -> None:
        async with make_http(server, sleep=sleep) as http:
            await http.get_json("/x")

    run(go())
    assert 25 <= sleep.waits[0] <= 30


def test_parse_retry_after():
    now = dt.datetime(2025, 1, 1, 12, 0, tzinfo=dt.UTC)
    assert parse_retry_after("120") == 120.0
    assert parse_retry_after("Wed, 01 Jan 2025 12:00:45 GMT", now=now) == 45.0
    assert parse_retry_after("Wed, 01 Jan 2025 11:00:00 GMT", now=now) == 0.0
    assert parse_retry_after(None) is None and parse_retry_after("soon") is None


def test_retry_after_is_capped():
    sleep = SleepRecorder()
    policy = RetryPolicy(
        attempts=2, initial_wait=0.01, max_wait=0.01, jitter=0, min_wait_after_429=0, max_retry_after=5
    )
    server = scripted([httpx.Response(429, headers={"Retry-After": "3600"}), ok({"status": "OK"})])

    async def go() -> None:
        async with make_http(server, sleep=sleep, retry=policy) as http:
            await http.get_json("/x")

    run(go())
    assert sleep.waits == [5]


def test_backoff_is_exponential_with_jitter_and_capped():
    policy = RetryPolicy(initial_wait=1, max_wait=8, jitter=0.5, min_wait_after_429=10)
    waits = [policy.backoff(n, rate_limited=False) for n in range(1, 7)]
    for n, wait in enumerate(waits, start=1):
        base = min(8, 2 ** (n - 1))
        assert base <= wait <= base + 0.5
    assert policy.backoff(1, rate_limited=True) >= 10


@pytest.mark.parametrize(
    "failure",
    [
        httpx.Response(
            502,
            text="<html><body><h1>502 Bad Gateway</h1></body></html>",
            headers={"content-type": "text/html"},
        ),
        httpx.Response(504, text="<html>gateway timeout</html>", headers={"content-type": "text/html"}),
        httpx.Response(503),
        httpx.Response(500, text="Something went wrong", headers={"content-type": "text/plain"}),
        httpx.Response(413),
        httpx.Response(499),
        httpx.ReadTimeout("read timed out"),
        httpx.ConnectTimeout("connect timed out"),
        httpx.ConnectError("connection refused"),
        httpx.RemoteProtocolError("peer closed connection without sending complete message body"),
    ],
    ids=[
        "502-html",
        "504-html",
        "503",
        "500-text",
        "413",
        "499",
        "read-timeout",
        "connect-timeout",
        "connect-error",
        "incomplete-body",
    ],
)
def test_transient_failures_are_retried(failure):
    sleep = SleepRecorder()
    server = scripted([failure, failure, ok({"status": "OK", "results": [{"id": 1}]})])

    async def go() -> tuple[Any, VendorHTTP]:
        async with make_http(server, sleep=sleep) as http:
            return await http.get_json("/x"), http

    body, http = run(go())
    assert body["results"] == [{"id": 1}]
    assert len(sleep.waits) == 2 and http.stats.retries == 2 and len(server.requests) == 3


def test_retries_spent_raise_vendor_unavailable():
    sleep = SleepRecorder()
    html = httpx.Response(502, text="<html>bad gateway</html>", headers={"content-type": "text/html"})
    server = scripted([html] * FAST.attempts)

    async def go() -> None:
        async with make_http(server, sleep=sleep) as http:
            await http.get_json("/v3/trades/AAPL", {"limit": 10})

    with pytest.raises(VendorUnavailable) as info:
        run(go())
    message = str(info.value)
    assert (
        "502" in message and "text/html" in message and f"gave up after {FAST.attempts} attempts" in message
    )
    assert "/v3/trades/AAPL" in message and "<html>" not in message
    assert info.value.status == 502 and len(sleep.waits) == FAST.attempts - 1


@pytest.mark.parametrize(
    ("status", "body", "quoted"),
    [
        (401, {"status": "ERROR", "error": "Unknown API Key"}, "Unknown API Key"),
        (401, {"status": "ERROR", "error": "API Key was not provided"}, "API Key was not provided"),
        (
            403,
            {
                "status": "NOT_AUTHORIZED",
                "message": "You are not entitled to this data. Please upgrade your plan",
            },
            "You are not entitled to this data",
        ),
    ],
)
def test_auth_errors_not_retried_name_the_variable_and_quote_the_vendor(status, body, quoted):
    sleep = SleepRecorder()
    server = scripted([httpx.Response(status, json=body)])

    async def go() -> None:
        async with make_http(server, sleep=sleep) as http:
            await http.get_json("/v3/quotes/AAPL", {"limit": 5})

    with pytest.raises(VendorAuthError) as info:
        run(go())
    message = str(info.value)
    assert "POLYGON_API_KEY" in message and quoted in message and KEY not in message
    assert info.value.status == status and len(server.requests) == 1 and sleep.waits == []


def test_auth_error_scrubs_a_key_echoed_by_the_vendor():
    server = scripted([httpx.Response(401, json={"status": "ERROR", "error": f"Unknown API Key {KEY}"})])

    async def go() -> None:
        async with make_http(server) as http:
            await http.get_json("/x")

    with pytest.raises(VendorAuthError) as info:
        run(go())
    assert KEY not in str(info.value) and "***" in str(info.value)


def test_404_and_422_not_retried():
    server = scripted(
        [
            httpx.Response(404, json={"status": "NOT_FOUND", "message": "Ticker not found"}),
            httpx.Response(
                422,
                json={
                    "msg": "Invalid query input(s): date=2023-02-140",
                    "path": "/api/x",
                    "query": "",
                    "url": "x",
                },
            ),
        ]
    )

    async def go() -> None:
        async with make_http(server) as http:
            with pytest.raises(VendorNotFound, match="Ticker not found"):
                await http.get_json("/v3/reference/tickers/NOPE")
            with pytest.raises(VendorRequestError, match=r"Invalid query input\(s\)"):
                await http.get_json("/api/x")

    run(go())
    assert len(server.requests) == 2


@pytest.mark.parametrize(
    "body",
    [
        b'{"status":"OK","results":[{"t":1',
        b"<html>oops</html>",
        b"",
        b'"just a string"',
        b'{"status":"ERROR","error":"internal"}',
    ],
    ids=["truncated", "html", "empty", "wrong-shape", "status-error"],
)
def test_malformed_body_retried_then_raises(body):
    sleep = SleepRecorder()
    server = scripted(
        [httpx.Response(200, content=body, headers={"content-type": "application/json"})] * FAST.attempts
    )

    async def go() -> VendorHTTP:
        async with make_http(server, sleep=sleep) as http:
            await paging.paginate(http, "/v3/trades/AAPL")
            return http

    with pytest.raises(MalformedResponse, match="malformed response"):
        run(go())
    assert len(server.requests) == FAST.attempts


def test_malformed_body_then_good_body_recovers():
    server = scripted(
        [
            httpx.Response(200, content=b'{"results": [', headers={"content-type": "application/json"}),
            ok({"status": "OK", "results": [{"id": 1}]}),
        ]
    )

    async def go() -> list[dict[str, Any]]:
        async with make_http(server, sleep=SleepRecorder()) as http:
            return await paging.paginate(http, "/x")

    assert run(go()) == [{"id": 1}]


# -- Unusual Whales specifics ------------------------------------------------------------------------


def uw(recorder: Recorder, sleep: SleepRecorder | None = None) -> UnusualWhalesClient:
    return UnusualWhalesClient.create(
        "uw_SECRET_token",
        base_url="https://api.unusualwhales.com",
        rate_limit=FAST_LIMIT,
        retry=FAST,
        transport=recorder.transport(),
        sleep=sleep or SleepRecorder(),
    )


def test_uw_401_body_not_parsed_and_names_the_token_variable():
    server = scripted([httpx.Response(401, json={"error": "INTERNAL DETAIL"})])

    async def go() -> None:
        async with uw(server) as client:
            await client.option_contracts("AAPL")

    with pytest.raises(VendorAuthError) as info:
        run(go())
    assert "UNUSUAL_WHALES_API_TOKEN" in str(info.value) and "INTERNAL DETAIL" not in str(info.value)
    assert "uw_SECRET_token" not in str(info.value)


def test_uw_500_text_plain_retried():
    sleep = SleepRecorder()
    server = scripted(
        [
            httpx.Response(500, text="Something went wrong", headers={"content-type": "text/plain"}),
            ok({"data": []}),
        ]
    )

    async def go() -> Any:
        async with uw(server, sleep) as client:
            return await client.option_contracts("AAPL")

    assert len(run(go())) == 0 and len(sleep.waits) == 1


def test_uw_usage_headers_into_stats():
    headers = {
        "x-uw-daily-req-count": "42",
        "x-uw-token-req-limit": "15000",
        "x-uw-minute-req-counter": "3",
        "x-uw-req-per-minute-remaining": "117",
        "x-uw-req-per-minute-reset": "41000",
    }
    server = scripted([ok({"data": []}, **headers)])

    async def go() -> UnusualWhalesClient:
        async with uw(server) as client:
            await client.option_contracts("AAPL")
            return client

    client = run(go())
    assert client.stats.usage["x-uw-daily-req-count"] == "42"
    assert client.stats.usage["x-uw-req-per-minute-remaining"] == "117"
    metadata = client.stats.as_metadata()
    assert metadata["unusual_whales/x-uw-token-req-limit"] == "15000"
    assert server.requests[0].headers["authorization"] == "Bearer uw_SECRET_token"


# -- rate limiting -----------------------------------------------------------------------------------


def test_limiter_shared_per_vendor_and_key():
    a = shared_rate_limiter("polygon", "key-a", RateLimit(5, 60))
    assert shared_rate_limiter("polygon", "key-a", RateLimit(5, 60)) is a
    assert shared_rate_limiter("polygon", "key-b", RateLimit(5, 60)) is not a
    assert shared_rate_limiter("unusual_whales", "key-a", RateLimit(5, 60)) is not a


def test_rate_limiter_spreads_concurrent_requests_across_clients():
    server = Recorder(lambda request: ok({"status": "OK", "results": []}))
    limit = RateLimit(10, 1.0)

    async def go() -> tuple[VendorHTTP, VendorHTTP]:
        # two clients, same key: one limiter for both
        one = make_http(server, rate_limit=limit)
        two = make_http(server, rate_limit=limit)
        async with one, two:
            await asyncio.gather(*(c.get_json("/x") for c in [one, two] * 10))
        return one, two

    one, two = run(go())
    assert one.limiter is two.limiter
    assert len(server.requests) == 20 and len(one.limiter.grants) == 20
    assert one.limiter.max_in_window(1.0) <= 10
    assert one.stats.rate_limit_wait_seconds + two.stats.rate_limit_wait_seconds > 0


def test_a_permit_counts_from_when_its_request_is_done_not_from_its_grant():
    """Bug: a permit's window started at its grant, but the vendor counts a request when it arrives:
    a request slow on its way let the next window's permits reach the vendor inside its window."""
    limiter = shared_rate_limiter("polygon", "key-settle", RateLimit(5, 0.2))

    async def go() -> float:
        permits = [await limiter.acquire() for _ in range(5)]
        await asyncio.sleep(0.3)  # a window after the grants, the five requests still in flight
        assert limiter._limiter.try_acquire("probe", blocking=False) is False
        for permit in permits:
            limiter.settle(permit)
        settled = time.monotonic()
        await limiter.acquire()
        return settled

    settled = run(go())
    grants = list(limiter.grants)
    assert len(grants) == 6
    assert grants[5] - settled >= 0.2 * 1.01 - 0.001  # a padded window after the requests were done
    assert limiter.max_in_window() == 5


# -- stats -------------------------------------------------------------------------------------------


def test_stats_percentiles_and_metadata_without_secrets():
    server = Recorder(lambda request: ok({"status": "OK", "results": [{"id": 1}]}))

    async def go() -> VendorHTTP:
        async with make_http(server) as http:
            for _ in range(5):
                await paging.paginate(http, "/x")
            return http

    http = run(go())
    stats = http.stats
    stats.latencies_ms.clear()
    stats.latencies_ms.extend(float(v) for v in range(1, 101))
    assert stats.p50_ms == 50 and stats.p95_ms == 95
    metadata = stats.as_metadata()
    assert (
        metadata["polygon/requests"] == 5 and metadata["polygon/pages"] == 5 and metadata["polygon/rows"] == 5
    )
    assert metadata["polygon/bytes"] > 0 and metadata["polygon/latency_p95_ms"] == 95
    assert KEY not in repr(metadata) and KEY not in repr(http)


def test_polygon_client_repr_and_errors_never_show_key():
    client = PolygonClient.create(KEY, transport=httpx.MockTransport(lambda r: ok({})))
    assert KEY not in repr(client.http)
    run(client.aclose())
