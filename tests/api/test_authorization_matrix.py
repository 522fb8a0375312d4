"""Every API endpoint x every caller: who may reach what.

Endpoints are read from the app's own OpenAPI schema, so a new endpoint is covered
(and must be classified below) the moment it is added.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from fastapi.testclient import TestClient

from tests import images
from tests.conftest import open_claim, upload

PUBLIC = {"/healthz", "/readyz", "/metrics", "/v1/claims"}
DENIED = {401, 403}


@dataclass(frozen=True)
class World:
    claim_id: str
    photo_id: str
    callers: dict[str, dict[str, str]]


@pytest.fixture
def world(client: TestClient, staff_token: str) -> World:
    claim_id, owner = open_claim(client)
    photo_id = upload(client, claim_id, owner, images.jpeg()).json()["photos"][0]["id"]
    _, stranger = open_claim(client)
    callers = {
        "anonymous": {},
        "forged": {"Authorization": "Bearer cdat_staff_not-a-real-token"},
        "owner": owner,
        "other_policyholder": stranger,
        "adjuster": {"Authorization": f"Bearer {staff_token}"},
    }
    return World(claim_id, photo_id, callers)


def expected_access(path: str, caller: str) -> bool:
    if path in PUBLIC:
        return True
    if caller in ("anonymous", "forged", "other_policyholder"):
        return False
    if path.startswith("/v1/adjuster"):
        return caller == "adjuster"
    if path.startswith("/v1/claims/{claim_id}"):
        return caller in ("owner", "adjuster")
    raise AssertionError(f"unclassified route {path}: add it to the matrix")


def endpoints(client: TestClient) -> list[tuple[str, str]]:
    paths = client.get("/openapi.json").json()["paths"]
    listed = [(method.upper(), path) for path, ops in paths.items() for method in ops]
    return [*listed, ("GET", "/metrics")]


def call(client: TestClient, method: str, path: str, world: World, headers: dict[str, str]):
    url = path.format(claim_id=world.claim_id, photo_id=world.photo_id, version=1)
    if path.endswith("/photos") and method == "POST":
        files = [("files", ("m.jpg", images.jpeg(color=(7, 7, 7)), "image/jpeg"))]
        return client.post(url, files=files, headers=headers)
    if path.endswith("/photos/{photo_id}") and method == "PUT":
        files = [("file", ("r.jpg", images.jpeg(color=(9, 9, 9)), "image/jpeg"))]
        return client.put(url, files=files, headers=headers)
    if path == "/v1/claims" and method == "POST":
        return client.post(url, json={}, headers=headers)
    return client.request(method, url, headers=headers)


def test_every_endpoint_for_every_caller(client: TestClient, world: World) -> None:
    checked = 0
    for method, path in endpoints(client):
        for caller, headers in world.callers.items():
            response = call(client, method, path, world, headers)
            if expected_access(path, caller):
                assert response.status_code not in DENIED, (method, path, caller)
            else:
                assert response.status_code in DENIED, (method, path, caller)
                assert world.claim_id not in response.text
            assert response.status_code < 500, (method, path, caller, response.text)
            checked += 1
    assert checked >= 40
