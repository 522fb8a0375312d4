"""Issue 33 (the third security probe): each finding pinned by the request that showed it,
on SQLite and PostgreSQL."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from mobile_api.api.app import create_app
from mobile_api.auth import new_id
from mobile_api.cli.commands import uvicorn_options
from mobile_api.queues import deliveries
from mobile_api.queues.webhooks import WebhookRejected, check_destination
from mobile_api.runtime import Runtime
from mobile_api.storage import models
from mobile_api.storage.db import transaction
from mobile_api.worker.tasks import assess_claim
from tests import images
from tests.api.backends import Stack
from tests.api.test_claims import upload
from tests.conftest import claim_body, make_settings, open_claim
from tests.live import live_server
from tests.migrated import migrated
from tests.web.conftest import open_flagged_claim, sign_in


def _error(response: object) -> dict[str, object]:
    body = response.json()  # type: ignore[attr-defined]
    assert set(body) == {"error"}, body
    error: dict[str, object] = body["error"]
    return error


@pytest.mark.parametrize("method", ["POST", "PUT"])
def test_a_nul_in_the_claim_id_of_an_upload_is_a_4xx(stack: Stack, method: str) -> None:
    # given a staff token, which passes the upload guard's credential check
    path = "/v1/claims/a%00b/photos" + ("/p1" if method == "PUT" else "")
    field = "file" if method == "PUT" else "files"
    files = [(field, ("a.jpg", images.jpeg(100, 100), "image/jpeg"))]
    # when a photo is sent to a claim id holding a NUL
    answer = stack.client.request(method, path, files=files, headers=stack.staff)
    # then the claim is simply not found: a 404, not a database error
    assert answer.status_code == 404, answer.text
    assert _error(answer)["code"] == "not_found"


@pytest.mark.parametrize("value", ["NaN", "sNaN", "nan", "-Infinity", "inf"])
def test_a_non_finite_queue_amount_is_an_inline_422(stack: Stack, value: str) -> None:
    # given a signed-in adjuster
    assert sign_in(stack.client).status_code == 303
    # when the review queue is filtered by an amount that is not a finite number
    answer = stack.client.get("/adjuster/", params={"min_amount": value})
    # then the page says so next to the filter
    assert answer.status_code == 422, answer.text[:300]
    assert "min_amount must be a number" in answer.text


def test_a_huge_integer_in_a_drawn_polygon_is_an_inline_422(stack: Stack) -> None:
    # given a flagged claim open in the workspace
    flagged = open_flagged_claim(stack.client)
    assert sign_in(stack.client).status_code == 303
    page = stack.client.get(f"/adjuster/claims/{flagged.claim_id}")
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert csrf is not None
    # when the adjuster adds a damage whose outline holds a 400-digit integer
    huge = "9" * 400
    answer = stack.client.post(
        f"/adjuster/claims/{flagged.claim_id}/damages/{flagged.photo_ids[0]}/add",
        data={
            "csrf_token": csrf.group(1),
            "damage_type": "dent",
            "severity": "minor",
            "part": "back_bumper",
            "shape": f"[[0, 0], [{huge}, 0], [10, 10]]",
        },
        follow_redirects=False,
    )
    # then the form answers with the error inline, and nothing changed
    assert answer.status_code == 422, answer.text[:300]
    assert "finite numbers" in answer.text, re.findall(r"form-error[^<]*<", answer.text)


def test_webhook_refusal_does_not_say_where_a_name_resolves() -> None:
    # given a host name that resolves to loopback on the server's network
    # when a webhook to it is checked
    with pytest.raises(WebhookRejected) as refused:
        check_destination("http://localhost/x", allow_private=False)
    # then the refusal says the address is not allowed, and not which address it found
    message = str(refused.value)
    assert "not allowed" in message
    assert "127.0.0.1" not in message and "::1" not in message


def test_webhook_refusal_of_an_unresolvable_name_reads_the_same() -> None:
    # given two names: one internal (loopback), one that does not resolve at all
    with pytest.raises(WebhookRejected) as internal:
        check_destination("http://localhost/x", allow_private=False)
    with pytest.raises(WebhookRejected) as unknown:
        check_destination("http://no-such-host.invalid/x", allow_private=False)
    # then a caller cannot tell them apart: both are "not allowed", by name only
    assert str(internal.value).replace("localhost", "H") == str(unknown.value).replace(
        "no-such-host.invalid", "H"
    )


def test_claim_creation_limit_retry_after_matches_the_window(tmp_path: Path) -> None:
    # given a limit of two claims per address and hour
    settings = make_settings(tmp_path, claims_per_hour_per_address=2)
    migrated(settings.resolved_database_url)
    runtime = Runtime.build(settings)
    try:
        with TestClient(create_app(settings, runtime)) as client:
            answers = [client.post("/v1/claims", json=claim_body()) for _ in range(3)]
    finally:
        runtime.dispose()
    # when the third is refused
    refused = answers[-1]
    assert refused.status_code == 429
    # then Retry-After says the same wait as the message, about an hour, not 60 s
    said = re.search(r"try again in (\d+) s", str(_error(refused)["message"]))
    assert said is not None
    assert int(refused.headers["Retry-After"]) == int(said.group(1))
    assert int(refused.headers["Retry-After"]) > 3000


def test_the_webhook_secret_is_sealed_at_rest_and_still_signs(stack: Stack) -> None:
    # given a claim created with a webhook
    body = claim_body(webhook_url="https://hooks.example.com/cdat")
    created = stack.client.post("/v1/claims", json=body).json()
    secret = created["webhook_secret"]
    # when the claims table is read as a database copy would be
    with stack.runtime.engine.connect() as connection:
        dump = repr(connection.execute(text("SELECT * FROM claims")).all())
    # then the secret is not in it
    assert secret and secret not in dump
    # and a delivery is still signed with the secret the policyholder was given
    delivery_id = queue_webhook_for(stack.runtime, created["id"])
    leased = deliveries.acquire(stack.runtime, delivery_id)
    assert leased is not None and leased.secret == secret


def test_a_secret_stored_before_sealing_still_signs(stack: Stack) -> None:
    # given a claim whose webhook secret was stored in the clear (before migration 0004)
    body = claim_body(webhook_url="https://hooks.example.com/cdat")
    claim_id = stack.client.post("/v1/claims", json=body).json()["id"]
    with stack.runtime.engine.begin() as connection:
        connection.execute(
            text("UPDATE claims SET webhook_secret = 'plain-old-secret' WHERE id = :id"),
            {"id": claim_id},
        )
    # when a delivery is sent
    leased = deliveries.acquire(stack.runtime, queue_webhook_for(stack.runtime, claim_id))
    # then it signs with that secret
    assert leased is not None and leased.secret == "plain-old-secret"


def queue_webhook_for(runtime: Runtime, claim_id: str) -> str:
    with transaction(runtime.sessions) as session:
        delivery = models.WebhookDelivery(
            id=new_id(),
            claim_id=claim_id,
            event="claim.assessment_finished",
            url="https://hooks.example.com/cdat",
            payload={"event": "claim.assessment_finished", "claim_id": claim_id},
        )
        session.add(delivery)
        return delivery.id


def _dated(shade: int, width: int = 320) -> bytes:
    """A photo taken on the loss date; the fake analyzer's hash is its brightness."""
    return images.jpeg(width, 240, color=(shade,) * 3, exif={0x0132: "2026:11:20 10:00:00"})


def _assess(client: TestClient, claim_id: str, headers: dict[str, str]) -> None:
    submitted = client.post(f"/v1/claims/{claim_id}/submit", headers=headers)
    assert submitted.status_code == 202, submitted.text
    assert assess_claim.run(submitted.json()["job"]["id"]) == "done"


def _retake(
    client: TestClient, claim_id: str, headers: dict[str, str], old: str, new: bytes
) -> str:
    files = {"file": ("retake.jpg", new, "image/jpeg")}
    answer = client.put(f"/v1/claims/{claim_id}/photos/{old}", files=files, headers=headers)
    assert answer.status_code == 200, answer.text
    photo_id: str = answer.json()["photo"]["id"]
    return photo_id


def test_a_fraud_signal_outlives_the_retake_of_its_photo_until_cleared(stack: Stack) -> None:
    client = stack.client
    # given a photo assessed on one claim, which goes straight through
    reused = _dated(0x0F)
    first_id, first_headers = open_claim(client)
    upload(client, first_id, first_headers, reused)
    _assess(client, first_id, first_headers)
    assert client.get(f"/v1/claims/{first_id}", headers=first_headers).json()["status"] == (
        "assessed"
    )
    # and a second claim sent to review for reusing it
    claim_id, headers = open_claim(client)
    photo_id = upload(client, claim_id, headers, reused).json()["photos"][0]["id"]
    _assess(client, claim_id, headers)
    staff_url = f"/v1/adjuster/claims/{claim_id}"
    assert client.get(staff_url, headers=stack.staff).json()["status"] == "needs_review"
    # when the policyholder replaces the reused photo and submits again
    retake = _retake(client, claim_id, headers, photo_id, _dated(0x70))
    _assess(client, claim_id, headers)
    # then the claim stays in review, the signal carried over from the version that raised it
    staff = client.get(staff_url, headers=stack.staff).json()
    assert staff["status"] == "needs_review"
    assert staff["assessment"]["triage"]["priority"] > 0
    carried = [
        s
        for s in staff["assessment"]["fraud_signals"]
        if s["code"] == "duplicate_photo_other_claim"
    ]
    assert carried and carried[0]["evidence"]["raised_in_version"] == "1"
    # and the policyholder is not told which check fired, nor about the other claim
    mine = client.get(f"/v1/claims/{claim_id}", headers=headers)
    assert "duplicate" not in mine.text and first_id not in mine.text
    assert "fraud_signal" not in mine.text
    assert mine.json()["status"] == "needs_review"
    # when an adjuster clears the signals, and the policyholder retakes once more
    assert sign_in(client).status_code == 303
    page = client.get(f"/adjuster/claims/{claim_id}")
    assert "Clear these signals" in page.text
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert csrf is not None
    cleared = client.post(
        f"/adjuster/claims/{claim_id}/clear-fraud",
        data={"csrf_token": csrf.group(1), "note": "the same car, photographed by the garage"},
        follow_redirects=False,
    )
    assert cleared.status_code == 303, cleared.text[:300]
    _retake(client, claim_id, headers, retake, _dated(0x70, width=330))
    _assess(client, claim_id, headers)
    # then the cleared signal no longer holds the claim back
    after = client.get(staff_url, headers=stack.staff).json()
    assert after["assessment"]["fraud_signals"] == []
    assert after["status"] == "assessed"


def _csrf(client: TestClient, claim_id: str) -> str:
    page = client.get(f"/adjuster/claims/{claim_id}")
    found = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert found is not None
    return found.group(1)


def test_an_approval_of_photos_no_longer_on_the_claim_is_refused(stack: Stack) -> None:
    client = stack.client
    # given a claim assessed with photos A and B, waiting for review
    flagged = open_flagged_claim(client, (200, 200, 200), (30, 30, 30))
    photo_a, photo_b = flagged.photo_ids
    # when the policyholder replaces B with C and deletes A, and does not submit
    files = {"file": ("c.jpg", images.jpeg(320, 240, color=(120, 10, 10)), "image/jpeg")}
    replaced = client.put(
        f"/v1/claims/{flagged.claim_id}/photos/{photo_b}", files=files, headers=flagged.headers
    )
    assert replaced.status_code == 200, replaced.text
    removed = client.delete(
        f"/v1/claims/{flagged.claim_id}/photos/{photo_a}", headers=flagged.headers
    )
    assert removed.status_code == 204
    # then the adjuster's claim page warns that the photos changed, naming each change
    assert sign_in(client).status_code == 303
    page = client.get(f"/adjuster/claims/{flagged.claim_id}")
    assert 'id="photos-changed"' in page.text
    assert "added or retaken" in page.text
    assert page.text.count("removed or replaced</li>") == 2
    # and approving the A+B estimate is refused with a 409 that says why
    approve = f"/adjuster/claims/{flagged.claim_id}/approve"
    refused = client.post(
        approve, data={"csrf_token": _csrf(client, flagged.claim_id)}, follow_redirects=False
    )
    assert refused.status_code == 409, refused.text[:300]
    assert "photos changed after assessment version 1" in refused.text
    staff_url = f"/v1/adjuster/claims/{flagged.claim_id}"
    assert client.get(staff_url, headers=stack.staff).json()["status"] == "needs_review"
    # when the policyholder submits and the current photos are assessed
    _assess(client, flagged.claim_id, flagged.headers)
    # then the warning is gone and the approval goes through
    page = client.get(f"/adjuster/claims/{flagged.claim_id}")
    assert 'id="photos-changed"' not in page.text
    approved = client.post(
        approve,
        data={"csrf_token": _csrf(client, flagged.claim_id), "nothing_to_pay": "yes"},
        follow_redirects=False,
    )
    assert approved.status_code == 303, approved.text[:300]
    assert client.get(staff_url, headers=stack.staff).json()["status"] == "approved"


@pytest.mark.parametrize(
    ("trusted", "expected"),
    [([], [201, 201, 201, 429, 429]), (["127.0.0.1"], [201] * 5)],
    ids=["no-proxy-trusted", "loopback-proxy-trusted"],
)
def test_a_forwarded_address_counts_only_from_a_trusted_proxy(
    tmp_path: Path, trusted: list[str], expected: list[int]
) -> None:
    # given `cdat serve`'s server options, three claims per address and hour
    settings = make_settings(tmp_path, claims_per_hour_per_address=3, trusted_proxies=trusted)
    migrated(settings.resolved_database_url)
    runtime = Runtime.build(settings)
    try:
        app = create_app(settings, runtime)
        with live_server(app, **uvicorn_options(settings)) as base:
            # when one client on 127.0.0.1 opens five claims, each claiming another address
            answers = [
                httpx.post(
                    f"{base}/v1/claims",
                    json=claim_body(),
                    headers={"X-Forwarded-For": f"198.51.100.{i}"},
                    timeout=30,
                ).status_code
                for i in range(5)
            ]
    finally:
        runtime.dispose()
    # then the header moves the budget only when the peer is a configured proxy
    assert answers == expected
