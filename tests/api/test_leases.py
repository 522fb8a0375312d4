"""Leased jobs, one interleaving at a time, on SQLite and PostgreSQL.

`tests/queues/test_short_lease.py` races them; these pin each rule down: a run whose lease
was taken over writes nothing (no assessment, no photo hash, no failure), the sweep takes
back only what it read as stale, and gives up after the last attempt, failing the claim.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select, update

from mobile_api.queues import jobs, leases
from mobile_api.storage import models
from mobile_api.worker.assessing import analyze_photos
from mobile_api.worker.tasks import assess_claim
from tests import images
from tests.api.backends import Stack
from tests.conftest import open_claim, submit, upload


def queued_job(stack: Stack) -> str:
    claim_id, headers = open_claim(stack.client)
    assert upload(stack.client, claim_id, headers, images.jpeg()).status_code == 201
    return submit(stack.client, claim_id, headers)


def expire_lease(stack: Stack, job_id: str) -> None:
    """What a stalled worker looks like from the database: its lease ran out."""
    with stack.runtime.sessions.begin() as session:
        session.execute(
            update(models.Job)
            .where(models.Job.id == job_id)
            .values(lease_until=leases.now() - timedelta(seconds=1))
        )


def count(stack: Stack, model: type[models.AssessmentRecord] | type[models.PhotoHash]) -> int:
    with stack.runtime.sessions() as session:
        return int(session.scalar(select(func.count()).select_from(model)) or 0)


def job(stack: Stack, job_id: str) -> models.Job:
    with stack.runtime.sessions() as session:
        return session.get_one(models.Job, job_id)


def test_a_run_whose_lease_was_taken_over_writes_nothing(stack: Stack) -> None:
    rt = stack.runtime
    # given a job whose first run stalled past its lease, and a second run that took it
    job_id = queued_job(stack)
    stale = jobs.acquire(rt, job_id)
    assert stale is not None
    expire_lease(stack, job_id)
    current = jobs.acquire(rt, job_id)
    assert current is not None and current.attempt == stale.attempt + 1
    # when the stale run tries to store its assessment or a failure
    seen = analyze_photos(rt, current.claim_id, current.photo_ids)
    stored_by_stale = jobs.complete(rt, stale, *seen)
    failed_by_stale = jobs.fail(rt, stale, "internal_error", "late")
    # then none of it is written, and the job is still the second run's
    assert (stored_by_stale, failed_by_stale) == (False, False)
    assert count(stack, models.AssessmentRecord) == 0
    assert (job(stack, job_id).state, job(stack, job_id).attempts) == ("running", 2)
    # and the second run stores its assessment once
    assert jobs.complete(rt, current, *seen)
    assert count(stack, models.AssessmentRecord) == 1
    assert job(stack, job_id).state == "succeeded"


def test_a_stale_run_cannot_write_the_photo_hash_index(stack: Stack) -> None:
    rt = stack.runtime
    # given a run that lost its lease to another before it wrote anything
    job_id = queued_job(stack)
    stale = jobs.acquire(rt, job_id)
    assert stale is not None
    expire_lease(stack, job_id)
    assert jobs.acquire(rt, job_id) is not None
    # when the stale run tries to store what it saw
    stored = jobs.complete(rt, stale, *analyze_photos(rt, stale.claim_id, stale.photo_ids))
    # then it added no hash
    assert not stored
    assert count(stack, models.PhotoHash) == 0


def test_the_sweep_leaves_live_and_finished_jobs_alone(stack: Stack) -> None:
    rt = stack.runtime
    # given a running job under a live lease and a job that succeeded
    live_id, done_id = queued_job(stack), queued_job(stack)
    live = jobs.acquire(rt, live_id)
    done = jobs.acquire(rt, done_id)
    assert live is not None and done is not None
    assert jobs.complete(rt, done, *analyze_photos(rt, done.claim_id, done.photo_ids))
    # when the sweep runs
    resent = jobs.sweep_stale(rt)
    # then it resends neither, and neither changed
    assert resent == []
    assert job(stack, live_id).state == "running"
    assert job(stack, done_id).state == "succeeded"


def test_the_sweep_resends_a_lost_run_then_gives_up_on_the_last_attempt(stack: Stack) -> None:
    rt = stack.runtime
    rt.settings.job_max_attempts = 2
    # given a job whose worker dies under each attempt
    job_id = queued_job(stack)
    claim_id = job(stack, job_id).claim_id
    assert jobs.acquire(rt, job_id) is not None
    expire_lease(stack, job_id)
    # when the sweep finds it the first time, it sends it again
    assert jobs.sweep_stale(rt) == [job_id]
    assert job(stack, job_id).state == "queued"
    # and when its second attempt dies too, the sweep fails it and its claim
    assert jobs.acquire(rt, job_id) is not None
    expire_lease(stack, job_id)
    assert jobs.sweep_stale(rt) == []
    failed = job(stack, job_id)
    assert (failed.state, failed.error_code) == ("failed", "worker_lost")
    with rt.sessions() as session:
        assert session.get_one(models.Claim, claim_id).status == "failed"


def test_an_error_while_storing_fails_the_job_the_one_way_and_writes_nothing(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    rt = stack.runtime
    # given a job whose assessment cannot be stored
    job_id = queued_job(stack)

    def broken(*_: object, **__: object) -> int:
        raise RuntimeError("the version could not be written")

    monkeypatch.setattr(jobs, "add_version", broken)
    # when a worker runs it
    assert assess_claim.run(job_id) == "done"
    # then the job and its claim failed with the reason, as any other error fails them
    failed = job(stack, job_id)
    assert (failed.state, failed.error_code) == ("failed", "internal_error")
    assert "could not be written" in (failed.error_message or "")
    with rt.sessions() as session:
        assert session.get_one(models.Claim, failed.claim_id).status == "failed"
    # and nothing of the run was kept: no version, no photo hash
    assert count(stack, models.AssessmentRecord) == 0
    assert count(stack, models.PhotoHash) == 0
