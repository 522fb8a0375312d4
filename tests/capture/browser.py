"""The capture tests' harness: a real server and a real worker for the module, a phone in
Chromium (390x844, touch), the axe-core accessibility check, and screenshots.

Chromium is Debian's (/usr/bin/chromium, `make browser`) and axe-core comes from npm
(tests/axe, `make test` installs it): nothing is downloaded while the tests run.
"""

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
from mobile_api.storage.migrate import upgrade
from tests.conftest import REPO_ROOT, make_settings
from tests.e2e.workers import start_worker, stop_worker
from tests.live import live_server
from tests.web.test_browser import CHROMIUM, CHROMIUM_ARGS

AXE = REPO_ROOT / "tests" / "axe" / "node_modules" / "axe-core" / "axe.min.js"
SHOTS = REPO_ROOT / "test-artifacts" / "capture"
PHONE: dict[str, Any] = {
    "viewport": {"width": 390, "height": 844},
    "is_mobile": True,
    "has_touch": True,
    "device_scale_factor": 1,
}
EMAIL, PASSWORD = "ada@insurer.example", "correct horse battery staple"

needs_browser = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.skipif(
        not CHROMIUM.exists(),
        reason="needs Debian's chromium at /usr/bin/chromium (make browser)",
    ),
    pytest.mark.skipif(
        not AXE.exists(), reason="needs axe-core in tests/axe/node_modules (make test installs it)"
    ),
]


@dataclass
class Service:
    base: str
    settings: Settings
    runtime: Runtime
    staff_token: str
    worker_log: Path


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    """The API under uvicorn and one `cdat worker` process, on SQLite and its broker."""
    tmp = tmp_path_factory.mktemp("capture")
    settings = make_settings(tmp)
    upgrade(settings.resolved_database_url)
    rt = Runtime.build(settings)
    _, token = create_staff(
        rt, EMAIL, Role.ADJUSTER, name="Ada", password_hash=hash_password(PASSWORD)
    )
    log = tmp / "worker.log"
    worker = start_worker(settings, log)
    try:
        with live_server(create_app(settings, rt)) as base:
            yield Service(base, settings, rt, token, log)
    finally:
        stop_worker(worker)
        rt.dispose()


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


def accessible(page: Any, where: str) -> None:
    """axe-core in the page: no serious or critical violation."""
    if not page.evaluate("() => typeof window.axe !== 'undefined'"):
        page.evaluate(AXE.read_text())
    found = page.evaluate(
        """async () => (await axe.run(document, {resultTypes: ['violations']})).violations
            .filter(v => v.impact === 'serious' || v.impact === 'critical')
            .map(v => `${v.id} (${v.impact}): ${v.nodes.map(n => n.target.join(' '))}`)"""
    )
    assert found == [], f"{where}: {found}"


def screenshot(page: Any, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def sign_in_adjuster(page: Any, base: str) -> None:
    page.goto(f"{base}/adjuster/login")
    page.get_by_label("Email").fill(EMAIL)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
