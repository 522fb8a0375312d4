"""The policyholder API's quick check of each uploaded photo, as the capture page has it:
on SQLite and PostgreSQL (`stack`)."""

from __future__ import annotations

from typing import Any

from mobile_api.capture.quick_check import run_check
from mobile_api.storage import models
from tests.api.backends import Stack
from tests.capture import photos
from tests.conftest import open_claim

STEP_BACK = "This looks like a close-up. For this photo, step back"


def _upload(stack: Stack, claim_id: str, owner: dict[str, str], *data: bytes, **form: str) -> Any:
    files = [("files", (f"p{i}.jpg", d, "image/jpeg")) for i, d in enumerate(data)]
    return stack.client.post(f"/v1/claims/{claim_id}/photos", files=files, data=form, headers=owner)


def _check(stack: Stack, claim_id: str, photo_id: str, owner: dict[str, str]) -> dict[str, Any]:
    answer = stack.client.get(f"/v1/claims/{claim_id}/photos/{photo_id}/check", headers=owner)
    assert answer.status_code == 200, answer.text
    found: dict[str, Any] = answer.json()
    return found


def _photo_count(stack: Stack, claim_id: str) -> int:
    with stack.runtime.sessions() as session:
        return session.query(models.Photo).filter_by(claim_id=claim_id).count()


def test_each_uploaded_photo_gets_a_quick_check_with_plain_words(stack: Stack) -> None:
    # given a claim, a blurred photo with no shot named and a close-up taken as an overview
    claim_id, owner = open_claim(stack.client)
    blurred = _upload(stack, claim_id, owner, photos.blurred_car()).json()["photos"][0]["id"]
    close = _upload(stack, claim_id, owner, photos.car(0), shot="front_left")
    assert close.status_code == 201, close.text
    close_id = close.json()["photos"][0]["id"]
    # when the photos are uploaded, each check waits for the worker
    assert _check(stack, claim_id, blurred, owner)["state"] == "pending"
    # and once the worker has run them
    for photo_id in (blurred, close_id):
        assert run_check(stack.runtime, photo_id) == "done"
    # then each says what to do about the photo, in codes and in words
    first = _check(stack, claim_id, blurred, owner)
    assert first["shot"] == "extra" and first["state"] == "done"
    assert [i["code"] for i in first["issues"]] == ["blurry"]
    assert "blurred" in first["issues"][0]["message"]
    second = _check(stack, claim_id, close_id, owner)
    assert second["shot"] == "front_left"
    assert [i["code"] for i in second["issues"]] == ["not_whole_car"]
    assert second["issues"][0]["message"].startswith(STEP_BACK)
    # and an adjuster reads the same
    assert _check(stack, claim_id, close_id, stack.staff)["issues"] == second["issues"]


def test_a_heavily_compressed_photo_is_told_to_send_the_original(stack: Stack) -> None:
    # given a claim and the same photo saved at JPEG quality 25, as a chat app may pass it on
    claim_id, owner = open_claim(stack.client)
    squeezed = _upload(stack, claim_id, owner, photos.compressed_car(25), shot="extra")
    assert squeezed.status_code == 201, squeezed.text
    photo_id = squeezed.json()["photos"][0]["id"]
    # when the worker checks it
    assert run_check(stack.runtime, photo_id) == "done"
    # then the claimant is asked for the original photo
    issues = _check(stack, claim_id, photo_id, owner)["issues"]
    assert [i["code"] for i in issues] == ["compressed"]
    assert "Send the original" in issues[0]["message"]
    # and the same photo as the camera saved it, on a claim of its own, passes
    other_claim, other_owner = open_claim(stack.client)
    original = _upload(stack, other_claim, other_owner, photos.compressed_car(92), shot="extra")
    original_id = original.json()["photos"][0]["id"]
    assert run_check(stack.runtime, original_id) == "done"
    assert _check(stack, other_claim, original_id, other_owner)["issues"] == []


def test_a_retake_keeps_its_shot_and_gets_its_own_check(stack: Stack) -> None:
    # given a close-up taken as the front-left overview, told to step back
    claim_id, owner = open_claim(stack.client)
    first = _upload(stack, claim_id, owner, photos.car(0), shot="front_left")
    first_id = first.json()["photos"][0]["id"]
    # when a farther photo replaces it
    files = {"file": ("r.jpg", photos.farther_car(photos.FARTHER[0]), "image/jpeg")}
    put = stack.client.put(f"/v1/claims/{claim_id}/photos/{first_id}", files=files, headers=owner)
    assert put.status_code == 200, put.text
    new_id = put.json()["photo"]["id"]
    assert run_check(stack.runtime, new_id) == "done"
    # then the retake stands for the same shot and looks good
    check = _check(stack, claim_id, new_id, owner)
    assert (check["shot"], check["issues"]) == ("front_left", [])


def test_a_bad_shot_is_refused_and_stores_nothing(stack: Stack) -> None:
    claim_id, owner = open_claim(stack.client)
    cases = [
        ((photos.car(0),), {"shot": "roof"}, "unknown shot 'roof'"),
        ((photos.car(0), photos.car(2)), {"shot": "damage_1"}, "send one file with it"),
    ]
    for data, form, message in cases:
        answer = _upload(stack, claim_id, owner, *data, **form)
        assert answer.status_code == 422, answer.text
        error = answer.json()["error"]
        assert message in error["message"] and error["field"] == "shot"
    assert _photo_count(stack, claim_id) == 0


def test_a_check_of_no_such_photo_is_a_404(stack: Stack) -> None:
    claim_id, owner = open_claim(stack.client)
    answer = stack.client.get(f"/v1/claims/{claim_id}/photos/nope/check", headers=owner)
    assert answer.status_code == 404
    assert "no quick check for photo nope" in answer.json()["error"]["message"]
    # a wait longer than the API allows is refused, not held
    url = f"/v1/claims/{claim_id}/photos/nope/check?wait=31"
    assert stack.client.get(url, headers=owner).status_code == 422


def test_a_removed_photo_has_no_check_to_read(stack: Stack) -> None:
    # given a photo and its check, then the photo removed from the claim
    claim_id, owner = open_claim(stack.client)
    photo_id = _upload(stack, claim_id, owner, photos.car(0)).json()["photos"][0]["id"]
    assert _check(stack, claim_id, photo_id, owner)["photo_id"] == photo_id
    gone = stack.client.delete(f"/v1/claims/{claim_id}/photos/{photo_id}", headers=owner)
    assert gone.status_code == 204
    # then its check is gone with it
    url = f"/v1/claims/{claim_id}/photos/{photo_id}/check"
    assert stack.client.get(url, headers=owner).status_code == 404
