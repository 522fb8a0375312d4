"""The API on each database it supports: SQLite (the default) and PostgreSQL.

The `stack` fixture (tests/api/conftest.py) runs a test once on each.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from mobile_api.api.app import create_app
from mobile_api.auth import Role, hash_password
from mobile_api.claims.service import create_staff
from mobile_api.runtime import Runtime
from tests import services
from tests.conftest import make_settings
from tests.migrated import migrated
from tests.web.conftest import EMAIL, PASSWORD

BACKENDS = [
    pytest.param("sqlite", id="sqlite"),
    pytest.param("postgresql", id="postgresql", marks=pytest.mark.services),
]


@dataclass
class Stack:
    client: TestClient
    runtime: Runtime
    staff: dict[str, str]
    """Bearer header of an adjuster."""


def make_stack(
    request: pytest.FixtureRequest, tmp_path: Path, analyzer: str | None = None
) -> Iterator[Stack]:
    """The app on `request.param`'s database, with the fake `analyzer` where one is named."""
    with ExitStack() as stack:
        overrides: dict[str, object] = {"upload_requests_per_minute": 1000}
        if analyzer is not None:
            overrides["analyzer"] = analyzer
        if request.param == "postgresql":
            overrides["database_url"] = stack.enter_context(
                services.fresh_postgres_database(migrated=True)
            )
        settings = make_settings(tmp_path, **overrides)
        migrated(settings.resolved_database_url)
        runtime = Runtime.build(settings)
        stack.callback(runtime.dispose)
        # https: the workspace's session cookie is Secure, and httpx sends it over https only.
        app = create_app(settings, runtime)
        client = stack.enter_context(TestClient(app, base_url="https://testserver"))
        _, token = create_staff(
            runtime,
            EMAIL,
            Role.ADJUSTER,
            name="Ada",
            password_hash=hash_password(PASSWORD),
        )
        yield Stack(client, runtime, {"Authorization": f"Bearer {token}"})


def at_once(count: int, call: Callable[[int], httpx.Response]) -> list[httpx.Response]:
    """`count` requests in flight together, each on its own thread."""
    with ThreadPoolExecutor(max_workers=count) as pool:
        return list(pool.map(call, range(count)))


def statuses(responses: list[Any]) -> list[int]:
    return sorted(r.status_code for r in responses)
