"""Adjuster workspace fixtures: a staff user with a password, and a claim the machine flagged."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from fastapi.testclient import TestClient

from cdat.settings import Settings
from mobile_api.api.app import create_app
from mobile_api.auth import Role, hash_password
from mobile_api.claims.service import create_staff
from mobile_api.runtime import Runtime
from mobile_api.worker.tasks import assess_claim
from tests import images
from tests.conftest import open_claim

PASSWORD = "correct horse battery staple"
EMAIL = "ada@insurer.example"


@dataclass
class Flagged:
    claim_id: str
    headers: dict[str, str]
    """The policyholder's bearer token."""
    photo_ids: list[str]


@pytest.fixture
def web(settings: Settings, runtime: Runtime) -> Iterator[TestClient]:
    # https: the session cookie is Secure, and httpx sends it over https only.
    with TestClient(create_app(settings, runtime), base_url="https://testserver") as client:
        yield client


@pytest.fixture
def adjuster(runtime: Runtime) -> str:
    create_staff(runtime, EMAIL, Role.ADJUSTER, name="Ada", password_hash=hash_password(PASSWORD))
    return EMAIL


def open_flagged_claim(client: TestClient, *colours: tuple[int, int, int]) -> Flagged:
    """A claim whose photos carry no capture time: the fraud rules send it to review."""
    claim_id, headers = open_claim(client)
    files = [
        ("files", (f"p{i}.jpg", images.jpeg(320, 240, color=c), "image/jpeg"))
        for i, c in enumerate(colours or ((200, 200, 200),))
    ]
    uploaded = client.post(f"/v1/claims/{claim_id}/photos", files=files, headers=headers)
    assert uploaded.status_code == 201, uploaded.text
    submitted = client.post(f"/v1/claims/{claim_id}/submit", headers=headers)
    assert submitted.status_code == 202, submitted.text
    assess_claim.run(submitted.json()["job"]["id"])
    claim = client.get(f"/v1/claims/{claim_id}", headers=headers).json()
    assert claim["status"] == "needs_review", claim["status_reason"]
    return Flagged(claim_id, headers, [p["id"] for p in uploaded.json()["photos"]])


@pytest.fixture
def flagged(web: TestClient) -> Flagged:
    return open_flagged_claim(web)


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found, "the page has no CSRF token"
    return found.group(1)


def sign_in(client: TestClient, email: str = EMAIL, password: str = PASSWORD):
    form = client.get("/adjuster/login")
    assert form.status_code == 200
    return client.post(
        "/adjuster/login",
        data={"email": email, "password": password, "csrf_token": csrf_of(form.text)},
        follow_redirects=False,
    )
