from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import HTTPServer
from pathlib import Path

import pytest

from tests.api.backends import BACKENDS, Stack, make_stack
from tests.api.webhook_receiver import Receiver


@pytest.fixture(params=BACKENDS)
def stack(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Stack]:
    yield from make_stack(request, tmp_path)


@pytest.fixture
def receiver() -> Iterator[str]:
    """The URL of a local webhook receiver whose first answer is a 500."""
    Receiver.answers, Receiver.received = [500], []
    server = HTTPServer(("127.0.0.1", 0), Receiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/hook"
    server.shutdown()
    server.server_close()
