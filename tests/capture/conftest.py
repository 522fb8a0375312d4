"""The capture tests' fixtures: the app over HTTPS for the HTTP tests; for the browser
tests, a real server and worker and Chromium, module-scoped."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from cdat.settings import Settings
from mobile_api.api.app import create_app
from mobile_api.auth import Role, hash_password
from mobile_api.claims.service import create_staff
from mobile_api.runtime import Runtime
from tests.capture.browser import EMAIL, PASSWORD
from tests.conftest import make_settings
from tests.e2e.workers import start_worker, stop_worker
from tests.live import live_server
from tests.migrated import migrated
from tests.web.test_browser import CHROMIUM, CHROMIUM_ARGS


@dataclass
class Service:
    base: str
    settings: Settings
    runtime: Runtime
    staff_token: str
    worker_log: Path


@pytest.fixture
def web(settings: Settings, runtime: Runtime) -> Iterator[Any]:
    from fastapi.testclient import TestClient

    # https: the session cookie is Secure, and httpx sends it over https only.
    with TestClient(create_app(settings, runtime), base_url="https://testserver") as client:
        yield client


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    """The API under uvicorn and one `cdat worker` process, on SQLite and its broker."""
    tmp = tmp_path_factory.mktemp("capture")
    settings = make_settings(tmp)
    migrated(settings.resolved_database_url)
    rt = Runtime.build(settings)
    _, token = create_staff(
        rt, EMAIL, Role.ADJUSTER, name="Ada", password_hash=hash_password(PASSWORD)
    )
    log = tmp / "worker.log"
    worker = start_worker(settings, log)
    try:
        # The phone's status long-polls (25 s) outlive its closed tabs: do not wait them out.
        with live_server(create_app(settings, rt), timeout_graceful_shutdown=1) as base:
            yield Service(base, settings, rt, token, log)
    finally:
        stop_worker(worker, kill=True)  # nothing it holds matters now; a warm stop takes 30 s
        rt.dispose()


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()
