"""Bugs the hostile suites found, each pinned by the smallest request that showed it."""

from __future__ import annotations

from datetime import datetime

from fastapi.testclient import TestClient

from cdat.settings import Settings
from mobile_api.celery_app import celery, configure_celery
from mobile_api.tasks import assess_claim
from tests import images
from tests.api.test_claims import upload
from tests.conftest import open_claim


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
