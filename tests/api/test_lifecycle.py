"""A claim's life through the real app: decisions that stay decided, corrections that
survive a re-assessment, photos removed and replaced, each audience's view of it."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from cdat import corrections
from cdat.claims import ClaimStatus
from cdat.errors import InvalidTransition
from mobile_api.claims import review
from mobile_api.queues import jobs
from mobile_api.runtime import Runtime
from mobile_api.storage import models
from mobile_api.worker.assessing import analyze_photos
from mobile_api.worker.tasks import assess_claim
from tests import images
from tests.api.backends import Stack
from tests.conftest import open_claim, submit, upload

ADJUSTER = review.Actor("u1", "adjuster@example.com")


def add_photos(
    client: TestClient, claim_id: str, headers: dict[str, str], *photos: bytes
) -> list[str]:
    """Upload the photos, which must be stored; returns their ids."""
    response = upload(client, claim_id, headers, *photos)
    assert response.status_code == 201, response.text
    return [p["id"] for p in response.json()["photos"]]


def staff_view(stack: Stack, claim_id: str) -> dict:
    response = stack.client.get(f"/v1/adjuster/claims/{claim_id}", headers=stack.staff)
    assert response.status_code == 200
    claim: dict = response.json()
    return claim


def audit_actions(runtime: Runtime, claim_id: str) -> list[str]:
    with runtime.sessions() as session:
        return list(
            session.scalars(
                select(models.AuditEvent.action)
                .where(models.AuditEvent.claim_id == claim_id)
                .order_by(models.AuditEvent.id)
            )
        )


@pytest.mark.parametrize("decision", [ClaimStatus.APPROVED, ClaimStatus.REJECTED])
def test_a_job_finishing_after_the_decision_keeps_its_version_and_leaves_the_claim_decided(
    stack: Stack, decision: ClaimStatus
) -> None:
    client, runtime = stack.client, stack.runtime
    # given a claim whose first assessment is still running when a photo is added and the
    # claim submitted again, and that second assessment finishes first
    claim_id, headers = open_claim(client)
    add_photos(client, claim_id, headers, images.jpeg(color=(200, 200, 200)))
    slow_job = submit(client, claim_id, headers)
    slow = jobs.acquire(runtime, slow_job)
    assert slow is not None
    add_photos(client, claim_id, headers, images.jpeg(color=(30, 30, 30)))
    assert assess_claim.run(submit(client, claim_id, headers)) == "done"
    assert staff_view(stack, claim_id)["status"] == "needs_review"
    # when an adjuster decides the claim, and only then the slow job finishes
    review.decide(runtime, claim_id, ADJUSTER, decision, "Not covered")
    late = analyze_photos(runtime, claim_id, slow.photo_ids)
    assert jobs.complete(runtime, slow, *late)
    # then the claim is still decided, on the version it was decided on
    claim = staff_view(stack, claim_id)
    assert claim["status"] == decision.value
    assert claim["current_version"] == 1 and claim["assessment"]["version"] == 1
    # and the late job's version is kept for the record
    assert [v["version"] for v in claim["assessment_versions"]] == [1, 2]
    assert audit_actions(runtime, claim_id) == [f"claim.{decision.value}"]
    # and nothing reopens it: no new submit, no new photo
    again = client.post(f"/v1/claims/{claim_id}/submit", headers=headers)
    assert again.status_code == 409
    files = [("files", ("x.jpg", images.jpeg(color=(1, 90, 1)), "image/jpeg"))]
    more = client.post(f"/v1/claims/{claim_id}/photos", files=files, headers=headers)
    assert more.status_code == 409


def test_a_claim_in_assessment_cannot_be_decided(client: TestClient, runtime: Runtime) -> None:
    claim_id, headers = open_claim(client)
    add_photos(client, claim_id, headers, images.jpeg(color=(120, 10, 10)))
    submit(client, claim_id, headers)
    with pytest.raises(InvalidTransition, match="queued cannot become approved"):
        review.decide(runtime, claim_id, ADJUSTER, ClaimStatus.APPROVED)


def test_re_assessment_after_more_photos_keeps_the_adjusters_corrections(stack: Stack) -> None:
    client, runtime = stack.client, stack.runtime
    # given a claim in review on which the adjuster made the dent a severe crack on the hood
    claim_id, headers = open_claim(client)
    (first,) = add_photos(client, claim_id, headers, images.jpeg(320, 240, color=(40, 40, 40)))
    assess_claim.run(submit(client, claim_id, headers))
    fields = corrections.parse_fields("crack", "severe", "hood")
    review.correct(
        runtime,
        claim_id,
        ADJUSTER,
        "finding.edit",
        lambda a: corrections.edit_damage(a, first, 0, fields),
    )
    corrected = staff_view(stack, claim_id)["assessment"]
    review.request_photos(runtime, claim_id, ADJUSTER, "A photo of the rear, please", [])
    # when the policyholder sends another photo and the claim is assessed again
    (second,) = add_photos(client, claim_id, headers, images.jpeg(320, 240, color=(60, 60, 60)))
    assess_claim.run(submit(client, claim_id, headers))
    # then the new version still holds the adjuster's finding on the first photo
    claim = staff_view(stack, claim_id)
    latest = claim["assessment"]
    assert latest["version"] == corrected["version"] + 1 and latest["source"] == "model"
    photos = {p["photo_id"]: p for p in latest["photos"]}
    kept = photos[first]["damages"][0]
    assert (kept["damage_type"], kept["severity"], kept["part"], kept["review"]) == (
        "crack",
        "severe",
        "hood",
        "edited",
    )
    assert photos[first]["reviewed"] and not photos[second]["reviewed"]
    # and the new photo is the model's, priced on top of the corrected one
    assert photos[second]["damages"][0]["review"] == ""
    assert float(latest["estimate"]["total"]) > float(corrected["estimate"]["total"])


def test_a_resubmit_without_any_photo_change_is_refused(stack: Stack) -> None:
    client = stack.client
    claim_id, headers = open_claim(client)
    add_photos(client, claim_id, headers, images.jpeg(color=(50, 50, 200)))
    assess_claim.run(submit(client, claim_id, headers))
    # when the policyholder submits again during review, with the same photos
    again = client.post(f"/v1/claims/{claim_id}/submit", headers=headers)
    # then it is refused, saying why, and no job was queued
    assert again.status_code == 409
    assert "no photo was added, removed or replaced" in again.json()["error"]["message"]
    assert staff_view(stack, claim_id)["status"] == "needs_review"


def test_a_retake_replaces_a_photo_and_a_removed_photo_is_no_longer_assessed(
    client: TestClient,
) -> None:
    # given an assessed claim with three photos
    claim_id, headers = open_claim(client)
    bad, keep, spare = add_photos(
        client,
        claim_id,
        headers,
        images.jpeg(color=(5, 5, 5)),
        images.jpeg(color=(150, 150, 150)),
        images.jpeg(color=(90, 20, 20)),
    )
    assess_claim.run(submit(client, claim_id, headers))
    # when the policyholder replaces one with a retake and removes another
    files = {"file": ("retake.jpg", images.jpeg(color=(220, 220, 220)), "image/jpeg")}
    url = f"/v1/claims/{claim_id}/photos"
    replaced = client.put(f"{url}/{bad}", files=files, headers=headers)
    assert replaced.status_code == 200, replaced.text
    retake = replaced.json()["photo"]["id"]
    assert replaced.json()["replaced"] == bad
    assert client.delete(f"{url}/{spare}", headers=headers).status_code == 204
    # then the claim holds the retake and the photo kept, and the next assessment only those
    claim = client.get(f"/v1/claims/{claim_id}", headers=headers).json()
    assert [p["id"] for p in claim["photos"]] == [keep, retake]
    assess_claim.run(submit(client, claim_id, headers))
    claim = client.get(f"/v1/claims/{claim_id}", headers=headers).json()
    assert sorted(claim["assessment"]["photo_ids"]) == sorted([keep, retake])
    # and a photo that is not on the claim (any more) is a 404
    assert client.delete(f"{url}/{bad}", headers=headers).status_code == 404


def test_photos_cannot_be_removed_or_replaced_once_decided(
    client: TestClient, runtime: Runtime
) -> None:
    claim_id, headers = open_claim(client)
    (photo,) = add_photos(client, claim_id, headers, images.jpeg(color=(70, 70, 70)))
    assess_claim.run(submit(client, claim_id, headers))
    review.decide(runtime, claim_id, ADJUSTER, ClaimStatus.REJECTED, "Not covered")
    url = f"/v1/claims/{claim_id}/photos/{photo}"
    files = {"file": ("r.jpg", images.jpeg(color=(9, 9, 9)), "image/jpeg")}
    for response in (
        client.delete(url, headers=headers),
        client.put(url, files=files, headers=headers),
    ):
        assert response.status_code == 409
        assert "rejected" in response.json()["error"]["message"]
    assert len(client.get(f"/v1/claims/{claim_id}", headers=headers).json()["photos"]) == 1


def test_the_policyholder_sees_no_other_claim_no_fraud_rules_and_no_staff(
    stack: Stack,
) -> None:
    client, runtime = stack.client, stack.runtime
    # given a photo already used on another claim
    photo = images.jpeg(color=(60, 70, 80))
    other_id, other_headers = open_claim(client)
    add_photos(client, other_id, other_headers, photo)
    assess_claim.run(submit(client, other_id, other_headers))
    claim_id, headers = open_claim(client)
    add_photos(client, claim_id, headers, photo)
    assess_claim.run(submit(client, claim_id, headers))
    staff = staff_view(stack, claim_id)
    assert other_id in json.dumps(staff)  # staff see the evidence
    # when its policyholder reads it while in review
    mine = client.get(f"/v1/claims/{claim_id}", headers=headers)
    text = mine.text
    # then it names no other claim, no rule, threshold or hash, and shows no amount yet
    assert other_id not in text
    for internal in ("hamming", "max_distance", "duplicate_photo", "fraud_signals", "priority"):
        assert internal not in text, internal
    assessment = mine.json()["assessment"]
    assert assessment["outcome"] == "under_review" and assessment["estimate"] is None
    assert "routine checks" in " ".join(assessment["reasons"])
    version = client.get(f"/v1/claims/{claim_id}/assessments/1", headers=headers).text
    assert other_id not in version and "hamming" not in version
    # when the adjuster approves it
    review.decide(runtime, claim_id, ADJUSTER, ClaimStatus.APPROVED)
    approved = client.get(f"/v1/claims/{claim_id}", headers=headers)
    # then the policyholder sees the amount, and not who approved it
    assert ADJUSTER.email not in approved.text
    assert approved.json()["status_reason"] == "Claim approved."
    assert approved.json()["assessment"]["outcome"] == "estimate"
    assert float(approved.json()["assessment"]["estimate"]["total"]) > 0


def test_a_wrecked_car_is_not_shown_a_zero_or_any_amount_as_the_answer(
    client: TestClient,
) -> None:
    # given a car worth little, whose repair costs more than its value
    vehicle = {
        "make": "Maruti",
        "model": "Alto",
        "year": 2008,
        "body_type": "hatchback",
        "market_value": "5000",
    }
    claim_id, headers = open_claim(client, vehicle=vehicle)
    add_photos(client, claim_id, headers, images.jpeg(color=(250, 250, 250)))
    assess_claim.run(submit(client, claim_id, headers))
    # when its policyholder reads the assessment
    assessment = client.get(f"/v1/claims/{claim_id}", headers=headers).json()["assessment"]
    # then it says total loss in plain words, with no amount
    assert assessment["outcome"] == "total_loss"
    assert assessment["estimate"] is None
    assert "more than the car is worth" in assessment["message"]


def test_a_submit_the_queue_refused_fails_the_claim_and_can_be_retried(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given a claim with a photo, and a job queue that is down
    claim_id, headers = open_claim(client)
    add_photos(client, claim_id, headers, images.jpeg(color=(90, 90, 10)))

    def down(*args: object, **kwargs: object) -> None:
        raise ConnectionError("broker unreachable")

    monkeypatch.setattr(assess_claim, "apply_async", down)
    # when the policyholder submits
    refused = client.post(
        f"/v1/claims/{claim_id}/submit",
        headers={**headers, "Idempotency-Key": "submit-retry-1-5b7d4e21"},
    )
    # then the answer is a 503 to retry, and the claim says the assessment did not happen
    assert refused.status_code == 503 and refused.headers["Retry-After"]
    assert client.get(f"/v1/claims/{claim_id}", headers=headers).json()["status"] == "failed"
    # and once the queue is back, the same request goes through
    monkeypatch.undo()
    again = client.post(
        f"/v1/claims/{claim_id}/submit",
        headers={**headers, "Idempotency-Key": "submit-retry-1-5b7d4e21"},
    )
    assert again.status_code == 202
    assert assess_claim.run(again.json()["job"]["id"]) == "done"
