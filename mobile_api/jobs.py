"""Assessment job life-cycle in the database: the source of truth, whatever the broker does.

A job is `queued`, `running` (under a lease a live worker keeps renewing),
`succeeded` or `failed`. Brokers may deliver a message twice or lose it with a
killed worker; leases and the stale-job sweep make every job finish exactly once.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from threading import Event, Thread

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from cdat.assessment import Assessment, TriageDecision
from cdat.claims import ClaimStatus
from mobile_api import models
from mobile_api.auth import new_id
from mobile_api.db import transaction
from mobile_api.runtime import Runtime
from mobile_api.serialize import assessment_body

QUEUED, RUNNING, SUCCEEDED, FAILED = "queued", "running", "succeeded", "failed"


def _now() -> datetime:
    return datetime.now(UTC)


def create_job(session: Session, claim: models.Claim) -> models.Job:
    job = models.Job(
        id=new_id(),
        claim_id=claim.id,
        state=QUEUED,
        photo_ids=[photo.id for photo in claim.photos],
        enqueued_at=_now(),
    )
    session.add(job)
    claim.touch(ClaimStatus.QUEUED.value, "")
    return job


@dataclass(frozen=True)
class LeasedJob:
    id: str
    claim_id: str
    photo_ids: list[str]
    attempts: int


def acquire(runtime: Runtime, job_id: str) -> LeasedJob | None:
    """Take the job for this worker, or None when it is done or held by a live worker."""
    now = _now()
    lease = now + timedelta(seconds=runtime.settings.job_lease_seconds)
    with transaction(runtime.sessions) as session:
        taken = session.execute(  # type: ignore[attr-defined]
            update(models.Job)
            .where(models.Job.id == job_id)
            .where(
                or_(
                    models.Job.state == QUEUED,
                    (models.Job.state == RUNNING) & (models.Job.lease_until < now),
                )
            )
            .values(
                state=RUNNING,
                lease_until=lease,
                started_at=now,
                attempts=models.Job.attempts + 1,
            )
        ).rowcount
        if not taken:
            return None
        job = session.get_one(models.Job, job_id)
        claim = session.get_one(models.Claim, job.claim_id)
        claim.touch(ClaimStatus.ASSESSING.value, "")
        return LeasedJob(job.id, job.claim_id, list(job.photo_ids), job.attempts)


def renew(runtime: Runtime, job_id: str) -> None:
    lease = _now() + timedelta(seconds=runtime.settings.job_lease_seconds)
    with transaction(runtime.sessions) as session:
        session.execute(
            update(models.Job)
            .where(models.Job.id == job_id, models.Job.state == RUNNING)
            .values(lease_until=lease)
        )


@contextmanager
def lease_kept(runtime: Runtime, job_id: str) -> Iterator[None]:
    """Renew the job's lease in the background while the body runs."""
    stop = Event()
    interval = max(runtime.settings.job_lease_seconds / 3, 0.2)

    def beat() -> None:
        while not stop.wait(interval):
            try:
                renew(runtime, job_id)
            except Exception:  # a missed beat is retried; the lease has slack for it
                continue

    thread = Thread(target=beat, name=f"lease-{job_id}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


def complete(runtime: Runtime, job_id: str, assessment: Assessment) -> bool:
    """Store the assessment as the claim's next version; False if the job was already done."""
    with transaction(runtime.sessions) as session:
        job = session.get_one(models.Job, job_id, with_for_update=True)
        if job.state != RUNNING:
            return False
        claim = session.get_one(models.Claim, job.claim_id, with_for_update=True)
        version = 1 + (
            session.scalar(
                select(models.AssessmentRecord.version)
                .where(models.AssessmentRecord.claim_id == claim.id)
                .order_by(models.AssessmentRecord.version.desc())
                .limit(1)
            )
            or 0
        )
        session.add(
            models.AssessmentRecord(
                claim_id=claim.id,
                version=version,
                job_id=job.id,
                photo_ids=list(job.photo_ids),
                body=assessment_body(assessment),
            )
        )
        job.state, job.finished_at, job.lease_until = SUCCEEDED, _now(), None
        _apply_outcome(claim, assessment)
        return True


def _apply_outcome(claim: models.Claim, assessment: Assessment) -> None:
    triage = assessment.triage
    needs_review = triage is None or triage.decision is TriageDecision.NEEDS_REVIEW
    status = ClaimStatus.NEEDS_REVIEW if needs_review else ClaimStatus.ASSESSED
    claim.review_priority = triage.priority if triage else 0
    claim.estimate_total = assessment.estimate.total if assessment.estimate else None
    reason = "; ".join(r.message for r in triage.reasons) if triage else "no triage policy ran"
    claim.retake_request = None
    claim.touch(status.value, reason)


def fail(runtime: Runtime, job_id: str, code: str, message: str) -> None:
    with transaction(runtime.sessions) as session:
        job = session.get_one(models.Job, job_id)
        if job.state == SUCCEEDED:
            return
        job.state, job.error_code, job.error_message = FAILED, code, message[:2000]
        job.finished_at, job.lease_until = _now(), None
        claim = session.get_one(models.Claim, job.claim_id)
        claim.touch(ClaimStatus.FAILED.value, message[:2000])


def release_for_retry(runtime: Runtime, job_id: str) -> None:
    """Hand a running job back to the queue after a transient error."""
    with transaction(runtime.sessions) as session:
        session.execute(
            update(models.Job)
            .where(models.Job.id == job_id, models.Job.state == RUNNING)
            .values(state=QUEUED, lease_until=None, enqueued_at=_now())
        )


def sweep_stale(runtime: Runtime) -> list[str]:
    """Jobs whose worker vanished (lease expired) or whose message was lost; returns ids to resend.

    A job that keeps losing its worker fails for good after `job_max_attempts`.
    """
    now = _now()
    lost_before = now - timedelta(seconds=runtime.settings.job_lease_seconds)
    resend: list[str] = []
    with transaction(runtime.sessions) as session:
        stale = session.scalars(
            select(models.Job).where(
                or_(
                    (models.Job.state == RUNNING) & (models.Job.lease_until < now),
                    (models.Job.state == QUEUED) & (models.Job.enqueued_at < lost_before),
                )
            )
        ).all()
        for job in stale:
            if job.attempts >= runtime.settings.job_max_attempts:
                job.state, job.error_code = FAILED, "worker_lost"
                job.error_message = f"the job lost its worker {job.attempts} times"
                job.finished_at = now
                session.get_one(models.Claim, job.claim_id).touch(
                    ClaimStatus.FAILED.value, job.error_message
                )
                continue
            job.state, job.lease_until, job.enqueued_at = QUEUED, None, now
            resend.append(job.id)
    return resend
