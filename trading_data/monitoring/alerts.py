"""Failure alerts: a failed run's summary as a Slack-compatible message, scrubbed of secrets, and its POST.

The message (``{"text": …, "blocks": […]}``; Mattermost, Rocket.Chat and Teams' Slack-compatible hooks accept
it too) names the job, run id, partition, failed steps and their errors; URLs in it lose credential query
parameters and passwords, and the values of the secret settings are replaced by ``***``. The sensor that
posts it is ``trading_data/defs/monitoring/alerts.py``.
"""

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import dagster as dg

from trading_data.redact import clip, redact
from trading_data.settings import secret_values
from trading_data.settings.platform import ALERT_WEBHOOK

if TYPE_CHECKING:
    import httpx

log = logging.getLogger(__name__)

ALERT_WEBHOOK_ENV = ALERT_WEBHOOK.env_var
MAX_ERROR_CHARS = 1500

# Shorter values are not scrubbed: replacing a one-letter "secret" everywhere would garble the alert.
MIN_SCRUBBED_SECRET_CHARS = 6


def scrub_text(text: str, environ: Mapping[str, str] | None = None) -> str:
    """``text`` safe to post: URLs without credentials or passwords, no bearer tokens, no key values
    (in any letter case)."""
    secrets = secret_values(environ)  # the keys, tokens and webhook set in the environment
    return redact(text, [s for s in secrets if len(s) >= MIN_SCRUBBED_SECRET_CHARS])


@dataclass(frozen=True)
class FailureSummary:
    job: str
    run_id: str
    partition: str | None
    error: str
    failed_steps: list[tuple[str, str]] = field(default_factory=list)
    """(step key, error message) per failed step."""


def _root_cause(error: Any) -> str:
    """``Class: message`` of the innermost cause (Dagster wraps user errors in a step-execution error)."""
    while getattr(error, "cause", None) is not None:
        error = error.cause
    return f"{error.cls_name}: {error.message.strip()}" if error.cls_name else error.message.strip()


def failure_summary(context: dg.RunFailureSensorContext) -> FailureSummary:
    run = context.dagster_run
    steps: list[tuple[str, str]] = []
    for event in context.get_step_failure_events():
        data = event.step_failure_data
        # The error's message says what went wrong; stack traces stay in Dagster.
        message = _root_cause(data.error) if data and data.error else (event.message or "")
        steps.append((event.step_key or "?", message))
    error = context.failure_event.message or "run failed"
    job_failure = context.failure_event.event_specific_data
    err_info = getattr(job_failure, "error", None)
    if err_info is not None:
        error = f"{error}: {_root_cause(err_info)}"
    return FailureSummary(
        job=run.job_name,
        run_id=run.run_id,
        partition=run.tags.get("dagster/partition"),
        error=error,
        failed_steps=steps,
    )


def alert_payload(summary: FailureSummary, environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The Slack-compatible message for a failed run, scrubbed of secrets."""
    partition = summary.partition or "—"
    title = f":red_circle: Dagster run failed: {summary.job} (partition {partition})"
    error = clip(scrub_text(summary.error, environ), MAX_ERROR_CHARS)
    lines = [
        f"*Job:* `{summary.job}`",
        f"*Run:* `{summary.run_id}`",
        f"*Partition:* `{partition}`",
        f"*Error:* {error}",
    ]
    steps_text = "\n".join(
        f"• `{key}`: {clip(scrub_text(msg, environ), 500)}" for key, msg in summary.failed_steps[:10]
    )
    if len(summary.failed_steps) > 10:
        steps_text += f"\n… and {len(summary.failed_steps) - 10} more failed steps"
    blocks: list[dict[str, Any]] = [
        {
            "type": "header",
            "text": {"type": "plain_text", "text": clip(title.replace(":red_circle: ", ""), 150)},
        },
        {"type": "section", "text": {"type": "mrkdwn", "text": "\n".join(lines)}},
    ]
    if steps_text:
        blocks.append(
            {"type": "section", "text": {"type": "mrkdwn", "text": "*Failed steps:*\n" + steps_text}}
        )
    text = (
        f"{title}. Run {summary.run_id}. "
        f"Failed steps: {', '.join(k for k, _ in summary.failed_steps) or 'none'}. Error: {error}"
    )
    return {"text": text, "blocks": blocks}


def post_alert(
    url: str,
    payload: Mapping[str, Any],
    *,
    timeout: float = 10.0,
    attempts: int = 2,
    client: "httpx.Client | None" = None,
) -> bool:
    """POST ``payload`` as JSON; one retry on a transport error, 429 or 5xx. True when delivered.
    Never raises (a broken webhook must not break the sensor); failures are logged without the URL."""
    import httpx  # only the alert sensor posts: not imported by every definitions load (issue 11)

    owns = client is None
    client = client or httpx.Client(timeout=timeout)
    try:
        for attempt in range(1, attempts + 1):
            try:
                response = client.post(url, json=payload, timeout=timeout)
            except httpx.HTTPError as exc:
                log.warning("alert webhook attempt %d/%d failed: %s", attempt, attempts, type(exc).__name__)
                continue
            if response.status_code < 300:
                return True
            log.warning(
                "alert webhook attempt %d/%d answered HTTP %d", attempt, attempts, response.status_code
            )
            if response.status_code != 429 and response.status_code < 500:
                return False
        return False
    finally:
        if owns:
            client.close()
