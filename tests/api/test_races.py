"""Per-claim limits under real concurrent requests, on SQLite and on PostgreSQL."""

from __future__ import annotations

from sqlalchemy import func, select

from mobile_api.storage import models
from mobile_api.worker.tasks import assess_claim
from tests import images
from tests.api.backends import Stack, at_once, statuses
from tests.conftest import open_claim, upload
from tests.web.conftest import csrf_of, sign_in


def rows_of(stack: Stack, model: type[models.Photo] | type[models.Job], claim_id: str) -> int:
    with stack.runtime.sessions() as session:
        count = session.scalar(
            select(func.count()).select_from(model).where(model.claim_id == claim_id)
        )
    return int(count or 0)


def test_concurrent_uploads_never_take_a_claim_past_its_photo_limit(stack: Stack) -> None:
    # given a claim that may hold 5 photos
    stack.runtime.settings.max_photos_per_claim = 5
    claim_id, headers = open_claim(stack.client)

    # when 16 uploads of different photos arrive at once
    def upload(i: int):
        photo = images.jpeg(color=(i * 13 % 256, i * 7 % 256, 90))
        files = [("files", (f"p{i}.jpg", photo, "image/jpeg"))]
        return stack.client.post(f"/v1/claims/{claim_id}/photos", files=files, headers=headers)

    responses = at_once(16, upload)
    # then exactly 5 are stored, and every other one is told why it was refused
    assert statuses(responses) == [201] * 5 + [409] * 11
    refused = [r.json()["error"]["code"] for r in responses if r.status_code == 409]
    assert set(refused) == {"too_many_photos"}
    assert rows_of(stack, models.Photo, claim_id) == 5


def test_concurrent_submits_without_a_key_queue_one_job(stack: Stack) -> None:
    # given a claim with a photo
    claim_id, headers = open_claim(stack.client)
    assert upload(stack.client, claim_id, headers, images.jpeg()).status_code == 201
    # when 10 submits arrive at once, none with an Idempotency-Key
    responses = at_once(
        10, lambda _: stack.client.post(f"/v1/claims/{claim_id}/submit", headers=headers)
    )
    # then one job is queued and the other nine are refused, saying why
    assert statuses(responses) == [202] + [409] * 9
    assert rows_of(stack, models.Job, claim_id) == 1


def test_concurrent_decisions_leave_one_decision_and_one_audit_entry(stack: Stack) -> None:
    # given a claim in review, open in the workspace of a signed-in adjuster
    claim_id, headers = open_claim(stack.client)
    files = [("files", ("p.jpg", images.jpeg(color=(222, 222, 222)), "image/jpeg"))]
    stack.client.post(f"/v1/claims/{claim_id}/photos", files=files, headers=headers)
    job = stack.client.post(f"/v1/claims/{claim_id}/submit", headers=headers).json()["job"]
    assess_claim.run(job["id"])
    assert sign_in(stack.client).status_code == 303
    page = f"/adjuster/claims/{claim_id}"
    csrf = csrf_of(stack.client.get(page).text)

    # when eight approvals and rejections are posted at the same moment
    def decide(i: int):
        if i % 2:
            form = {"csrf_token": csrf, "reason": "Not covered"}
            return stack.client.post(f"{page}/reject", data=form, follow_redirects=False)
        form = {"csrf_token": csrf}
        return stack.client.post(f"{page}/approve", data=form, follow_redirects=False)

    responses = at_once(8, decide)
    # then exactly one decision was made, and every other post was told the claim is decided
    assert statuses(responses) == [303] + [409] * 7
    with stack.runtime.sessions() as session:
        claim = session.get_one(models.Claim, claim_id)
        events = session.scalars(
            select(models.AuditEvent.action).where(models.AuditEvent.claim_id == claim_id)
        ).all()
    assert claim.status in ("approved", "rejected")
    assert events == [f"claim.{claim.status}"]
