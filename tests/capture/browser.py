"""The capture browser tests' helpers: a phone in Chromium (390x844, touch), the axe-core
accessibility check, screenshots (the real server and worker are in conftest.py).

Chromium is Debian's (/usr/bin/chromium, `make browser`) and axe-core comes from npm
(tests/axe, `make test` installs it): nothing is downloaded while the tests run.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import REPO_ROOT
from tests.web.test_browser import CHROMIUM

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
