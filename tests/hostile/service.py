"""One app over a throw-away SQLite database, shared by many hostile requests, plus the
measures the hostile tests compare: what is stored before and after a request."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import func, select

from cdat.settings import Settings
from mobile_api.api.app import create_app
from mobile_api.runtime import Runtime
from mobile_api.storage import models
from mobile_api.worker.tasks import assess_claim
from tests.conftest import open_claim
from tests.migrated import migrated

# Cases run per hostile suite, printed at the end of the pytest run (see conftest.py).
CASES_RUN: Counter[str] = Counter()
# HTTP answers the hostile uploads got, so a run shows it reached both the accept and refuse paths.
ANSWERS: Counter[int] = Counter()


@dataclass
class Service:
    client: TestClient
    runtime: Runtime

    @property
    def settings(self) -> Settings:
        return self.runtime.settings


@contextmanager
def hostile_service(settings: Settings) -> Iterator[Service]:
    migrated(settings.resolved_database_url)
    rt = Runtime.build(settings)
    try:
        with TestClient(create_app(settings, rt)) as client:
            yield Service(client, rt)
    finally:
        rt.dispose()


def stored_state(service: Service) -> dict[str, int]:
    """Row counts of every table a request could touch, the revisions, and the blob files."""
    counted = (
        models.Claim,
        models.Photo,
        models.Job,
        models.AssessmentRecord,
        models.IdempotencyRecord,
        models.PhotoHash,
        models.WebhookDelivery,
    )
    with service.runtime.sessions() as session:
        state = {
            table.__tablename__: session.scalar(select(func.count()).select_from(table)) or 0
            for table in counted
        }
        state["revision_sum"] = session.scalar(select(func.sum(models.Claim.revision))) or 0
    state["blob_files"] = _files(service.settings.blob_dir)
    return state


def _files(root: Path) -> int:
    return sum(1 for path in root.rglob("*") if path.is_file()) if root.exists() else 0


def upload_one(
    service: Service, claim_id: str, headers: dict[str, str], name: str, data: bytes
) -> tuple[int, dict[str, Any]]:
    files = [("files", (name, data, "application/octet-stream"))]
    response = service.client.post(f"/v1/claims/{claim_id}/photos", files=files, headers=headers)
    ANSWERS[response.status_code] += 1
    return response.status_code, response.json()


def assess_in_process(service: Service, claim_id: str, headers: dict[str, str]) -> models.Job:
    """Submit the claim and run its job here, as a worker would; returns the finished job."""
    response = service.client.post(f"/v1/claims/{claim_id}/submit", headers=headers)
    assert response.status_code == 202, response.text
    job_id = response.json()["job"]["id"]
    assert assess_claim.run(job_id) == "done"
    with service.runtime.sessions() as session:
        return session.get_one(models.Job, job_id)


def new_claim(service: Service) -> tuple[str, dict[str, str]]:
    return open_claim(service.client)
