"""The simulation's runs print one summary line each at the end of the test session."""

from __future__ import annotations

import pytest

from tests.sim.report import Report

REPORTS: list[Report] = []


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not REPORTS:
        return
    terminalreporter.section("multi-tenant simulation (docs/faults.md)")
    for report in REPORTS:
        terminalreporter.write_line(report.summary())
