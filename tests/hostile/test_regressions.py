"""Bugs the hostile suites found, each pinned by the smallest request that showed it."""

from __future__ import annotations

import logging
from datetime import datetime

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from cdat.settings import Settings
from mobile_api.runtime import Runtime
from mobile_api.storage import models
from mobile_api.worker.celery_app import celery, configure_celery
from mobile_api.worker.tasks import assess_claim
from tests import images
from tests.conftest import claim_body, open_claim, upload


def test_reconfiguring_celery_with_the_same_broker_still_publishes(settings: Settings) -> None:
    # given a process that configured Celery and published once
    configure_celery(settings)
    assess_claim.apply_async(args=["job-before"])
    # when it is configured again with the same broker URL (a second app lifespan)
    configure_celery(settings)
    # then publishing still works instead of failing with "Acquire on closed pool"
    assess_claim.apply_async(args=["job-after"])
    with celery.connection_for_read() as connection:
        queue = connection.SimpleQueue("assess")
        try:
            assert queue.qsize() == 2
        finally:
            queue.close()


def test_integers_past_the_database_range_are_422_not_500(
    client: TestClient, staff_token: str
) -> None:
    claim_id, headers = open_claim(client)
    staff = {"Authorization": f"Bearer {staff_token}"}
    listed = client.get("/v1/adjuster/claims", params={"offset": 2**63}, headers=staff)
    version = client.get(f"/v1/claims/{claim_id}/assessments/{2**63}", headers=headers)
    assert listed.status_code == version.status_code == 422
    assert {listed.json()["error"]["field"], version.json()["error"]["field"]} <= {
        "query.offset",
        "offset",
        "path.version",
        "version",
    }


def test_timestamps_carry_an_offset_on_sqlite(client: TestClient) -> None:
    # given a claim stored in SQLite, which keeps no time zone
    claim_id, headers = open_claim(client)
    # when it is read back
    claim = client.get(f"/v1/claims/{claim_id}", headers=headers).json()
    # then its timestamps are RFC 3339 date-times, with an explicit UTC offset
    for name in ("created_at", "updated_at"):
        parsed = datetime.fromisoformat(claim[name].replace("Z", "+00:00"))
        assert parsed.utcoffset() is not None, claim[name]


def test_served_photos_are_never_sniffed_as_another_type(client: TestClient) -> None:
    # given a valid PNG with HTML appended (a polyglot the upload check accepts)
    claim_id, headers = open_claim(client)
    polyglot = images.png(100, 100) + b"<html><script>alert(1)</script></html>"
    photo_id = upload(client, claim_id, headers, polyglot).json()["photos"][0]["id"]
    # when it is served back
    served = client.get(f"/v1/claims/{claim_id}/photos/{photo_id}", headers=headers)
    # then the browser is told not to guess the type
    assert served.headers["content-type"] == "image/png"
    assert served.headers["x-content-type-options"] == "nosniff"


def test_nul_characters_are_refused_by_name_and_logged_without_contact_details(
    client: TestClient, runtime: Runtime, caplog: pytest.LogCaptureFixture
) -> None:
    # given a claim to upload to
    claim_id, headers = open_claim(client)
    caplog.set_level(logging.DEBUG)
    # when a description, a contact name and an upload's file name carry a NUL
    described = client.post("/v1/claims", json=claim_body(description="rear\x00ended"))
    contact = {"name": "Asha\x00Rao", "email": "asha@example.com", "phone": "+91 98765 43210"}
    named = client.post("/v1/claims", json=claim_body(contact=contact))
    # (by hand: httpx would percent-encode the NUL, as a browser does; a script need not)
    multipart = (
        b'--b\r\nContent-Disposition: form-data; name="files"; filename="a\x00.jpg"\r\n'
        b"Content-Type: image/jpeg\r\n\r\n" + images.jpeg() + b"\r\n--b--\r\n"
    )
    uploaded = client.post(
        f"/v1/claims/{claim_id}/photos",
        content=multipart,
        headers={**headers, "Content-Type": "multipart/form-data; boundary=b"},
    )
    # then each is a 422 naming the field, and nothing was stored
    assert (described.status_code, named.status_code, uploaded.status_code) == (422, 422, 422)
    assert described.json()["error"]["field"] == "description"
    assert named.json()["error"]["field"] == "contact.name"
    assert uploaded.json()["error"]["field"] == "files"
    with runtime.sessions() as session:
        assert session.scalar(select(func.count()).select_from(models.Claim)) == 1
        assert session.scalar(select(func.count()).select_from(models.Photo)) == 0
    # and no log line carries the policyholder's contact details
    logged = "\n".join(record.getMessage() + str(record.exc_info) for record in caplog.records)
    assert "asha@example.com" not in logged and "98765" not in logged


def test_a_nul_in_a_workspace_form_is_a_4xx(client: TestClient) -> None:
    # given the sign-in form
    web = TestClient(client.app, base_url="https://testserver")
    form = web.get("/adjuster/login")
    token = form.text.split('name="csrf_token" value="')[1].split('"')[0]
    # when an e-mail with a NUL is sent
    answer = web.post(
        "/adjuster/login",
        data={"email": "ada\x00@insurer.example", "password": "x" * 12, "csrf_token": token},
    )
    # then it is refused as a client error, not a 500
    assert 400 <= answer.status_code < 500


@pytest.mark.parametrize(
    ("override", "field"),
    [
        ({"loss_location": {"latitude": 0.0, "longitude": False}}, "loss_location.longitude"),
        ({"loss_location": {"latitude": True, "longitude": 0.0}}, "loss_location.latitude"),
    ],
)
def test_a_boolean_where_the_schema_says_number_is_422_not_a_stored_claim(
    client: TestClient, override: dict[str, object], field: str
) -> None:
    # given a claim body whose coordinate is a JSON boolean (schemathesis' negative case)
    # when it is posted
    response = client.post("/v1/claims", json=claim_body(**override))
    # then it is refused by name, as the schema promises, instead of stored as 0 or 1
    assert response.status_code == 422, response.text
    assert response.json()["error"]["field"] == field


@pytest.mark.parametrize(
    ("path", "query", "field"),
    [
        ("/v1/claims/{claim}", "since_revision=0&since_revision=0", "since_revision"),
        ("/v1/claims/{claim}", "wait=0&since_revision=1&wait=5", "wait"),
        ("/v1/adjuster/claims", "limit=5&limit=50", "limit"),
    ],
)
def test_a_query_parameter_given_twice_is_422_naming_it(
    client: TestClient, staff_token: str, path: str, query: str, field: str
) -> None:
    # given a claim, its policyholder and an adjuster
    claim_id, headers = open_claim(client)
    staff = {"Authorization": f"Bearer {staff_token}"}
    caller = staff if path.startswith("/v1/adjuster") else headers
    # when a one-valued query parameter comes twice (schemathesis' negative case: the
    # schema says integer, the caller sent a list, and the app silently took the last)
    response = client.get(f"{path.format(claim=claim_id)}?{query}", headers=caller)
    # then it is refused by name instead of answered with one of the two values
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] == "validation_error" and error["field"] == field
    assert "more than once" in error["message"]
    # and the same parameter given once is still answered
    single = client.get(f"{path.format(claim=claim_id)}?{field}=1", headers=caller)
    assert single.status_code == 200, single.text
