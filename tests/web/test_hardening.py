"""Sessions that end, access that can be taken away, and pages that defend themselves."""

from __future__ import annotations

import io
import math
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from cdat.settings import Settings
from mobile_api.auth import Role, hash_password
from mobile_api.claims.service import create_staff
from mobile_api.cli import main
from mobile_api.cli.accounts import deactivate, revoke_token
from mobile_api.cli.feedback import FeedbackError, export
from mobile_api.runtime import Runtime
from mobile_api.storage import models
from mobile_api.web.session import SESSION_COOKIE
from tests.conftest import make_settings, serving
from tests.web.conftest import EMAIL, PASSWORD, Flagged, csrf_of, sign_in


def test_signing_out_ends_the_session_on_the_server(web: TestClient, adjuster: str) -> None:
    # given a signed-in adjuster whose cookie was copied (another tab, a stolen laptop)
    assert sign_in(web).status_code == 303
    copy = TestClient(
        web.app,
        base_url="https://testserver",
        cookies={SESSION_COOKIE: web.cookies[SESSION_COOKIE]},
    )
    assert copy.get("/adjuster/", follow_redirects=False).status_code == 200
    # when they sign out
    csrf = csrf_of(web.get("/adjuster/").text)
    web.post("/adjuster/logout", data={"csrf_token": csrf}, follow_redirects=False)
    # then the copied cookie no longer opens the workspace
    after = copy.get("/adjuster/", follow_redirects=False)
    assert after.status_code == 303 and "/adjuster/login" in after.headers["location"]


def test_a_revoked_token_and_a_deactivated_user_lose_access(
    web: TestClient, runtime: Runtime, flagged: Flagged
) -> None:
    # given two adjusters, each with an API token, one also signed in to the workspace
    _, kept = create_staff(runtime, "kept@insurer.example", Role.ADJUSTER)
    _, leaving = create_staff(runtime, EMAIL, Role.ADJUSTER, password_hash=hash_password(PASSWORD))
    assert sign_in(web).status_code == 303
    url = f"/v1/adjuster/claims/{flagged.claim_id}"

    def api(token: str) -> int:
        return web.get(url, headers={"Authorization": f"Bearer {token}"}).status_code

    assert (api(kept), api(leaving)) == (200, 200)
    # when one token is revoked and the other adjuster is deactivated
    assert revoke_token(runtime, kept) == "kept@insurer.example"
    tokens, sessions = deactivate(runtime, EMAIL)
    # then neither token works, the workspace session is over, and sign-in is refused
    assert (api(kept), api(leaving)) == (401, 401)
    assert (tokens, sessions) == (1, 1)
    assert web.get("/adjuster/", follow_redirects=False).status_code == 303
    assert sign_in(web).status_code == 401


def test_the_commands_revoke_and_deactivate(
    runtime: Runtime, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # given an adjuster with a token, and the CLI pointed at the same database
    _, token = create_staff(runtime, EMAIL, Role.ADJUSTER)
    monkeypatch.setenv("CDAT_DATA_DIR", str(runtime.settings.data_dir))
    # when the token is revoked through stdin, then the user deactivated
    monkeypatch.setattr("sys.stdin", io.StringIO(token + "\n"))
    assert main(["adjuster", "revoke-token"]) == 0
    assert main(["adjuster", "deactivate", EMAIL]) == 0
    # then both happened, and an unknown user is a clear error
    with runtime.sessions() as session:
        user = session.scalars(select(models.User)).one()
        assert not user.active
        assert session.scalars(select(models.ApiToken.revoked)).all() == [True]
    assert main(["adjuster", "deactivate", "nobody@insurer.example"]) == 2
    assert "no user nobody@insurer.example" in capsys.readouterr().err


def test_workspace_pages_send_csp_frame_and_cache_headers(web: TestClient, adjuster: str) -> None:
    sign_in(web)
    for path in ("/adjuster/login", "/adjuster/"):
        page = web.get(path)
        assert page.status_code == 200
        csp = page.headers["content-security-policy"]
        assert "frame-ancestors 'none'" in csp and "script-src 'self'" in csp
        assert page.headers["x-frame-options"] == "DENY"
        assert page.headers["cache-control"] == "no-store"


@pytest.mark.parametrize(
    "shape",
    ["[[NaN, 24], [160, 24], [96, 120]]", "[[32, 24], [160, NaN], [96, 120]]"],
)
def test_a_polygon_with_nan_is_refused_and_never_exported(
    web: TestClient, runtime: Runtime, adjuster: str, flagged: Flagged, tmp_path: Path, shape: str
) -> None:
    sign_in(web)
    base, photo = f"/adjuster/claims/{flagged.claim_id}", flagged.photo_ids[0]
    csrf = csrf_of(web.get(base).text)
    # when an adjuster's drawn shape carries NaN coordinates
    added = web.post(
        f"{base}/damages/{photo}/add",
        data={"csrf_token": csrf, "damage_type": "dent", "severity": "minor", "shape": shape},
    )
    # then the form comes back with the error, and no version was made from it
    assert added.status_code == 422
    assert "finite numbers" in added.text
    with runtime.sessions() as session:
        bodies = session.scalars(select(models.AssessmentRecord.body)).all()
    assert not any(
        math.isnan(v)
        for body in bodies
        for p in body.get("photos", [])
        for d in p.get("damages", [])
        for point in d.get("polygon", [])
        for v in point
    )
    with pytest.raises(FeedbackError, match="no reviewed photos"):
        export(runtime, tmp_path / "out")


@pytest.fixture
def production(tmp_path: Path) -> Settings:
    return make_settings(
        tmp_path, environment="production", secret_key="s" * 40, ops_token="o" * 40
    )


def test_production_keeps_metrics_readiness_and_docs_private(production: Settings) -> None:
    with serving(production) as client:
        # when strangers ask for the operational endpoints and the docs
        paths = ("/metrics", "/readyz", "/docs", "/redoc", "/openapi.json", "/docs/oauth2-redirect")
        hidden = [client.get(p).status_code for p in paths]
        # then none is served, while liveness stays open
        assert hidden == [404] * len(paths)
        assert client.get("/healthz").status_code == 200
        # and the operator's token opens metrics and readiness
        ops = {"Authorization": f"Bearer {'o' * 40}"}
        assert client.get("/metrics", headers=ops).status_code == 200
        assert client.get("/readyz", headers=ops).status_code in (200, 503)


def test_redirects_do_not_follow_the_host_header(client: TestClient) -> None:
    # when a trailing-slash request names another host
    answer = client.get("/v1/claims/abc/", headers={"Host": "evil.example"}, follow_redirects=False)
    # then the redirect stays on this site
    assert answer.status_code in (307, 308)
    assert answer.headers["location"] == "/v1/claims/abc"
