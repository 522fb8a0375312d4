"""Adjuster workspace through the real app: sign-in, access control, CSRF, corrections,
decisions and the audit trail (SQLite, local blobs, fake analyzer, jobs run in-process)."""

from __future__ import annotations

from decimal import Decimal

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from mobile_api.runtime import Runtime
from mobile_api.storage import models
from tests.web.conftest import PASSWORD, Flagged, csrf_of, open_flagged_claim, sign_in


def page_urls(f: Flagged) -> list[str]:
    c, p = f.claim_id, f.photo_ids[0]
    return [
        "/adjuster/",
        f"/adjuster/claims/{c}",
        f"/adjuster/claims/{c}/photos/{p}",
        f"/adjuster/claims/{c}/photos/{p}/overlay.jpg",
    ]


def action_urls(f: Flagged) -> list[str]:
    c, p = f.claim_id, f.photo_ids[0]
    base = f"/adjuster/claims/{c}"
    return [
        f"{base}/damages/{p}/0/confirm",
        f"{base}/damages/{p}/0/edit",
        f"{base}/damages/{p}/0/delete",
        f"{base}/damages/{p}/add",
        f"{base}/operations",
        f"{base}/approve",
        f"{base}/reject",
        f"{base}/request-photos",
        f"{base}/capture-link",
        "/adjuster/logout",
    ]


def versions(runtime: Runtime, claim_id: str) -> list[models.AssessmentRecord]:
    with runtime.sessions() as session:
        return list(
            session.scalars(
                select(models.AssessmentRecord)
                .where(models.AssessmentRecord.claim_id == claim_id)
                .order_by(models.AssessmentRecord.version)
            )
        )


def audit_log(runtime: Runtime, claim_id: str) -> list[models.AuditEvent]:
    with runtime.sessions() as session:
        return list(
            session.scalars(
                select(models.AuditEvent)
                .where(models.AuditEvent.claim_id == claim_id)
                .order_by(models.AuditEvent.id)
            )
        )


def post(web: TestClient, url: str, **data: object):
    return web.post(url, data=data, follow_redirects=False)


def test_sign_in_sets_a_secure_httponly_samesite_cookie_and_refuses_wrong_passwords(
    web: TestClient, adjuster: str
) -> None:
    # given an adjuster with a password
    # when they sign in with a wrong password
    wrong = sign_in(web, password="not the password")
    # then the form comes back with the error inline, and no session
    assert wrong.status_code == 401
    assert "wrong email or password" in wrong.text and 'name="password"' in wrong.text
    assert "cdat_adjuster_session" not in web.cookies
    # when they sign in with the right one
    right = sign_in(web, password=PASSWORD)
    # then the session cookie is Secure, HttpOnly and SameSite, and the queue opens
    assert right.status_code == 303 and right.headers["location"] == "/adjuster/"
    cookie = right.headers["set-cookie"].lower()
    assert "cdat_adjuster_session=" in cookie
    assert "httponly" in cookie and "secure" in cookie and "samesite=strict" in cookie
    assert web.get("/adjuster/").status_code == 200


def test_policyholder_tokens_and_anonymous_callers_reach_no_adjuster_page_or_action(
    web: TestClient, adjuster: str, flagged: Flagged
) -> None:
    forged = {"cdat_adjuster_session": "eyJ1c2VyIjoiYWRtaW4ifQ.deadbeef"}
    for headers, cookies in ((flagged.headers, {}), ({}, {}), ({}, forged)):
        web.cookies.clear()
        for name, value in cookies.items():
            web.cookies.set(name, value, domain="testserver", path="/adjuster")
        for url in page_urls(flagged):
            response = web.get(url, headers=headers, follow_redirects=False)
            assert response.status_code == 303, url
            assert response.headers["location"].startswith("/adjuster/login?next=")
        for url in action_urls(flagged):
            response = post(web, url, csrf_token="x", reason="r", message="m")
            assert response.status_code == 401, url
            assert "sign in" in response.text.lower()
    # and nothing changed on the claim
    assert len(versions(web.app.state.runtime, flagged.claim_id)) == 1  # type: ignore[attr-defined]


def test_form_posts_without_the_sessions_csrf_token_are_refused(
    web: TestClient, runtime: Runtime, adjuster: str, flagged: Flagged
) -> None:
    sign_in(web)
    for token in (None, "", "0" * 64):
        data = {"damage_type": "scratch", "severity": "minor", "part": "hood"}
        if token is not None:
            data["csrf_token"] = token
        url = f"/adjuster/claims/{flagged.claim_id}/damages/{flagged.photo_ids[0]}/0/edit"
        response = web.post(url, data=data, follow_redirects=False)
        assert response.status_code == 403
        assert "CSRF" in response.text
        assert post(web, f"/adjuster/claims/{flagged.claim_id}/approve").status_code == 403
    # the sign-in form is protected too (double-submit cookie)
    web.cookies.clear()
    login = web.post("/adjuster/login", data={"email": adjuster, "password": PASSWORD})
    assert login.status_code == 403
    assert len(versions(runtime, flagged.claim_id)) == 1
    assert audit_log(runtime, flagged.claim_id) == []


def test_correcting_a_finding_makes_a_repriced_adjuster_version_and_is_audited(
    web: TestClient, runtime: Runtime, adjuster: str, flagged: Flagged
) -> None:
    sign_in(web)
    csrf = csrf_of(web.get(f"/adjuster/claims/{flagged.claim_id}").text)
    base = f"/adjuster/claims/{flagged.claim_id}"
    original = versions(runtime, flagged.claim_id)[-1].body
    assert original["photos"][0]["damages"][0]["severity"] == "severe"
    # when the adjuster says the severe dent is a minor scratch
    photo = flagged.photo_ids[0]
    edit = post(
        web, f"{base}/damages/{photo}/0/edit",
        csrf_token=csrf, damage_type="scratch", severity="minor", part="front_bumper",
    )  # fmt: skip
    assert edit.status_code == 303
    # then a new version made by the adjuster holds the change, priced again
    first, second = versions(runtime, flagged.claim_id)
    assert (first.source, second.source, second.author) == ("model", "adjuster", adjuster)
    assert second.job_id is None and second.version == first.version + 1
    damage = second.body["photos"][0]["damages"][0]
    assert (damage["damage_type"], damage["severity"], damage["review"]) == (
        "scratch",
        "minor",
        "edited",
    )
    assert [(f["damage_type"], f["severity"]) for f in second.body["findings"]] == [
        ("scratch", "minor")
    ]
    new_total = Decimal(second.body["estimate"]["total"])
    assert new_total < Decimal(original["estimate"]["total"])
    assert second.body["fraud_signals"] == original["fraud_signals"]
    with runtime.sessions() as session:
        claim = session.get_one(models.Claim, flagged.claim_id)
        assert claim.estimate_total == new_total and claim.status == "needs_review"
    # and the audit log says who changed what, with before and after
    (event,) = audit_log(runtime, flagged.claim_id)
    assert (event.actor, event.action) == (adjuster, "finding.edit")
    assert event.before is not None and event.after is not None
    assert (
        event.before["value"]["severity"] == "severe"
        and event.after["value"]["severity"] == "minor"
    )
    assert event.after["estimate_total"] == str(new_total)
    # and the policyholder's API shows the adjuster's version
    public = web.get(f"/v1/claims/{flagged.claim_id}", headers=flagged.headers).json()
    assert public["assessment"]["version"] == second.version
    assert [f["damage_type"] for f in public["assessment"]["findings"]] == ["scratch"]


def test_adding_deleting_and_operation_override_reprice_each_time(
    web: TestClient, runtime: Runtime, adjuster: str, flagged: Flagged
) -> None:
    sign_in(web)
    base, photo = f"/adjuster/claims/{flagged.claim_id}", flagged.photo_ids[0]
    csrf = csrf_of(web.get(base).text)
    # a shape that is not drawn is an inline form error, and changes nothing
    bad = post(
        web, f"{base}/damages/{photo}/add",
        csrf_token=csrf, damage_type="crack", severity="severe", part="hood", shape="[[1,1]]",
    )  # fmt: skip
    assert bad.status_code == 422 and "draw a box or polygon" in bad.text
    assert len(versions(runtime, flagged.claim_id)) == 1
    # adding a crack on the hood adds a priced hood line
    added = post(
        web, f"{base}/damages/{photo}/add",
        csrf_token=csrf, damage_type="crack", severity="severe", part="hood",
        shape="[[10, 20], [120, 20], [120, 90], [10, 90]]",
    )  # fmt: skip
    assert added.status_code == 303
    body = versions(runtime, flagged.claim_id)[-1].body
    assert body["photos"][0]["damages"][-1]["box"] == {"x1": 10, "y1": 20, "x2": 120, "y2": 90}
    assert "hood" in {line["part"] for line in body["estimate"]["lines"]}
    # forcing a replacement of the hood prices it under the adjuster's rule
    post(web, f"{base}/operations", csrf_token=csrf, part="hood", operation="replace")
    body = versions(runtime, flagged.claim_id)[-1].body
    hood = [line for line in body["estimate"]["lines"] if line["part"] == "hood"]
    assert {line["rule_id"] for line in hood} == {"ADJUSTER_OVERRIDE"}
    assert "replace" in {line["operation"] for line in hood}
    # deleting the model's dent leaves only the hood
    post(web, f"{base}/damages/{photo}/0/delete", csrf_token=csrf)
    body = versions(runtime, flagged.claim_id)[-1].body
    assert {f["part"] for f in body["findings"]} == {"hood"}
    actions = [e.action for e in audit_log(runtime, flagged.claim_id)]
    assert actions == ["finding.add", "estimate.operation", "finding.delete"]
    assert len(versions(runtime, flagged.claim_id)) == 4


def test_reject_needs_a_reason_and_the_policyholder_sees_the_decision(
    web: TestClient, runtime: Runtime, adjuster: str, flagged: Flagged
) -> None:
    sign_in(web)
    base = f"/adjuster/claims/{flagged.claim_id}"
    csrf = csrf_of(web.get(base).text)
    empty = post(web, f"{base}/reject", csrf_token=csrf, reason="  ")
    assert empty.status_code == 422 and "give the reason for the rejection" in empty.text
    done = post(web, f"{base}/reject", csrf_token=csrf, reason="Damage predates the policy")
    assert done.status_code == 303
    public = web.get(f"/v1/claims/{flagged.claim_id}", headers=flagged.headers).json()
    assert public["status"] == "rejected"
    assert public["status_reason"] == "Damage predates the policy"
    (event,) = audit_log(runtime, flagged.claim_id)
    assert event.before is not None and event.before["status"] == "needs_review"
    assert event.after == {"status": "rejected", "reason": "Damage predates the policy"}
    # a decided claim can no longer be corrected or decided again: a 409 page says why
    again = post(web, f"{base}/approve", csrf_token=csrf)
    assert again.status_code == 409 and "rejected cannot become approved" in again.text


def test_requesting_photos_shows_the_policyholder_what_to_retake(
    web: TestClient, adjuster: str, flagged: Flagged
) -> None:
    sign_in(web)
    base = f"/adjuster/claims/{flagged.claim_id}"
    csrf = csrf_of(web.get(base).text)
    message = "A close-up of the front bumper in daylight, please"
    response = web.post(
        f"{base}/request-photos",
        data={"csrf_token": csrf, "message": message, "photo_ids": flagged.photo_ids},
        follow_redirects=False,
    )
    assert response.status_code == 303
    public = web.get(f"/v1/claims/{flagged.claim_id}", headers=flagged.headers).json()
    assert public["status"] == "more_photos_requested"
    assert public["retake_request"]["message"] == message
    assert public["retake_request"]["photo_ids"] == flagged.photo_ids


def test_queue_sorts_by_priority_then_age_and_filters_by_reason_amount_and_date(
    web: TestClient, runtime: Runtime, adjuster: str
) -> None:
    older = open_flagged_claim(web, (200, 200, 200))
    newer = open_flagged_claim(web, (40, 40, 40))
    with runtime.sessions() as session, session.begin():
        session.get_one(models.Claim, newer.claim_id).review_priority = 9
        session.get_one(models.Claim, older.claim_id).estimate_total = Decimal("500000")
    sign_in(web)
    html = web.get("/adjuster/").text
    assert html.index(newer.claim_id) < html.index(older.claim_id)
    assert "needs review" in html
    expensive = web.get("/adjuster/", params={"min_amount": "100000"}).text
    assert older.claim_id in expensive and newer.claim_id not in expensive
    reason = web.get("/adjuster/", params={"reason": "fraud_signal"}).text
    assert older.claim_id in reason and newer.claim_id in reason
    assert newer.claim_id not in web.get("/adjuster/", params={"reason": "no_such"}).text
    tomorrow = web.get("/adjuster/", params={"date_from": "2999-01-01"}).text
    assert older.claim_id not in tomorrow and "No claims match" in tomorrow
    bad = web.get("/adjuster/", params={"max_amount": "lots"})
    assert bad.status_code == 422 and "max_amount must be a number" in bad.text


def test_duplicate_photo_shows_the_other_claims_photo_beside_it(
    web: TestClient, adjuster: str
) -> None:
    first = open_flagged_claim(web, (120, 130, 140))
    second = open_flagged_claim(web, (120, 130, 140))
    sign_in(web)
    html = web.get(f"/adjuster/claims/{second.claim_id}").text
    assert "duplicate photo other claim" in html
    other = f"/adjuster/claims/{first.claim_id}/photos/{first.photo_ids[0]}"
    assert f'src="{other}"' in html
    assert web.get(other).headers["content-type"] == "image/jpeg"


@pytest.mark.parametrize("url", ["/adjuster/claims/nope", "/adjuster/no-such-page"])
def test_unknown_pages_are_html_404s_with_a_message(
    web: TestClient, adjuster: str, url: str
) -> None:
    sign_in(web)
    response = web.get(url)
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("text/html")
    assert "Not found" in response.text


def test_an_adjuster_puts_a_damage_on_a_fender_and_it_is_priced_there(
    web: TestClient, runtime: Runtime, adjuster: str, flagged: Flagged
) -> None:
    sign_in(web)
    base, photo = f"/adjuster/claims/{flagged.claim_id}", flagged.photo_ids[0]
    page = web.get(base).text
    # given the workspace offers the fenders, which no model segments, among the parts
    assert 'value="front_right_fender"' in page and 'value="back_left_quarter_panel"' in page
    # when the adjuster moves the model's dent from the bumper to the front right fender
    edit = post(
        web, f"{base}/damages/{photo}/0/edit",
        csrf_token=csrf_of(page), damage_type="dent", severity="moderate",
        part="front_right_fender",
    )  # fmt: skip
    assert edit.status_code == 303
    # then the new version prices the fender, and no longer the bumper
    body = versions(runtime, flagged.claim_id)[-1].body
    assert [f["part"] for f in body["findings"]] == ["front_right_fender"]
    priced = {line["part"] for line in body["estimate"]["lines"] if line["operation"] != "blend"}
    assert priced == {"front_right_fender"}
