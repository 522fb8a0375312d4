"""Leased assessment jobs under a short lease on PostgreSQL (issue 32's probe, as a test).

Two workers of two processes each take jobs from an at-least-once queue while each also
sweeps for stale jobs every 0.1 s; the lease is 0.15 s, a photo takes up to 0.4 s and a
third of the runs stall (they stop renewing their lease, as a paused process would), so
leases run out under live runs, stale runs race the runs that replaced them, and the sweep
races completions. Whatever the interleaving: no deadlock, no duplicate-key error, no job
whose assessment was stored ends failed, and each job stores at most one assessment.
"""

from __future__ import annotations

import queue
import random
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from mobile_api.api.app import create_app
from mobile_api.queues import leases
from mobile_api.runtime import Runtime
from mobile_api.storage import models
from mobile_api.worker import tasks
from tests import images, services
from tests.conftest import make_settings, open_claim
from tests.migrated import migrated

pytestmark = [pytest.mark.services, pytest.mark.slow]

LEASE_S = 0.15
SWEEP_S = 0.1
CLAIMS = 30
WORKERS, PROCESSES_PER_WORKER = 2, 2
SETTLE_TIMEOUT_S = 150.0
STALLED_SHARE = 0.3


@pytest.fixture
def short_lease(tmp_path: Path) -> Iterator[tuple[TestClient, Runtime]]:
    with services.fresh_postgres_database(migrated=True) as url:
        settings = make_settings(
            tmp_path,
            database_url=url,
            job_lease_seconds=LEASE_S,
            stale_job_scan_seconds=SWEEP_S,
            analyzer="tests.fakes:build_jittery_fake_analyzer",
        )
        migrated(url)
        runtime = Runtime.build(settings)
        try:
            with TestClient(create_app(settings, runtime)) as client:
                yield client, runtime
        finally:
            runtime.dispose()


class Fleet:
    """Worker threads over one at-least-once queue; every exception they meet is kept."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.work: queue.Queue[str] = queue.Queue()
        self.errors: list[BaseException] = []
        self.outcomes: Counter[str] = Counter()
        """What each run of a job ended with: done, or skipped (and why)."""
        self.stop = threading.Event()
        self.threads: list[threading.Thread] = []

    def start(self) -> None:
        for worker in range(WORKERS):
            for process in range(PROCESSES_PER_WORKER):
                self._spawn(self._take_jobs, f"w{worker}-p{process}")
            self._spawn(self._sweep, f"w{worker}-sweeper")

    def _spawn(self, target: object, name: str) -> None:
        thread = threading.Thread(target=target, name=name, daemon=True)  # type: ignore[arg-type]
        thread.start()
        self.threads.append(thread)

    def _take_jobs(self) -> None:
        while not self.stop.is_set():
            try:
                job_id = self.work.get(timeout=0.05)
            except queue.Empty:
                continue
            try:
                self.outcomes[tasks.assess_claim.run(job_id)] += 1
            except Exception as exc:
                self.errors.append(exc)

    def _sweep(self) -> None:
        while not self.stop.wait(SWEEP_S):
            try:
                tasks.sweep(self.runtime)
            except Exception as exc:
                self.errors.append(exc)

    def join(self) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout=30)


def stalling(renew: Callable[..., bool], share: float) -> Callable[..., bool]:
    stalled: dict[tuple[str, int], bool] = {}

    def maybe_renew(rt: Runtime, queue: leases.Queue, lease: leases.Lease) -> bool:
        run = (lease.id, lease.attempt)
        if stalled.setdefault(run, random.random() < share):
            return True  # the run believes it renewed; the database never heard of it
        return renew(rt, queue, lease)

    return maybe_renew


def job_states(runtime: Runtime) -> Counter[str]:
    with runtime.sessions() as session:
        rows = session.execute(select(models.Job.state, func.count()).group_by(models.Job.state))
        return Counter({state: count for state, count in rows})


def settle(runtime: Runtime, jobs: int) -> None:
    deadline = time.monotonic() + SETTLE_TIMEOUT_S
    while time.monotonic() < deadline:
        states = job_states(runtime)
        if states["succeeded"] + states["failed"] == jobs:
            return
        time.sleep(0.2)
    raise AssertionError(f"jobs did not settle in {SETTLE_TIMEOUT_S}s: {dict(job_states(runtime))}")


def test_two_workers_under_a_short_lease_finish_every_job_once(
    short_lease: tuple[TestClient, Runtime], monkeypatch: pytest.MonkeyPatch
) -> None:
    client, runtime = short_lease
    fleet = Fleet(runtime)
    # The fleet's queue is the broker: the sweep's resends land on it, webhooks go nowhere.
    monkeypatch.setattr(tasks.assess_claim, "delay", fleet.work.put)
    monkeypatch.setattr(tasks.deliver_webhook, "delay", lambda delivery_id: None)
    # A third of the runs stall as a paused process would: they stop renewing their lease.
    monkeypatch.setattr(leases, "renew", stalling(leases.renew, STALLED_SHARE))
    # given many submitted claims, two photos each
    job_ids = []
    for i in range(CLAIMS):
        claim_id, headers = open_claim(client)
        files = [
            ("files", (f"{n}.jpg", images.jpeg(color=(i * 7 % 256, n * 90, 60)), "image/jpeg"))
            for n in range(2)
        ]
        stored = client.post(f"/v1/claims/{claim_id}/photos", files=files, headers=headers)
        assert stored.status_code == 201, stored.text
        submitted = client.post(f"/v1/claims/{claim_id}/submit", headers=headers)
        assert submitted.status_code == 202, submitted.text
        job_ids.append(submitted.json()["job"]["id"])

    # when two workers run them under a 0.15 s lease, each delivery sent twice, sweeping at 0.1 s
    fleet.start()
    for job_id in job_ids + job_ids:
        fleet.work.put(job_id)
    try:
        settle(runtime, len(job_ids))
    finally:
        fleet.join()

    # (what the runs met, shown with -s: runs taken over and duplicates skipped)
    print(f"runs: {dict(fleet.outcomes)}; jobs: {dict(job_states(runtime))}")
    # then nothing deadlocked or collided on a key
    assert [f"{type(e).__name__}: {str(e)[:200]}" for e in fleet.errors] == []
    # and no job whose assessment was stored ended failed, nor stored two
    with runtime.sessions() as session:
        stored = Counter(
            session.scalars(
                select(models.AssessmentRecord.job_id).where(
                    models.AssessmentRecord.job_id.is_not(None)
                )
            ).all()
        )
        jobs = {job.id: job for job in session.scalars(select(models.Job)).all()}
        claims = {claim.id: claim for claim in session.scalars(select(models.Claim)).all()}
    assert [job_id for job_id, n in stored.items() if n > 1] == []
    wrongly_failed = [job_id for job_id in stored if jobs[job_id].state != "succeeded"]
    assert wrongly_failed == []
    # and each claim stands where its job ended: assessed when the job succeeded
    for job in jobs.values():
        if job.state == "succeeded":
            assert job.id in stored
            assert claims[job.claim_id].status in ("assessed", "needs_review")
        else:
            assert job.error_code == "worker_lost" and job.id not in stored
            assert claims[job.claim_id].status == "failed"
