from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from cdat.settings import Settings
from tests.hostile.service import ANSWERS, CASES_RUN
from tests.live import settings_on

# SQLite accepts what PostgreSQL refuses (a NUL in text): hostile input runs on both.
BACKENDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.services)]


@pytest.fixture(params=BACKENDS)
def settings(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Settings]:
    with settings_on(request.param, tmp_path) as on_backend:
        yield on_backend


@pytest.fixture(scope="module", params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not CASES_RUN:
        return
    terminalreporter.section("hostile input: cases run")
    for suite, count in sorted(CASES_RUN.items()):
        terminalreporter.write_line(f"{suite}: {count}")
    terminalreporter.write_line(f"total: {sum(CASES_RUN.values())}")
    answers = ", ".join(f"{status}: {count}" for status, count in sorted(ANSWERS.items()))
    terminalreporter.write_line(f"upload answers by HTTP status: {answers}")
