from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.api.backends import BACKENDS, Stack, make_stack


@pytest.fixture(params=BACKENDS)
def stack(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Stack]:
    yield from make_stack(request, tmp_path)
