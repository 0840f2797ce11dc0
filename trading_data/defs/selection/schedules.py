"""The selection schedules and their jobs, from the schedule table (``trading_data.scheduling.SCHEDULE_SPECS``)."""

from trading_data.orchestration.schedules import schedules_of

schedules = schedules_of("selection")
jobs = [schedule.job for schedule in schedules]
