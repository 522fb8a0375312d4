"""A worker's first job keeps its lease while the pricing policy loads.

The policy (catalog, rules, triage) is read and validated once per process, on first use:
2.7 s on the 2-core CPU of 2026-12-02. A worker whose first job loaded it after the lease
stopped being renewed lost the job to the stale-job sweep at the last step and ran it again
(`tests/e2e/test_worker_e2e.py` saw three attempts where two were due). Here the load is made
slower than three leases, and a sweep runs all along.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from cdat.pipeline import AssessmentPolicy
from cdat.settings import Settings
from mobile_api import runtime as runtime_module
from mobile_api.api.app import create_app
from mobile_api.runtime import Runtime
from mobile_api.storage import models
from mobile_api.worker import tasks
from tests import images, services
from tests.conftest import make_settings, open_claim, upload
from tests.migrated import migrated

pytestmark = [pytest.mark.services]

LEASE_S = 0.5
SWEEP_S = 0.1
POLICY_LOAD_S = 3 * LEASE_S


@pytest.fixture
def postgres_settings(tmp_path: Path) -> Iterator[Settings]:
    with services.fresh_postgres_database(migrated=True) as url:
        migrated(url)
        yield make_settings(
            tmp_path, database_url=url, job_lease_seconds=LEASE_S, stale_job_scan_seconds=SWEEP_S
        )


def test_the_first_job_of_a_worker_is_not_lost_while_its_policy_loads(
    postgres_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given a submitted claim (the API has its own runtime)...
    api = Runtime.build(postgres_settings)
    try:
        with TestClient(create_app(postgres_settings, api)) as client:
            claim_id, headers = open_claim(client)
            upload(client, claim_id, headers, images.jpeg())
            monkeypatch.setattr(tasks.assess_claim, "delay", lambda job_id: None)
            submitted = client.post(f"/v1/claims/{claim_id}/submit", headers=headers)
            job_id = submitted.json()["job"]["id"]
        # ... a fresh worker process's runtime, whose policy loads slower than three leases
        slow_load = runtime_module.load_policy

        def load_policy(settings: Settings) -> AssessmentPolicy:
            time.sleep(POLICY_LOAD_S)
            return slow_load(settings)

        monkeypatch.setattr(runtime_module, "load_policy", load_policy)
        worker = runtime_module.install(Runtime.build(postgres_settings))
        resent: list[str] = []
        monkeypatch.setattr(tasks.assess_claim, "delay", resent.append)
        # ... and the stale-job sweep running beside it
        stop = threading.Event()

        def sweep() -> None:
            while not stop.wait(SWEEP_S):
                tasks.sweep(worker)

        sweeper = threading.Thread(target=sweep, daemon=True)
        sweeper.start()
        # when the worker runs its first job
        try:
            outcome = tasks.assess_claim.run(job_id)
        finally:
            stop.set()
            sweeper.join(timeout=10)
        # then it finishes that run: the sweep never took the job back
        with worker.sessions() as session:
            job = session.get_one(models.Job, job_id)
            state, attempts = job.state, job.attempts
        worker.dispose()
    finally:
        api.dispose()
    assert (outcome, state, attempts, resent) == ("done", "succeeded", 1, [])
