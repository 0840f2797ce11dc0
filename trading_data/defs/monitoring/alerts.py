"""``run_failure_alert_sensor`` (a run-failure sensor, on by default) posts a failed run's summary to
``TRADING_DATA_ALERT_WEBHOOK`` when set, with one retry; otherwise it logs the same text
(``trading_data.monitoring.alerts`` builds and scrubs the message)."""

import dagster as dg

from trading_data.monitoring.alerts import ALERT_WEBHOOK_ENV, alert_payload, failure_summary, post_alert
from trading_data.settings.platform import ALERT_WEBHOOK


@dg.run_failure_sensor(
    name="run_failure_alert_sensor",
    default_status=dg.DefaultSensorStatus.RUNNING,
    description=f"Posts failed runs to the chat webhook in {ALERT_WEBHOOK_ENV} (logs them when unset).",
)
def run_failure_alert_sensor(context: dg.RunFailureSensorContext) -> None:
    payload = alert_payload(failure_summary(context))
    url = ALERT_WEBHOOK.get()
    if not url:
        context.log.warning(f"{ALERT_WEBHOOK_ENV} is not set; failure alert: {payload['text']}")
        return
    if post_alert(url, payload):
        context.log.info(f"failure alert posted for run {context.dagster_run.run_id}")
    else:
        context.log.error(f"failure alert could not be posted (see warnings); alert: {payload['text']}")
