"""Assessment job life-cycle in the database: the source of truth, whatever the broker does.

A job is `queued`, `running` (under a lease a live worker keeps renewing),
`succeeded` or `failed`. Brokers may deliver a message twice or lose it with a
killed worker; leases and the stale-job sweep make every job finish exactly once.

A job moves its claim only while it is the claim's latest job and the state machine
allows the move: a job that finishes after a decision, or after a newer submit, stores
its version for the record and leaves the claim where it is.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from threading import Event, Thread

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from cdat.assessment import Assessment
from cdat.claims import ClaimStatus
from cdat.corrections import has_corrections, keep_corrections
from cdat.fraud import standing_signals
from cdat.pipeline import assess_findings
from mobile_api.auth import new_id
from mobile_api.runtime import Runtime
from mobile_api.storage import models
from mobile_api.storage.claim_store import (
    add_version,
    current_assessment,
    fraud_history,
    latest_job_id,
    lock_claim,
    stand_on,
    status_after,
    transition,
    try_transition,
)
from mobile_api.storage.db import transaction
from mobile_api.worker.assessing import claim_context

QUEUED, RUNNING, SUCCEEDED, FAILED = "queued", "running", "succeeded", "failed"


def _now() -> datetime:
    return datetime.now(UTC)


def create_job(session: Session, claim: models.Claim) -> models.Job:
    """Queue an assessment of the claim's photos; the caller holds the claim's lock."""
    transition(session, claim, ClaimStatus.QUEUED, "")
    job = models.Job(
        id=new_id(),
        claim_id=claim.id,
        state=QUEUED,
        photo_ids=[photo.id for photo in claim.photos],
        enqueued_at=_now(),
    )
    session.add(job)
    return job


def _locked(session: Session, job_id: str) -> tuple[models.Job, models.Claim]:
    """The job and its claim, claim locked first: every writer takes them in that order."""
    claim_id = session.scalar(select(models.Job.claim_id).where(models.Job.id == job_id))
    if claim_id is None:
        raise LookupError(f"no job {job_id}")
    claim = lock_claim(session, claim_id)
    return session.get_one(models.Job, job_id, populate_existing=True), claim


def _moves_claim(session: Session, job: models.Job, claim: models.Claim) -> bool:
    return latest_job_id(session, claim.id) == job.id


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
        job, claim = _locked(session, job_id)
        if _moves_claim(session, job, claim):
            try_transition(session, claim, ClaimStatus.ASSESSING, "")
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
    """Store the assessment as the claim's next version; False if the job was already done.

    The adjuster's corrections on the claim's current version are kept for the photos
    still assessed (`cdat.corrections.keep_corrections`), priced by the same entry point.
    """
    policy = runtime.policy()
    with transaction(runtime.sessions) as session:
        job, claim = _locked(session, job_id)
        if job.state != RUNNING:
            return False
        previous = current_assessment(session, claim)
        # A fraud signal is the claim's history: a retake does not wash it away.
        signals = standing_signals(assessment.fraud_signals, fraud_history(session, claim.id))
        corrected = previous is not None and has_corrections(previous)
        if corrected or signals != assessment.fraud_signals:
            photos, overrides = (
                keep_corrections(previous, assessment.photos)
                if previous is not None and corrected
                else (assessment.photos, assessment.operation_overrides)
            )
            context = claim_context(session, claim, job.photo_ids)
            assessment = assess_findings(
                photos,
                context,
                signals,
                policy,
                assessment.model_versions,
                overrides,
            )
        version = add_version(session, claim, assessment, job.photo_ids, job_id=job.id)
        job.state, job.finished_at, job.lease_until = SUCCEEDED, _now(), None
        if _moves_claim(session, job, claim) and try_transition(
            session, claim, status_after(assessment), ""
        ):
            claim.retake_request = None
            stand_on(claim, version, assessment)
        else:
            claim.touch()
        return True


def fail(runtime: Runtime, job_id: str, code: str, message: str) -> None:
    with transaction(runtime.sessions) as session:
        job, claim = _locked(session, job_id)
        if job.state == SUCCEEDED:
            return
        job.state, job.error_code, job.error_message = FAILED, code, message[:2000]
        job.finished_at, job.lease_until = _now(), None
        if _moves_claim(session, job, claim):
            try_transition(session, claim, ClaimStatus.FAILED, message[:2000])


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
                claim = lock_claim(session, job.claim_id)
                if _moves_claim(session, job, claim):
                    try_transition(session, claim, ClaimStatus.FAILED, job.error_message)
                continue
            job.state, job.lease_until, job.enqueued_at = QUEUED, None, now
            resend.append(job.id)
    return resend
