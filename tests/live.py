"""An app under a real uvicorn server on 127.0.0.1, for tests that need real connections."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import uvicorn
from fastapi import FastAPI

from cdat.settings import Settings
from tests import services
from tests.conftest import make_settings


@contextmanager
def live_server(app: FastAPI, **options: Any) -> Iterator[str]:
    """Serve `app` on a random free port; yields its base URL. `options` go to uvicorn."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, log_level="warning", lifespan="on", **options)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    for _ in range(200):
        if server.started:
            break
        thread.join(0.05)
    assert server.started, "uvicorn did not start"
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


@contextmanager
def settings_on(backend: str, tmp_path: Path, **overrides: object) -> Iterator[Settings]:
    """Test settings on the embedded SQLite database or on a fresh PostgreSQL database."""
    if backend == "sqlite":
        yield make_settings(tmp_path, **overrides)
        return
    with services.fresh_postgres_database(migrated=True) as url:
        yield make_settings(tmp_path, database_url=url, **overrides)
