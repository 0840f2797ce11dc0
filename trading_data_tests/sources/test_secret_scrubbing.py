"""One scrubber for secrets (``trading_data.sources.http.scrub_secrets``), case-insensitive everywhere:
vendor errors, circuit-breaker errors stored in PostgreSQL, failure alerts."""

from trading_data.ops.breaker import CircuitBreaker
from trading_data.ops.sensors import scrub_text
from trading_data.sources.http import scrub_secrets

KEY = "pk_Live_7Hq2ZxW9aB"


def test_a_key_is_scrubbed_in_any_case() -> None:
    text = f"Unknown API Key {KEY.upper()}; you sent {KEY.lower()} (was {KEY})"
    scrubbed = scrub_secrets(text, [KEY])
    assert KEY.lower() not in scrubbed.lower() and scrubbed.count("***") == 3
    assert scrubbed.startswith("Unknown API Key ***;")


def test_credential_assignments_and_bearer_tokens_in_any_case() -> None:
    text = "APIKEY=abc123 apikey=def456 Api_Token=ghi789 ACCESS_TOKEN=jkl BEARER mno.pqr next_token=keep"
    scrubbed = scrub_secrets(text)
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
