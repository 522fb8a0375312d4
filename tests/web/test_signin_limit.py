"""Sign-in attempts are rate limited per client and account."""

from __future__ import annotations

from fastapi.testclient import TestClient

from mobile_api.web.session import SESSION_COOKIE
from tests.web.conftest import PASSWORD, sign_in


def test_password_guessing_is_slowed_down(web: TestClient, adjuster: str) -> None:
    web.app.state.signin_limiter.limit = 3  # type: ignore[attr-defined]
    for _ in range(3):
        assert sign_in(web, adjuster, "wrong-password").status_code == 401
    blocked = sign_in(web, adjuster, PASSWORD)
    assert blocked.status_code == 429
    assert "too many sign-in attempts" in blocked.text
    assert SESSION_COOKIE not in blocked.headers.get("set-cookie", "")
