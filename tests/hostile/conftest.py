from __future__ import annotations

import pytest

from tests.hostile.service import ANSWERS, CASES_RUN


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not CASES_RUN:
        return
    terminalreporter.section("hostile input: cases run")
    for suite, count in sorted(CASES_RUN.items()):
        terminalreporter.write_line(f"{suite}: {count}")
    terminalreporter.write_line(f"total: {sum(CASES_RUN.values())}")
    answers = ", ".join(f"{status}: {count}" for status, count in sorted(ANSWERS.items()))
    terminalreporter.write_line(f"upload answers by HTTP status: {answers}")
