"""The fault suite's results table, printed at the end of a run: each test records its
rows (fault, operation, final phase, seconds to it, data check) as a user property, which
also crosses from pytest-xdist's workers."""

from __future__ import annotations

import pytest


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    rows = [
        value
        for reports in terminalreporter.stats.values()
        for report in reports
        if getattr(report, "when", None) == "call"
        for name, value in getattr(report, "user_properties", [])
        if name == "fault_row"
    ]
    if not rows:
        return
    terminalreporter.section("faults: every operation's final phase")
    head = ("fault", "operation", "at the fault", "final phase", "seconds", "data check")
    terminalreporter.write_line(" | ".join(head))
    for r in rows:
        cells = (r["fault"], r["kind"], r["at_fault"], r["phase"], f"{r['seconds']:.1f}", r["data"])
        terminalreporter.write_line(" | ".join(cells))
