"""Issue 31's staff side over HTTP: a capture link from the adjuster workspace, a claim
opened with its link in one staff API call, the claimant's sign-out, and how long a
capture session lasts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from mobile_api.auth import Role, hash_password
from mobile_api.capture import access
from mobile_api.claims.service import create_staff
from mobile_api.runtime import Runtime
from mobile_api.storage import models
from tests.capture.test_capture_pages import FORM, csrf_of, signed_in
from tests.conftest import claim_body, make_settings, open_claim, serving

EMAIL, PASSWORD = "ada@example.com", "a long pass phrase for ada"
KEY = "6d0e1f2a-3b4c-4d5e-8f60-718293a4b5c6"


def sign_in_to_workspace(client: TestClient, runtime: Runtime) -> None:
    create_staff(runtime, EMAIL, Role.ADJUSTER, name="Ada", password_hash=hash_password(PASSWORD))
    form = client.get("/adjuster/login")
    answer = client.post(
        "/adjuster/login",
        data={"email": EMAIL, "password": PASSWORD, "csrf_token": csrf_of(form.text)},
        follow_redirects=False,
    )
    assert answer.status_code == 303, answer.text


def workspace_csrf(client: TestClient, claim_id: str) -> str:
    page = client.get(f"/adjuster/claims/{claim_id}")
    assert page.status_code == 200
    assert 'action="/adjuster/claims/' + claim_id + '/capture-link"' in page.text
    return csrf_of(page.text)


def redeem(client: TestClient, url: str) -> Any:
    """What the link page's script does: the fragment's secret, posted with the page's CSRF."""
    secret = url.split("#", 1)[1]
    token = csrf_of(client.get("/capture/link").text)
    return client.post("/capture/link", data={"secret": secret, "csrf_token": token})


def links(runtime: Runtime, claim_id: str) -> list[models.CaptureLink]:
    with runtime.sessions() as session:
        query = select(models.CaptureLink).where(models.CaptureLink.claim_id == claim_id)
        return list(session.scalars(query))


def audit_actions(runtime: Runtime, claim_id: str) -> list[tuple[str, str, Any]]:
    with runtime.sessions() as session:
        events = session.scalars(
            select(models.AuditEvent).where(models.AuditEvent.claim_id == claim_id)
        )
        return [(e.action, e.actor, e.after) for e in events]


def test_the_workspace_shows_a_new_capture_link_once_and_audits_it(
    web: TestClient, runtime: Runtime
) -> None:
    # given a claim and a signed-in adjuster on its page
    claim_id, _ = open_claim(web)
    sign_in_to_workspace(web, runtime)
    csrf = workspace_csrf(web, claim_id)
    # when the adjuster asks for a link valid for 24 hours
    before = datetime.now(UTC)
    answer = web.post(
        f"/adjuster/claims/{claim_id}/capture-link",
        data={"csrf_token": csrf, "valid_hours": "24"},
        follow_redirects=False,
    )
    # then the page shows the link, its expiry, and is not kept by any cache
    assert answer.status_code == 200
    assert answer.headers["cache-control"] == "no-store"
    shown = answer.text.split('id="capture-link-url" value="', 1)[1].split('"', 1)[0]
    assert shown.startswith("https://testserver/capture/link#")
    (link,) = links(runtime, claim_id)
    assert link.created_by == EMAIL
    assert timedelta(hours=23) < link.expires_at - before <= timedelta(hours=24, seconds=5)
    assert link.expires_at.strftime("%Y-%m-%d %H:%M") in answer.text
    # and the audit log names who made it, without the secret
    secret = shown.split("#", 1)[1]
    ((action, actor, after),) = audit_actions(runtime, claim_id)
    assert (action, actor) == ("capture_link.created", EMAIL)
    assert secret not in str(after) and after["link"] == link.id[:12]
    # and the claim page shows it no more
    assert shown not in web.get(f"/adjuster/claims/{claim_id}").text
    # and the link opens the claim's capture page on the claimant's phone
    with TestClient(web.app, base_url="https://testserver") as phone:
        opened = redeem(phone, shown)
        assert opened.status_code == 200 and "Photos of your car" in opened.text


def test_a_workspace_link_needs_the_csrf_token_and_sane_hours(
    web: TestClient, runtime: Runtime
) -> None:
    claim_id, _ = open_claim(web)
    sign_in_to_workspace(web, runtime)
    csrf = workspace_csrf(web, claim_id)
    path = f"/adjuster/claims/{claim_id}/capture-link"
    # without the CSRF token: refused
    assert web.post(path, data={"valid_hours": "24"}).status_code == 403
    # hours that are not a whole number from 1 to 336: the form says so inline
    for hours in ("abc", "0", "337", "1.5", "-1"):
        answer = web.post(path, data={"csrf_token": csrf, "valid_hours": hours})
        assert answer.status_code == 422, hours
        assert "a whole number from 1 to 336" in answer.text
    # an unknown claim: not found
    unknown = web.post("/adjuster/claims/nope/capture-link", data={"csrf_token": csrf})
    assert unknown.status_code == 404
    # and no link was made
    assert links(runtime, claim_id) == []


def test_staff_open_a_claim_and_get_its_link_in_one_call(
    web: TestClient, runtime: Runtime, staff_token: str
) -> None:
    staff = {"Authorization": f"Bearer {staff_token}", "Idempotency-Key": KEY}
    # when an insurer's system opens a claim with a link valid for 48 hours
    answer = web.post("/v1/adjuster/claims?valid_hours=48", json=claim_body(), headers=staff)
    # then it gets the claim and the link, which opens that claim on the claimant's phone
    assert answer.status_code == 201, answer.text
    claim_id = answer.json()["claim"]["id"]
    link = answer.json()["capture_link"]
    assert link["url"].startswith("https://testserver/capture/link#")
    expires = datetime.fromisoformat(link["expires_at"])
    assert timedelta(hours=47) < expires - datetime.now(UTC) <= timedelta(hours=48)
    assert [(a, actor) for a, actor, _ in audit_actions(runtime, claim_id)] == [
        ("capture_link.created", "adjuster@example.com")
    ]
    with TestClient(web.app, base_url="https://testserver") as phone:
        assert redeem(phone, link["url"]).status_code == 200
        assert phone.get("/capture/claim").status_code == 200
    # and a retry with the same key opens no second claim
    again = web.post("/v1/adjuster/claims?valid_hours=48", json=claim_body(), headers=staff)
    assert again.json()["claim"]["id"] == claim_id
    with runtime.sessions() as session:
        assert len(session.scalars(select(models.Claim)).all()) == 1


def test_opening_a_claim_with_a_link_is_for_staff_with_a_valid_claim(
    web: TestClient, runtime: Runtime, staff_token: str
) -> None:
    _, owner = open_claim(web)
    staff = {"Authorization": f"Bearer {staff_token}"}
    assert web.post("/v1/adjuster/claims", json=claim_body()).status_code == 401
    assert web.post("/v1/adjuster/claims", json=claim_body(), headers=owner).status_code == 403
    bad = web.post("/v1/adjuster/claims", json=claim_body(policy_number="x"), headers=staff)
    assert bad.status_code == 422 and "policy_number" in bad.text
    late = web.post("/v1/adjuster/claims?valid_hours=999", json=claim_body(), headers=staff)
    assert late.status_code == 422
    with runtime.sessions() as session:  # only the policyholder's own claim exists
        assert len(session.scalars(select(models.Claim)).all()) == 1


def test_sign_out_ends_the_session_on_the_server_and_in_the_browser(
    web: TestClient, runtime: Runtime
) -> None:
    # given a signed-in claimant, whose cookie value someone kept a copy of
    csrf = signed_in(web)
    kept = web.cookies[access.SESSION_COOKIE]
    # when a sign-out without the page's CSRF token is sent, nothing happens
    assert web.post("/capture/claim/sign-out", data={}).status_code == 403
    assert web.get("/capture/claim").status_code == 200
    # when the claimant signs out
    answer = web.post("/capture/claim/sign-out", data={"csrf_token": csrf}, follow_redirects=False)
    # then the browser drops the cookie and the page's kept copies, and lands signed out
    assert answer.status_code == 303
    assert answer.headers["location"] == "/capture/?signed_out=1"
    assert answer.headers["clear-site-data"] == '"cache", "storage"'
    cookie = answer.headers["set-cookie"]
    assert cookie.startswith(access.SESSION_COOKIE + "=") and "Max-Age=0" in cookie
    assert "You are signed out" in web.get("/capture/?signed_out=1").text
    # and the kept copy of the cookie opens nothing: the session is gone from the server
    web.cookies.set(access.SESSION_COOKIE, kept, domain="testserver", path="/capture")
    assert web.get("/capture/claim").status_code == 401
    with runtime.sessions() as session:
        assert session.scalars(select(models.CaptureSession)).all() == []


def test_a_capture_session_lasts_two_days_by_default(web: TestClient, runtime: Runtime) -> None:
    assert runtime.settings.capture_session_hours == 48
    csrf = signed_in(web)
    assert csrf
    with runtime.sessions() as session:
        stored = session.scalars(select(models.CaptureSession)).one()
    left = stored.expires_at - datetime.now(UTC)
    assert timedelta(hours=47) < left <= timedelta(hours=48)
    # and after it, the cookie opens nothing
    with runtime.sessions() as session, session.begin():
        session.get_one(models.CaptureSession, stored.id).expires_at = datetime.now(UTC)
    assert web.get("/capture/claim").status_code == 401


@pytest.mark.parametrize("hours", [1, 336])
def test_the_session_lifetime_is_a_setting_and_the_cookie_follows_it(
    tmp_path: Any, hours: int
) -> None:
    settings = make_settings(tmp_path, capture_session_hours=hours)
    with serving(settings, base_url="https://testserver") as client:
        page = client.get("/capture/")
        answer = client.post(
            "/capture/start",
            data={**FORM, "csrf_token": csrf_of(page.text)},
            follow_redirects=False,
        )
        assert answer.status_code == 303
        assert f"Max-Age={hours * 3600}" in answer.headers["set-cookie"]


def test_a_session_lifetime_beyond_two_weeks_is_refused() -> None:
    from pydantic import ValidationError

    from cdat.settings import Settings

    for hours in (0, 337):
        with pytest.raises(ValidationError, match="capture_session_hours"):
            Settings(capture_session_hours=hours)
