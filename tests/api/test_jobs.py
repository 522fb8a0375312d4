"""Job outcomes, readiness, long-polling and webhooks through the real app."""

from __future__ import annotations

import json
import threading

import pytest
from celery.exceptions import Retry
from fastapi.testclient import TestClient
from sqlalchemy import select

from cdat.errors import ConfigurationError
from cdat.settings import DEFAULT_SECRET, Settings
from mobile_api.api.app import create_app
from mobile_api.queues.webhooks import verify
from mobile_api.runtime import Runtime
from mobile_api.storage import models
from mobile_api.worker.tasks import assess_claim, deliver_webhook
from tests import images
from tests.api.webhook_receiver import Receiver
from tests.conftest import claim_body, open_claim, submit, upload


def test_missing_model_fails_the_job_with_the_reason_and_allows_resubmit(
    settings: Settings, runtime: Runtime, staff_token: str
) -> None:
    # given a service started with no model installed
    settings.analyzer = "tests.fakes:build_missing_analyzer"
    with TestClient(create_app(settings, runtime)) as client:
        check_missing_model_flow(client, runtime, {"Authorization": f"Bearer {staff_token}"})


def check_missing_model_flow(client: TestClient, runtime: Runtime, staff: dict[str, str]) -> None:
    ready = client.get("/readyz")
    assert ready.status_code == 503
    assert "no damage model" in ready.json()["checks"]["models"]["detail"]
    claim_id, headers = open_claim(client)
    upload(client, claim_id, headers, images.jpeg())
    # when its assessment runs
    assess_claim.run(submit(client, claim_id, headers))
    # then the claim failed, staff see why, and no findings were invented
    claim = client.get(f"/v1/adjuster/claims/{claim_id}", headers=staff).json()
    assert claim["status"] == "failed"
    assert claim["progress"]["job"]["error_code"] == "model_unavailable"
    assert "no damage model" in claim["status_reason"]
    assert claim["assessment"] is None
    # and the policyholder is told, in plain words, that they can submit again
    mine = client.get(f"/v1/claims/{claim_id}", headers=headers).json()
    assert mine["status"] == "failed" and "submit again" in mine["status_reason"]
    # and once a model is installed, a resubmit succeeds without a restart
    runtime.settings.analyzer = "tests.fakes:build_fake_analyzer"
    assess_claim.run(submit(client, claim_id, headers))
    assert client.get(f"/v1/claims/{claim_id}", headers=headers).json()["assessment"] is not None
    assert client.get("/readyz").status_code == 200


def test_long_poll_returns_when_the_claim_changes(client: TestClient) -> None:
    claim_id, headers = open_claim(client)
    revision = client.get(f"/v1/claims/{claim_id}", headers=headers).json()["revision"]
    changed = threading.Timer(0.3, upload, (client, claim_id, headers, images.jpeg()))
    changed.start()
    response = client.get(
        f"/v1/claims/{claim_id}", params={"wait": 20, "since_revision": revision}, headers=headers
    )
    changed.join()
    assert response.json()["revision"] > revision
    assert len(response.json()["photos"]) == 1
    unchanged = client.get(
        f"/v1/claims/{claim_id}",
        params={"wait": 0.5, "since_revision": revision + 1},
        headers=headers,
    )
    assert unchanged.json()["revision"] == revision + 1


def test_webhook_is_signed_and_retried(client: TestClient, runtime: Runtime, receiver: str) -> None:
    created = client.post("/v1/claims", json=claim_body(webhook_url=receiver)).json()
    claim_id, secret = created["id"], created["webhook_secret"]
    headers = {"Authorization": f"Bearer {created['access_token']}"}
    upload(client, claim_id, headers, images.jpeg())
    assess_claim.run(submit(client, claim_id, headers))
    with runtime.sessions() as session:
        delivery = session.scalars(select(models.WebhookDelivery)).one()
    # the receiver first answers 500: the delivery stays pending and is retried
    with pytest.raises(Retry):
        deliver_webhook.run(delivery.id)
    assert deliver_webhook.run(delivery.id) == "delivered"
    body, signature = Receiver.received[-1]
    assert verify(secret, body, signature)
    assert not verify("wrong-secret", body, signature)
    assert json.loads(body)["status"] == "needs_review"


def test_production_refuses_default_secrets(settings: Settings) -> None:
    production = settings.model_copy(update={"environment": "production"})
    assert production.secret_key == DEFAULT_SECRET
    with pytest.raises(ConfigurationError, match="CDAT_SECRET_KEY"):
        create_app(production)
    ready = production.model_copy(update={"secret_key": "x" * 40})
    create_app(ready)


def test_production_webhooks_cannot_reach_internal_addresses(
    client: TestClient, runtime: Runtime
) -> None:
    runtime.settings.environment = "production"
    for url in ("http://127.0.0.1:9/hook", "http://169.254.169.254/latest", "http://10.0.0.8/x"):
        response = client.post("/v1/claims", json=claim_body(webhook_url=url))
        assert response.status_code == 422, url
        assert response.json()["error"]["code"] == "webhook_url_not_allowed"
    runtime.settings.webhook_allowed_hosts = ["127.0.0.1"]
    allowed = client.post("/v1/claims", json=claim_body(webhook_url="http://127.0.0.1:9/hook"))
    assert allowed.status_code == 201
