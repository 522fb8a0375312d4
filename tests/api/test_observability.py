"""Metrics and structured logs."""

from __future__ import annotations

import json
import logging

from fastapi.testclient import TestClient

from mobile_api.logs import JsonFormatter, log_context
from mobile_api.worker.tasks import assess_claim
from tests import images
from tests.conftest import open_claim, upload


def metric_value(text: str, name: str, **labels: str) -> float | None:
    for line in text.splitlines():
        if line.startswith(f"{name}{{") and all(f'{k}="{v}"' in line for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
        if not labels and line.startswith(f"{name} "):
            return float(line.rsplit(" ", 1)[1])
    return None


def test_metrics_count_requests_jobs_and_rejections(client: TestClient) -> None:
    # given one assessed claim and one refused upload
    claim_id, headers = open_claim(client)
    upload(client, claim_id, headers, images.jpeg())
    assess_claim.run(
        client.post(f"/v1/claims/{claim_id}/submit", headers=headers).json()["job"]["id"]
    )
    client.get(f"/v1/claims/{claim_id}", headers=headers)
    upload(client, claim_id, headers, b"not an image")
    # when Prometheus scrapes
    text = client.get("/metrics").text
    # then routes are labelled by template, jobs by state, rejections by reason
    count = metric_value(
        text,
        "cdat_http_request_duration_seconds_count",
        route="/v1/claims/{claim_id}",
        method="GET",
        status="200",
    )
    assert count == 1.0
    assert metric_value(text, "cdat_jobs", state="succeeded") == 1.0
    assert metric_value(text, "cdat_jobs", state="failed") == 0.0
    assert metric_value(text, "cdat_photos_rejected_total", reason="unsupported_media_type") == 1.0
    assert metric_value(text, "cdat_assessment_duration_seconds", quantile="0.5") is not None
    assert "cdat_queue_depth" in text


def test_json_logs_carry_claim_and_job_ids() -> None:
    record = logging.LogRecord(
        "cdat.tasks", logging.INFO, __file__, 1, "assessment %s", ("ok",), None
    )
    with log_context(claim_id="c1", job_id="j1"):
        line = json.loads(JsonFormatter().format(record))
    assert line["claim_id"] == "c1" and line["job_id"] == "j1"
    assert line["message"] == "assessment ok" and line["level"] == "info"
    outside = json.loads(JsonFormatter().format(record))
    assert "claim_id" not in outside
