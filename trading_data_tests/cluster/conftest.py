"""Prints the two-host backfill's figures (steps per host, the killed and retried step, rows lost and
duplicated) at the end of the session; the test records them with ``record_property("cluster_summary", …)``."""

import pytest


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    lines = [
        value
        for reports in terminalreporter.stats.values()
        for report in reports
        for name, value in getattr(report, "user_properties", ())
        if name == "cluster_summary"
    ]
    if lines:
        terminalreporter.section("two-host Celery backfill")
        for line in dict.fromkeys(lines):
            terminalreporter.write_line(line)
