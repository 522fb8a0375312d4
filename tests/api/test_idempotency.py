"""Idempotency-Key: retries replay the first answer, to the caller who made it and nobody else."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select, text

from mobile_api.api.app import create_app
from mobile_api.runtime import Runtime
from mobile_api.storage import models
from tests import images
from tests.conftest import claim_body, make_settings, open_claim, upload
from tests.live import live_server, settings_on
from tests.migrated import migrated

KEY = "3f1c2a9e-5b7d-4e21-9c55-0d8e6f4a7b11"


def test_a_replay_answers_only_the_identical_request(client: TestClient) -> None:
    # given a claim created with a key
    first = client.post("/v1/claims", json=claim_body(), headers={"Idempotency-Key": KEY})
    assert first.status_code == 201
    # when the phone retries the same request with the same key
    retry = client.post("/v1/claims", json=claim_body(), headers={"Idempotency-Key": KEY})
    # then it gets the same claim and token back
    assert retry.status_code == 201 and retry.json() == first.json()
    # when someone else sends the key with any other request
    other = client.post(
        "/v1/claims", json=claim_body(policy_number="POL-999"), headers={"Idempotency-Key": KEY}
    )
    # then they get their own new claim: no token of the first, no hint the key was used
    assert other.status_code == 201
    assert other.json()["id"] != first.json()["id"]
    assert other.json()["access_token"] != first.json()["access_token"]


def test_no_secret_or_key_is_stored_in_the_clear(client: TestClient, runtime: Runtime) -> None:
    # given a claim with a webhook, created with a key
    body = claim_body(webhook_url="https://hooks.example.com/cdat")
    created = client.post("/v1/claims", json=body, headers={"Idempotency-Key": KEY}).json()
    # when the idempotency table is read as a database copy would be
    with runtime.engine.connect() as connection:
        rows = connection.execute(text("SELECT * FROM idempotency_keys")).all()
    dump = repr(rows)
    # then it holds a record, but neither the token, the webhook secret nor the key
    assert len(rows) == 1
    for secret in (created["access_token"], created["webhook_secret"], KEY, created["id"]):
        assert secret not in dump


@pytest.mark.parametrize(
    "key",
    [
        "",
        " ",
        "short",
        "aaaaaaaa",  # 8 characters: once accepted
        "3f1c2a9e-5b7d-4",  # 15
        "x" * 256,
        "naïve-key-with-accent",
        "a" * 16,  # long enough, but one repeated character
        "ab" * 20,
        "abcd" * 8,
    ],
)
def test_empty_or_malformed_keys_are_refused(
    client: TestClient, runtime: Runtime, key: str
) -> None:
    # when a request carries an empty, blank, short, long, non-ASCII or guessable key
    response = client.post(
        "/v1/claims", json=claim_body(), headers={"Idempotency-Key": key.encode()}
    )
    # then it is refused, naming the header, and nothing is stored
    assert response.status_code == 422
    assert response.json()["error"]["field"] == "Idempotency-Key"
    assert "random UUID" in response.json()["error"]["message"]
    with runtime.sessions() as session:
        assert session.scalar(select(func.count()).select_from(models.Claim)) == 0


@pytest.mark.parametrize("key", ["0f3a9c2e71b4d805", "phone-retry-7Hq2xZ", KEY])
def test_random_keys_of_16_characters_or_more_are_taken(client: TestClient, key: str) -> None:
    # when a claim is created with a random key of 16+ characters
    response = client.post("/v1/claims", json=claim_body(), headers={"Idempotency-Key": key})
    # then it is accepted
    assert response.status_code == 201, response.text


def test_keys_expire(tmp_path: Path) -> None:
    # given a service whose keys live 0.3 s
    settings = make_settings(tmp_path, idempotency_ttl_seconds=0.3)
    migrated(settings.resolved_database_url)
    with TestClient(create_app(settings)) as client:
        headers = {"Idempotency-Key": KEY}
        first = client.post("/v1/claims", json=claim_body(), headers=headers).json()
        # when the same request comes after the key expired
        time.sleep(0.4)
        later = client.post("/v1/claims", json=claim_body(), headers=headers).json()
    # then it is a new request
    assert later["id"] != first["id"]


def test_a_submit_key_is_scoped_to_its_claim(client: TestClient) -> None:
    # given two claims, each with a photo, and the first submitted with a key
    jobs: list[tuple[str, str]] = []
    for colour in ((200, 10, 10), (10, 200, 10)):
        claim_id, headers = open_claim(client)
        assert upload(client, claim_id, headers, images.jpeg(color=colour)).status_code == 201
        headers["Idempotency-Key"] = KEY
        # when each is submitted with the same key
        response = client.post(f"/v1/claims/{claim_id}/submit", headers=headers)
        assert response.status_code == 202, response.text
        jobs.append((claim_id, response.json()["job"]["id"]))
    # then the second claim got its own job, not a replay of the first claim's
    assert jobs[0][1] != jobs[1][1]


def concurrently(count: int, call: Callable[[], httpx.Response]) -> list[httpx.Response]:
    """`count` calls released together from their own threads."""
    barrier = threading.Barrier(count)
    answers: list[httpx.Response] = []
    lock = threading.Lock()

    def run() -> None:
        barrier.wait()
        answer = call()
        with lock:
            answers.append(answer)

    threads = [threading.Thread(target=run) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    return answers


@pytest.mark.services
@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_concurrent_retries_get_the_replayed_answer(tmp_path: Path, backend: str) -> None:
    with settings_on(backend, tmp_path) as settings:
        migrated(settings.resolved_database_url)
        runtime = Runtime.build(settings)
        try:
            with (
                live_server(create_app(settings, runtime)) as base,
                httpx.Client(base_url=base, timeout=30) as api,
            ):
                # given a claim with a photo
                headers = {"Idempotency-Key": KEY}
                created = concurrently(
                    6, lambda: api.post("/v1/claims", json=claim_body(), headers=headers)
                )
                claim = created[0].json()
                auth = {"Authorization": f"Bearer {claim['access_token']}"}
                files = [("files", ("a.jpg", images.jpeg(), "image/jpeg"))]
                assert api.post(
                    f"/v1/claims/{claim['id']}/photos", files=files, headers=auth
                ).is_success
                # when six retries of one submit arrive at the same moment
                submits = concurrently(
                    6,
                    lambda: api.post(
                        f"/v1/claims/{claim['id']}/submit", headers={**auth, **headers}
                    ),
                )
        finally:
            with runtime.sessions() as session:
                claims = session.scalar(select(func.count()).select_from(models.Claim))
                jobs = session.scalar(select(func.count()).select_from(models.Job))
            runtime.dispose()
    # then the concurrent creates made one claim and all got its answer
    assert [r.status_code for r in created] == [201] * 6
    assert {r.json()["access_token"] for r in created} == {claim["access_token"]}
    # and the concurrent submits made one job and all got the same 202
    assert [r.status_code for r in submits] == [202] * 6, [r.text for r in submits]
    assert len({r.json()["job"]["id"] for r in submits}) == 1
    assert (claims, jobs) == (1, 1)


def test_a_submit_the_queue_refused_runs_again_on_retry(
    client: TestClient, runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given a claim with a photo, and a broker that is down
    claim_id, headers = open_claim(client)
    assert upload(client, claim_id, headers, images.jpeg()).status_code == 201
    headers["Idempotency-Key"] = KEY

    def broker_down(*_: object, **__: object) -> None:
        raise ConnectionError("broker unreachable")

    monkeypatch.setattr("mobile_api.worker.tasks.assess_claim.apply_async", broker_down)
    # when the submit is refused, and retried with the same key once the broker is back
    refused = client.post(f"/v1/claims/{claim_id}/submit", headers=headers)
    monkeypatch.undo()
    retried = client.post(f"/v1/claims/{claim_id}/submit", headers=headers)
    # then the retry queued a job of its own instead of replaying the refused one
    assert refused.status_code == 503
    assert retried.status_code == 202, retried.text
    with runtime.sessions() as session:
        rows = session.execute(select(models.Job.id, models.Job.state)).all()
        jobs = {job_id: state for job_id, state in rows}
    assert jobs[retried.json()["job"]["id"]] == "queued"
    assert sorted(jobs.values()) == ["failed", "queued"]
