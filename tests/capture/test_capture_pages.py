"""The capture page over HTTP: the ways in, CSRF, uploads, idempotent retries, what a
claimant may see, and the staff API's one-time links. (The browser tests drive the same
pages on a phone; these cover the refusals quickly.)"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from cdat.settings import Settings
from mobile_api.capture import access
from mobile_api.runtime import Runtime
from mobile_api.storage import models
from tests import images
from tests.capture import photos
from tests.conftest import make_settings, open_claim

KEY = "3f1c2a9e-5b7d-4e21-9c55-0d8e6f4a7b11"
FORM = {
    "policy_number": "POL-12345",
    "loss_date": "2026-11-20",
    "description": "",
    "make": "Maruti",
    "model": "Swift",
    "year": "2021",
    "body_type": "hatchback",
    "name": "Asha Rao",
    "phone": "+91 98765 43210",
    "email": "",
}


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found, "the page has no CSRF token"
    return found.group(1)


def start(client: TestClient, **fields: str) -> Any:
    token = csrf_of(client.get("/capture/").text)
    return client.post(
        "/capture/start", data={**FORM, **fields, "csrf_token": token}, follow_redirects=False
    )


def signed_in(client: TestClient) -> str:
    """A self-service claim; returns the page's CSRF token."""
    assert start(client).status_code == 303
    page = client.get("/capture/claim")
    assert page.status_code == 200
    return csrf_of(page.text)


def upload(client: TestClient, csrf: str, data: bytes, shot: str = "front_left", **headers: str):
    return client.post(
        "/capture/claim/photos",
        data={"shot": shot},
        files={"file": ("p.jpg", data, "image/jpeg")},
        headers={"X-CSRF-Token": csrf, "Accept": "application/json", **headers},
    )


def test_start_form_names_each_bad_field_and_opens_nothing(web: TestClient, runtime: Runtime):
    # when the form is sent with a short policy number and a year that is not a number
    answer = start(web, policy_number="x", year="abc")
    # then it comes back 422 with both fields marked, and no claim exists
    assert answer.status_code == 422
    assert 'id="e-policy_number"' in answer.text and 'id="e-year"' in answer.text
    with runtime.sessions() as session:
        assert session.scalars(select(models.Claim)).all() == []


def test_start_form_needs_a_way_to_reach_the_claimant(web: TestClient) -> None:
    answer = start(web, phone="", email="")
    assert answer.status_code == 422
    assert "Give a phone number or an e-mail address" in answer.text


def test_start_form_without_its_csrf_cookie_is_refused(web: TestClient) -> None:
    token = csrf_of(web.get("/capture/").text)
    web.cookies.clear()
    answer = web.post("/capture/start", data={**FORM, "csrf_token": token})
    assert answer.status_code == 403
    assert "CSRF" in answer.text


def test_claim_page_needs_a_session(web: TestClient) -> None:
    answer = web.get("/capture/claim")
    assert answer.status_code == 401
    assert "Start a new claim" in answer.text


def test_upload_without_a_session_is_refused_before_the_body(web: TestClient) -> None:
    # a body far over the API's 1 MiB form limit: refused for who sends it, not its size
    answer = upload(web, "x", b"\xff" * (3 << 20))
    assert answer.status_code == 401
    assert answer.json()["error"]["code"] == "not_signed_in"


def test_upload_with_a_wrong_csrf_token_is_refused(web: TestClient, runtime: Runtime) -> None:
    signed_in(web)
    answer = upload(web, "not-the-token", photos.car(0))
    assert answer.status_code == 403
    with runtime.sessions() as session:
        assert session.scalars(select(models.Photo)).all() == []


def test_upload_refuses_an_unknown_shot_and_a_guessable_key(web: TestClient) -> None:
    csrf = signed_in(web)
    assert upload(web, csrf, photos.car(0), shot="roof").status_code == 422
    weak = upload(web, csrf, photos.car(0), **{"Idempotency-Key": "a" * 20})
    assert weak.status_code == 422
    assert "Idempotency-Key" in weak.json()["error"]["message"]


def test_a_retried_upload_answers_as_the_first_and_stores_one_photo(
    web: TestClient, runtime: Runtime
) -> None:
    csrf = signed_in(web)
    first = upload(web, csrf, photos.car(0), **{"Idempotency-Key": KEY})
    again = upload(web, csrf, photos.car(0), **{"Idempotency-Key": KEY})
    assert (first.status_code, again.status_code) == (201, 200)
    assert first.json()["photo_id"] == again.json()["photo_id"]
    assert first.json()["state"] == "pending"
    with runtime.sessions() as session:
        assert len(session.scalars(select(models.Photo)).all()) == 1


def test_the_same_file_for_a_second_shot_is_named_as_the_first(web: TestClient) -> None:
    csrf = signed_in(web)
    assert upload(web, csrf, photos.car(0)).status_code == 201
    answer = upload(web, csrf, photos.car(0), shot="rear_left")
    assert answer.status_code == 409
    assert answer.json()["messages"] == [
        "This is the same photo as “Front and left side”. Take a different one."
    ]


def test_status_shows_the_policyholder_view_only(web: TestClient, runtime: Runtime) -> None:
    from mobile_api.worker.tasks import assess_claim

    # given a claim the fraud rules sent to review (its photo has no capture time)
    csrf = signed_in(web)
    assert upload(web, csrf, photos.car(0, taken=None)).status_code == 201
    key = "9a2e40d1-7c3b-4f55-8e21-6b0c9d7e1a42"
    assert (
        web.post("/capture/claim/submit", data={"csrf_token": csrf, "submit_key": key}).status_code
        == 200
    )
    with runtime.sessions() as session:
        job = session.scalars(select(models.Job)).one()
    assess_claim.run(job.id)
    # when the claimant reads the status
    fragment = web.get("/capture/claim/status").text
    # then it says an adjuster reviews it, with no amount, rule or evidence
    assert 'data-status="needs_review"' in fragment
    assert "adjuster" in fragment
    for staff_only in ("capture_time_missing", "fraud_signal", "Estimate", "INR"):
        assert staff_only not in fragment


def test_a_link_opens_one_claim_once_and_not_after_it_expires(
    web: TestClient, runtime: Runtime, staff_token: str
) -> None:
    claim_id, owner = open_claim(web)
    staff = {"Authorization": f"Bearer {staff_token}"}
    path = f"/v1/adjuster/claims/{claim_id}/capture-link"
    # only staff make links, for claims that exist, for at most 14 days
    assert web.post(path, headers=owner).status_code == 403
    assert web.post(path).status_code == 401
    assert web.post("/v1/adjuster/claims/nope/capture-link", headers=staff).status_code == 404
    assert web.post(f"{path}?valid_hours=999", headers=staff).status_code == 422
    url = web.post(path, headers=staff).json()["url"]
    # the secret is in the fragment, which no browser sends to a server
    assert url.startswith("https://testserver/capture/link#")
    secret = url.split("#", 1)[1]

    def redeem(client: TestClient, secret: str) -> Any:
        token = csrf_of(client.get("/capture/link").text)
        return client.post("/capture/link", data={"secret": secret, "csrf_token": token})

    # redeeming it signs this device in; again on this device just opens the claim
    for _ in range(2):
        redeemed = redeem(web, secret)
        assert redeemed.status_code == 200 and "Photos of your car" in redeemed.text
    # a second device is refused
    web.cookies.clear()
    page = redeem(web, secret)
    assert page.status_code == 403
    assert "already used on another device" in page.text
    # and an unused link past its time is refused too
    late = web.post(path, headers=staff).json()["url"].split("#", 1)[1]
    with runtime.sessions() as session, session.begin():
        link = session.get_one(models.CaptureLink, access._digest(late))
        link.expires_at = datetime.now(UTC) - timedelta(seconds=1)
    assert redeem(web, late).status_code == 403
    with pytest.raises(access.LinkRefused):
        access.redeem_link(runtime, late)


def test_the_service_worker_and_assets_are_served_locally(web: TestClient) -> None:
    worker = web.get("/capture/sw.js")
    assert worker.status_code == 200 and "caches.open" in worker.text
    page = web.get("/capture/")
    for asset in re.findall(r'(?:src|href)="([^"#][^"]*)"', page.text):
        assert asset.startswith("/") and not asset.startswith("//"), asset
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert page.headers["cache-control"] == "no-store"


def test_a_flat_image_gets_words_for_the_claimant(web: TestClient, runtime: Runtime) -> None:
    from mobile_api.capture.quick_check import run_check

    csrf = signed_in(web)
    photo_id = upload(web, csrf, images.jpeg(640, 480, color=(10, 10, 10))).json()["photo_id"]
    assert run_check(runtime, photo_id) == "done"
    answer = web.get(f"/capture/claim/photos/{photo_id}/check").json()
    assert answer["messages"] == ["The photo is too dark. Take it in daylight or a well-lit place."]


def status_once_assessed(web: TestClient, runtime: Runtime) -> str:
    """A claim of one photo submitted from the capture page, assessed by the worker's task;
    the status fragment the claimant then reads."""
    from mobile_api.worker.tasks import assess_claim

    csrf = signed_in(web)
    assert upload(web, csrf, photos.car(0)).status_code == 201
    key = "0b6f3c1e-2d4a-4e8b-9f17-5a3c8e2d6b90"
    submitted = web.post("/capture/claim/submit", data={"csrf_token": csrf, "submit_key": key})
    assert submitted.status_code == 200
    with runtime.sessions() as session:
        job = session.scalars(select(models.Job)).one()
    assess_claim.run(job.id)
    return web.get("/capture/claim/status").text


class TestADamageThatCannotBeOnItsPart:
    @pytest.fixture
    def settings(self, tmp_path: Path) -> Settings:
        return make_settings(tmp_path, analyzer="tests.fakes:build_mismatched_fake_analyzer")

    def test_is_shown_as_damage_an_adjuster_will_confirm(
        self, web: TestClient, runtime: Runtime
    ) -> None:
        # given a claim whose model called a damage on the hood a broken lamp
        # when it is assessed and the claimant reads the status
        fragment = status_once_assessed(web, runtime)
        # then the finding names the part and says an adjuster confirms it, not the type
        assert "Damage on the hood: an adjuster will confirm what it is" in fragment
        assert "lamp broken" not in fragment


class TestASeverityReadOnCloseUps:
    @pytest.fixture
    def settings(self, tmp_path: Path) -> Settings:
        return make_settings(tmp_path, analyzer="tests.fakes:build_close_up_fake_analyzer")

    def test_is_shown_as_one_an_adjuster_will_confirm(
        self, web: TestClient, runtime: Runtime
    ) -> None:
        # given a claim whose only photo's severity was read as a close-up
        # when it is assessed and the claimant reads the status
        fragment = status_once_assessed(web, runtime)
        # then the finding names the damage and says an adjuster confirms how severe
        assert "Dent on the front bumper: an adjuster will confirm how severe" in fragment


class TestAQuickCheckWaitIsCapped:
    @pytest.fixture
    def settings(self, tmp_path: Path) -> Settings:
        return make_settings(tmp_path, long_poll_max_seconds=0.05)

    def test_as_the_claims_long_poll_is(
        self, web: TestClient, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        from mobile_api.capture import claim

        # given a photo whose quick check no worker has run, on a service whose long-polls
        # are capped at 0.05 s
        photo_id = upload(web, signed_in(web), images.jpeg()).json()["photo_id"]
        waited: list[float] = []
        real_wait = claim.wait_until

        async def recorded_wait(condition: Any, seconds: float) -> None:
            waited.append(seconds)
            await real_wait(condition, seconds)

        monkeypatch.setattr(claim, "wait_until", recorded_wait)
        # when the page asks for the check, willing to wait 30 s
        answer = web.get(f"/capture/claim/photos/{photo_id}/check?wait=30")
        # then it is held no longer than the service's cap, and answers that it is pending
        assert answer.status_code == 200
        assert answer.json()["state"] == "pending"
        assert waited == [0.05]


def test_every_string_the_pages_use_is_in_the_strings_module() -> None:
    from mobile_api.capture.strings import EN

    here = Path(access.__file__).parent
    code = [p for p in here.glob("*.py") if p.name != "strings.py"]  # it defines them
    sources = [p.read_text() for p in (*here.glob("templates/*.html"), *code)]
    used = {key for text in sources for key in re.findall(r'\bt\(\s*["\'](\w+)["\']', text)}
    assert used, "no t(...) call found"
    assert used - set(EN) == set()


class TestNoDamageOnPhotosOfTheWholeCar:
    @pytest.fixture
    def settings(self, tmp_path: Path) -> Settings:
        return make_settings(tmp_path, analyzer="tests.fakes:build_whole_car_fake_analyzer")

    def test_opens_the_close_ups_to_the_claimant_while_an_adjuster_waits(
        self, web: TestClient, runtime: Runtime
    ) -> None:
        # given a claim of one photo of the whole car, on which no damage was found
        fragment = status_once_assessed(web, runtime)
        assert 'data-status="needs_review"' in fragment and 'data-mode="capture"' in fragment
        # when the claimant opens the page
        page = web.get("/capture/claim").text
        # then it says why, and offers the close-up shots, with submit
        assert "Add a close-up of each damaged area and send the claim" in page
        assert 'name="shot" value="damage_1"' in page and 'action="/capture/claim/submit"' in page
        # and a close-up taken and sent queues the claim for a new assessment
        csrf = csrf_of(page)
        assert upload(web, csrf, photos.car(1), shot="damage_1").status_code == 201
        key = "5d2c7a10-8e4f-4b6a-9c3d-2f1e0a9b8c77"
        web.post("/capture/claim/submit", data={"csrf_token": csrf, "submit_key": key})
        with runtime.sessions() as session:
            claim = session.scalars(select(models.Claim)).one()
            jobs = session.scalars(select(models.Job)).all()
            assert claim.status == "queued" and len(jobs) == 2 and len(claim.photos) == 2


def test_a_claim_in_review_for_other_reasons_shows_its_status_only(
    web: TestClient, runtime: Runtime
) -> None:
    from mobile_api.worker.tasks import assess_claim

    # given a claim in review whose damage was found (its photo has no capture time)
    csrf = signed_in(web)
    assert upload(web, csrf, photos.car(0, taken=None)).status_code == 201
    key = "7e1d9c2b-4a6f-4d38-b5e0-3c8a2f1d9e64"
    web.post("/capture/claim/submit", data={"csrf_token": csrf, "submit_key": key})
    with runtime.sessions() as session:
        job = session.scalars(select(models.Job)).one()
    assess_claim.run(job.id)
    fragment = web.get("/capture/claim/status").text
    # then the page shows its status, and no shot to take
    assert 'data-status="needs_review"' in fragment and 'data-mode="status"' in fragment
    assert 'name="shot"' not in web.get("/capture/claim").text
