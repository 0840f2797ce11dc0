"""One scrubber for secrets (``trading_data.redact.redact``), case-insensitive everywhere:
vendor errors, circuit-breaker errors stored in PostgreSQL, failure alerts, database URLs."""

from trading_data.db.url import mask_password
from trading_data.monitoring.alerts import scrub_text
from trading_data.redact import redact
from trading_data.redact import without_credentials as scrub_url  # its former name, kept by the test
from trading_data.sources.breaker import CircuitBreaker

KEY = "pk_Live_7Hq2ZxW9aB"


def test_a_key_is_scrubbed_in_any_case() -> None:
    text = f"Unknown API Key {KEY.upper()}; you sent {KEY.lower()} (was {KEY})"
    scrubbed = redact(text, [KEY])
    assert KEY.lower() not in scrubbed.lower() and scrubbed.count("***") == 3
    assert scrubbed.startswith("Unknown API Key ***;")


def test_credential_assignments_and_bearer_tokens_in_any_case() -> None:
    text = "APIKEY=abc123 apikey=def456 Api_Token=ghi789 ACCESS_TOKEN=jkl BEARER mno.pqr next_token=keep"
    scrubbed = redact(text)
    for value in ("abc123", "def456", "ghi789", "jkl", "mno.pqr"):
        assert value not in scrubbed
    assert "APIKEY=***" in scrubbed and "Bearer ***" in scrubbed and "next_token=keep" in scrubbed


def test_failure_alerts_scrub_the_key_in_another_case() -> None:
    text = scrub_text(f"polygon said: Unknown API Key {KEY.upper()}", environ={"POLYGON_API_KEY": KEY})
    assert KEY.upper() not in text and text == "polygon said: Unknown API Key ***"


def test_breaker_errors_scrub_bearer_tokens_and_any_case_assignments(clean_market: str) -> None:
    breaker = CircuitBreaker(clean_market, vendor="polygon", failure_threshold=5)
    state = breaker.record_failure(f"HTTP 503: echoed Authorization: Bearer {KEY} and APIKEY={KEY.upper()}")
    assert state.last_error is not None and KEY.lower() not in state.last_error.lower()
    assert "Bearer ***" in state.last_error and "APIKEY=***" in state.last_error


def test_scrub_url_drops_api_key():
    assert (
        scrub_url("https://api.polygon.io/v3/x?cursor=a&apiKey=SECRET")
        == "https://api.polygon.io/v3/x?cursor=a"
    )
    assert "SECRET" not in scrub_url("https://api.polygon.io/v3/x?apiKey=SECRET")


def test_a_url_to_request_again_keeps_its_cursor_byte_exact() -> None:
    url = "https://api.polygon.io/v3/quotes/AAPL?cursor=YWN0aXZl%7CPT0%3D&order=asc"
    assert scrub_url(url) == url


def test_url_passwords_are_masked_anywhere_in_a_text() -> None:
    text = "cannot reach postgresql://trader:s3cr@t@db.internal:5432/market; retry"
    assert redact(text) == "cannot reach postgresql://trader:***@db.internal:5432/market; retry"
    assert redact("postgresql://trader@db:5432/market") == "postgresql://trader@db:5432/market"


def test_mask_password_is_the_one_scrubber() -> None:
    url = "postgresql://trader:s3cret@127.0.0.1:1/trading_data?sslmode=require&password=other"
    assert mask_password(url) == redact(url)
    assert "s3cret" not in mask_password(url) and "other" not in mask_password(url)
    assert mask_password(url).startswith("postgresql://trader:***@127.0.0.1:1/")


def test_breaker_errors_mask_database_passwords(clean_market: str) -> None:
    breaker = CircuitBreaker(clean_market, vendor="polygon", failure_threshold=5)
    state = breaker.record_failure("OperationalError: postgresql://trader:s3cret@10.0.0.9:5432/x refused")
    assert state.last_error is not None and "s3cret" not in state.last_error
    assert "trader:***@10.0.0.9" in state.last_error
