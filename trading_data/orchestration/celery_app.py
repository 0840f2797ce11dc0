"""The Celery app a worker runs: ``celery -A trading_data.orchestration.celery_app worker -Q <queue>``
(``trading-data worker <queue>`` starts it through ``dagster-celery worker start``). Its broker and backend
come from the settings, its queues and late acknowledgement from
:mod:`trading_data.orchestration.celery_executor`; its one task is dagster-celery's step task."""

from dagster_celery.tasks import create_task

from trading_data.orchestration.celery_executor import build_app

app = build_app()
execute_plan = create_task(app)
