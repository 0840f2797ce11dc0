"""Prints one summary line per fault scenario at the end of the session.

Each test records its line with ``record_property("fault_summary", ...)`` at teardown; reports carry it from xdist
workers too. The hook runs when this folder is given on the command line (or collected without xdist).
"""

import pytest


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    lines = []
    for reports in terminalreporter.stats.values():
        for report in reports:
            if getattr(report, "when", None) != "teardown":  # record_property ran in a fixture teardown
                continue
            lines.extend(
                value for name, value in getattr(report, "user_properties", ()) if name == "fault_summary"
            )
    if lines:
        terminalreporter.section("fault injection summary")
        for line in lines:
            terminalreporter.write_line(line)
