"""Impossible claim facts are refused at intake; unusual ones are priced but sent to a person.

The choice: a policyholder who mistypes a year should be told at once, so what cannot be
true is a 422 naming the field; what can be true but is a known red flag (late notice, a
very old car) is a triage reason with its evidence, never a refusal of a real claim.
"""

from __future__ import annotations

from datetime import date, timedelta

from fastapi.testclient import TestClient

from mobile_api.worker.tasks import assess_claim
from tests import images
from tests.conftest import claim_body, open_claim, upload


def vehicle(year: int) -> dict[str, object]:
    return {"make": "Maruti", "model": "Swift", "year": year, "body_type": "hatchback"}


def test_impossible_years_and_dates_are_refused_by_name(client: TestClient) -> None:
    next_year = date.today().year + 1
    # when a claim names a model year after next year, or a loss before the model existed
    future_model = client.post("/v1/claims", json=claim_body(vehicle=vehicle(next_year + 1)))
    before_model = client.post(
        "/v1/claims", json=claim_body(loss_date="2015-03-01", vehicle=vehicle(2021))
    )
    # then each is a 422 naming the field, with what to check
    assert (future_model.status_code, before_model.status_code) == (422, 422)
    assert future_model.json()["error"]["field"] == "vehicle.year"
    assert before_model.json()["error"]["field"] == "vehicle"
    assert "did not exist on the loss date" in before_model.json()["error"]["message"]
    # while next year's model, bought this year, is fine
    assert client.post("/v1/claims", json=claim_body(vehicle=vehicle(next_year))).is_success


def assessed_reasons(client: TestClient, staff: str, **overrides: object) -> tuple[str, str]:
    """Status and reasons of the assessed claim, as an adjuster sees them."""
    claim_id, headers = open_claim(client, **overrides)
    loss = str(overrides.get("loss_date", "2026-11-20")).replace("-", ":")
    photo = images.jpeg(exif={0x9003: f"{loss} 10:00:00"})
    assert upload(client, claim_id, headers, photo).is_success
    job = client.post(f"/v1/claims/{claim_id}/submit", headers=headers).json()["job"]["id"]
    assess_claim.run(job)
    staff_view = {"Authorization": f"Bearer {staff}"}
    claim = client.get(f"/v1/adjuster/claims/{claim_id}", headers=staff_view).json()
    return claim["status"], claim["status_reason"]


def test_late_notice_and_very_old_cars_go_to_review(client: TestClient, staff_token: str) -> None:
    # given a claim opened today for a loss 200 days ago, and one for a 1960 car
    long_ago = (date.today() - timedelta(days=200)).isoformat()
    late = assessed_reasons(client, staff_token, loss_date=long_ago)
    old = assessed_reasons(client, staff_token, vehicle=vehicle(1960))
    # then both are priced but sent to a person, saying why
    assert late[0] == old[0] == "needs_review"
    assert "reported 200 days after it happened" in late[1]
    assert "years old at the loss" in old[1]
