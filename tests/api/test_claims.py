"""Policyholder API through the real app (SQLite, local blobs, fake analyzer)."""

from __future__ import annotations

import io
from pathlib import Path

from fastapi.testclient import TestClient
from PIL import Image

from mobile_api.runtime import Runtime
from mobile_api.worker.tasks import assess_claim
from tests import images
from tests.conftest import claim_body, make_settings, open_claim, serving, upload


def test_create_claim_returns_id_and_token_that_reads_it(client: TestClient) -> None:
    # given a new claim
    claim_id, headers = open_claim(client)
    # when the policyholder reads it with the claim's token
    response = client.get(f"/v1/claims/{claim_id}", headers=headers)
    # then it is received, with the vehicle as submitted and no assessment yet
    assert response.status_code == 200
    claim = response.json()
    assert claim["status"] == "received"
    assert claim["vehicle"]["model"] == "Swift"
    assert claim["assessment"] is None and claim["photos"] == []


def test_create_with_same_idempotency_key_makes_one_claim(client: TestClient) -> None:
    headers = {"Idempotency-Key": "phone-retry-1-7Hq2xZ"}
    first = client.post("/v1/claims", json=claim_body(), headers=headers)
    second = client.post("/v1/claims", json=claim_body(), headers=headers)
    assert first.status_code == second.status_code == 201
    assert first.json()["id"] == second.json()["id"]


def test_malformed_fields_name_the_field(client: TestClient) -> None:
    body = claim_body(vehicle={"make": "A", "model": "B", "year": 1800, "body_type": "sedan"})
    response = client.post("/v1/claims", json=body)
    assert response.status_code == 422
    assert response.json()["error"]["field"] == "vehicle.year"
    broken = client.post(
        "/v1/claims", content=b"{not json", headers={"Content-Type": "application/json"}
    )
    assert broken.status_code == 422
    assert broken.json()["error"]["code"] == "validation_error"


def test_upload_keeps_dimensions_and_exif_and_stores_duplicates_once(
    client: TestClient, runtime: Runtime
) -> None:
    claim_id, headers = open_claim(client)
    photo = images.jpeg(
        200,
        150,
        exif={0x010F: "Pixel"},
        gps={1: "N", 2: (12.0, 58.0, 0.0), 3: "E", 4: (77.0, 35.0, 0.0)},
    )
    first = upload(client, claim_id, headers, photo, images.jpeg(color=(10, 10, 10)))
    assert first.status_code == 201, first.text
    stored = first.json()["photos"]
    assert (stored[0]["width"], stored[0]["height"]) == (200, 150)
    assert stored[0]["exif"]["Make"] == "Pixel"
    assert "GPSLatitude" not in stored[0]["exif"]  # a policyholder never gets locations back
    again = upload(client, claim_id, headers, photo)
    assert again.json() == {"photos": [], "duplicates": [stored[0]["id"]]}
    blobs = [p for p in runtime.settings.blob_dir.rglob("*") if p.is_file()]
    assert len(blobs) == 3  # two photos, and the first one's copy without its location
    served = client.get(f"/v1/claims/{claim_id}/photos/{stored[0]['id']}", headers=headers)
    assert served.status_code == 200 and served.content != photo
    assert 0x8825 not in Image.open(io.BytesIO(served.content)).getexif()


def test_adjusters_see_the_capture_location(client: TestClient, staff_token: str) -> None:
    claim_id, headers = open_claim(client)
    photo = images.jpeg(gps={1: "S", 2: (33.0, 52.0, 0.0), 3: "E", 4: (151.0, 12.0, 0.0)})
    photo_id = upload(client, claim_id, headers, photo).json()["photos"][0]["id"]
    staff = {"Authorization": f"Bearer {staff_token}"}
    claim = client.get(f"/v1/adjuster/claims/{claim_id}", headers=staff).json()
    assert abs(claim["photos"][0]["exif"]["GPSLatitude"] + 33.866667) < 1e-4
    served = client.get(f"/v1/claims/{claim_id}/photos/{photo_id}", headers=staff)
    assert served.content == photo


def test_upload_rate_limit_per_claim(tmp_path: Path) -> None:
    with serving(make_settings(tmp_path, upload_requests_per_minute=2)) as client:
        claim_id, headers = open_claim(client)
        for shade in (1, 2):
            uploaded = upload(client, claim_id, headers, images.jpeg(color=(shade, 0, 0)))
            assert uploaded.status_code == 201
        limited = upload(client, claim_id, headers, images.jpeg(color=(3, 0, 0)))
    assert limited.status_code == 429
    assert limited.json()["error"]["code"] == "rate_limited"
    assert limited.headers["Retry-After"]
    assert len(client.get(f"/v1/claims/{claim_id}", headers=headers).json()["photos"]) == 2


def test_bad_uploads_are_refused_with_codes_and_keep_stored_photos(
    client: TestClient, runtime: Runtime
) -> None:
    claim_id, headers = open_claim(client)
    assert upload(client, claim_id, headers, images.jpeg()).status_code == 201
    runtime.settings.max_upload_bytes = 50_000
    truncated = images.jpeg(400, 300, color=(200, 10, 10))[:-400]
    cases = {
        "text": (b"hello, not a photo", 415, "unsupported_media_type"),
        "truncated": (truncated, 422, "invalid_image"),
        "bomb": (images.png_header_only(60_000, 60_000), 422, "image_too_many_pixels"),
        "tiny": (images.png(10, 10), 422, "image_too_small"),
        "empty": (b"", 422, "validation_error"),
        "huge": (b"\xff\xd8\xff" + b"0" * 60_000, 413, "payload_too_large"),
    }
    for name, (data, status, code) in cases.items():
        response = upload(client, claim_id, headers, images.jpeg(color=(1, 2, 3)), data)
        assert response.status_code == status, (name, response.text)
        assert response.json()["error"]["code"] == code, name
        assert response.json()["error"]["message"]
    claim = client.get(f"/v1/claims/{claim_id}", headers=headers).json()
    assert len(claim["photos"]) == 1


def test_too_many_photos_on_a_claim(client: TestClient, runtime: Runtime) -> None:
    runtime.settings.max_photos_per_claim = 2
    claim_id, headers = open_claim(client)
    assert upload(client, claim_id, headers, images.jpeg(color=(1, 1, 1))).status_code == 201
    response = upload(
        client, claim_id, headers, images.jpeg(color=(2, 2, 2)), images.jpeg(color=(3, 3, 3))
    )
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "too_many_photos"


def test_tokens_open_only_their_own_claim(client: TestClient, staff_token: str) -> None:
    claim_a, headers_a = open_claim(client)
    claim_b, _ = open_claim(client)
    assert client.get(f"/v1/claims/{claim_a}").status_code == 401
    wrong = {"Authorization": "Bearer cdat_claim_forged"}
    assert client.get(f"/v1/claims/{claim_a}", headers=wrong).status_code == 401
    # another claim and a claim that does not exist look the same to a policyholder
    assert client.get(f"/v1/claims/{claim_b}", headers=headers_a).status_code == 403
    assert client.get("/v1/claims/doesnotexist", headers=headers_a).status_code == 403
    assert client.get("/v1/adjuster/claims", headers=headers_a).status_code == 403
    staff = {"Authorization": f"Bearer {staff_token}"}
    assert client.get(f"/v1/adjuster/claims/{claim_b}", headers=staff).status_code == 200
    assert client.get("/v1/adjuster/claims/doesnotexist", headers=staff).status_code == 404


def test_submit_is_idempotent_and_needs_photos(client: TestClient) -> None:
    claim_id, headers = open_claim(client)
    empty = client.post(f"/v1/claims/{claim_id}/submit", headers=headers)
    assert empty.status_code == 409
    upload(client, claim_id, headers, images.jpeg())
    retry = {**headers, "Idempotency-Key": "submit-1-9c55-0d8e6f"}
    first = client.post(f"/v1/claims/{claim_id}/submit", headers=retry)
    second = client.post(f"/v1/claims/{claim_id}/submit", headers=retry)
    assert first.status_code == second.status_code == 202
    assert first.json()["job"]["id"] == second.json()["job"]["id"]
    assert client.get(f"/v1/claims/{claim_id}", headers=headers).json()["status"] == "queued"


def test_assessment_versions_accumulate(client: TestClient, staff_token: str) -> None:
    # given an assessed claim
    claim_id, headers = open_claim(client)
    upload(client, claim_id, headers, images.jpeg(color=(40, 40, 40)))
    job_1 = client.post(f"/v1/claims/{claim_id}/submit", headers=headers).json()["job"]["id"]
    assert assess_claim.run(job_1) == "done"
    assert assess_claim.run(job_1).startswith("skipped")  # a redelivered message is a no-op
    # when another photo is added and the claim submitted again
    upload(client, claim_id, headers, images.jpeg(color=(250, 250, 250)))
    job_2 = client.post(f"/v1/claims/{claim_id}/submit", headers=headers).json()["job"]["id"]
    assess_claim.run(job_2)
    # then version 2 covers both photos and version 1 is still readable
    claim = client.get(f"/v1/claims/{claim_id}", headers=headers).json()
    assert [v["version"] for v in claim["assessment_versions"]] == [1, 2]
    assert len(claim["assessment"]["photos"]) == 2
    staff = {"Authorization": f"Bearer {staff_token}"}
    staff_view = client.get(f"/v1/adjuster/claims/{claim_id}", headers=staff).json()
    assert staff_view["assessment"]["model_versions"]["damage"] == "fake-damage-1"
    first = client.get(f"/v1/claims/{claim_id}/assessments/1", headers=headers).json()
    assert len(first["photo_ids"]) == 1 and first["job_id"] == job_1
    assert client.get(f"/v1/claims/{claim_id}/assessments/3", headers=headers).status_code == 404


def test_assessment_is_priced_triaged_and_flags_photos_reused_across_claims(
    client: TestClient, staff_token: str
) -> None:
    staff = {"Authorization": f"Bearer {staff_token}"}
    # given a photo already used on an assessed claim
    photo = images.jpeg(color=(60, 70, 80))
    first_id, first_headers = open_claim(client)
    upload(client, first_id, first_headers, photo)
    assess_claim.run(
        client.post(f"/v1/claims/{first_id}/submit", headers=first_headers).json()["job"]["id"]
    )
    first = client.get(f"/v1/adjuster/claims/{first_id}", headers=staff).json()["assessment"]
    assert first["estimate"]["currency"] == "INR"
    assert float(first["estimate"]["total"]) > 0
    assert first["estimate"]["lines"] and all(
        line["rule_id"] for line in first["estimate"]["lines"]
    )
    assert first["findings"][0]["part"] == "front_bumper"
    assert not [s for s in first["fraud_signals"] if s["code"] == "duplicate_photo_other_claim"]
    # when another claim submits the same photo
    second_id, second_headers = open_claim(client)
    upload(client, second_id, second_headers, photo)
    assess_claim.run(
        client.post(f"/v1/claims/{second_id}/submit", headers=second_headers).json()["job"]["id"]
    )
    claim = client.get(f"/v1/adjuster/claims/{second_id}", headers=staff).json()
    # then it goes to review with the other claim named as evidence, for staff
    signals = [
        s
        for s in claim["assessment"]["fraud_signals"]
        if s["code"] == "duplicate_photo_other_claim"
    ]
    assert signals and first_id in signals[0]["evidence"].values()
    assert claim["status"] == "needs_review"
    assert claim["assessment"]["triage"]["decision"] == "needs_review"
    assert claim["assessment"]["triage"]["reasons"]
