"""Assessment job life-cycle in the database: the source of truth, whatever the broker does.

A job is `queued`, `running` (under a lease a live worker keeps renewing),
`succeeded` or `failed`. Brokers may deliver a message twice or lose it with a
killed worker; the leases and sweep of `leases` make every job finish exactly once,
and a run whose lease was taken over stores nothing.

A job moves its claim only while it is the claim's latest job and the state machine
allows the move: a job that finishes after a decision, or after a newer submit, stores
its version for the record and leaves the claim where it is.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from threading import Event, Thread

from sqlalchemy import ColumnElement
from sqlalchemy.orm import Session

from cdat.claims import ClaimStatus
from cdat.corrections import Corrections
from cdat.findings import PhotoAnalysis
from cdat.pipeline import assess_claim, fraud_signals
from mobile_api.auth import new_id
from mobile_api.queues import leases
from mobile_api.queues.leases import Lease, LeaseLost, Seen
from mobile_api.runtime import Runtime
from mobile_api.storage import models
from mobile_api.storage.claim_store import (
    add_version,
    claim_context,
    current_assessment,
    fraud_history,
    latest_job_id,
    stand_on,
    status_after,
    transition,
    try_transition,
)
from mobile_api.storage.db import transaction
from mobile_api.storage.hash_index import SqlPhotoHashIndex

QUEUED, RUNNING, SUCCEEDED, FAILED = "queued", "running", "succeeded", "failed"
JOBS = leases.Queue(
    model=models.Job,
    waiting=QUEUED,
    working=RUNNING,
    waiting_since="enqueued_at",
    lease_seconds=lambda settings: settings.job_lease_seconds,
    max_attempts=lambda settings: settings.job_max_attempts,
)


@dataclass(frozen=True)
class LeasedJob(Lease):
    photo_ids: tuple[str, ...] = ()


def create_job(session: Session, claim: models.Claim) -> models.Job:
    """Queue an assessment of the claim's photos; the caller holds the claim's lock."""
    transition(session, claim, ClaimStatus.QUEUED, "")
    job = models.Job(
        id=new_id(),
        claim_id=claim.id,
        state=QUEUED,
        photo_ids=[photo.id for photo in claim.photos],
        enqueued_at=leases.now(),
    )
    session.add(job)
    return job


def _moves_claim(session: Session, job_id: str, claim: models.Claim) -> bool:
    return latest_job_id(session, claim.id) == job_id


def acquire(runtime: Runtime, job_id: str) -> LeasedJob | None:
    """Take the job for this run, or None when it is done or held by a live worker."""
    with transaction(runtime.sessions) as session:
        taken = leases.take(session, JOBS, runtime.settings, job_id, started_at=leases.now())
        if taken is None:
            return None
        lease, job, claim = taken
        if _moves_claim(session, job_id, claim):
            try_transition(session, claim, ClaimStatus.ASSESSING, "")
        return LeasedJob(lease.id, lease.claim_id, lease.attempt, tuple(job.photo_ids))


@contextmanager
def lease_kept(runtime: Runtime, lease: Lease) -> Iterator[None]:
    """Renew the job's lease in the background while the body runs."""
    stop = Event()
    interval = max(runtime.settings.job_lease_seconds / 3, 0.05)

    def beat() -> None:
        while not stop.wait(interval):
            try:
                if not leases.renew(runtime, JOBS, lease):
                    return  # taken over: the run finds out when it next writes
            except Exception:  # a missed beat is retried; the lease has slack for it
                continue

    thread = Thread(target=beat, name=f"lease-{lease.id}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


def complete(
    runtime: Runtime,
    lease: Lease,
    analyses: Sequence[PhotoAnalysis],
    model_versions: Mapping[str, str],
) -> bool:
    """Assess what the models saw and store it as the claim's next version; False if the
    run lost its lease (then it writes nothing, not even the photo-hash index).

    The claim's history is read under the lock, so no correction, decision or clearing
    of fraud signals can slip in between: the fraud signals no adjuster has cleared, and
    the adjuster's corrections on the version the claim stands on, which the core keeps.
    """
    policy = runtime.policy()
    try:
        with leases.holding(runtime, JOBS, lease) as (session, job, claim):
            context = claim_context(session, claim, job.photo_ids)
            history = fraud_history(session, claim.id)
            hashes = SqlPhotoHashIndex(session)
            signals = fraud_signals(analyses, context, hashes, history, policy)
            corrections = Corrections.of(current_assessment(session, claim))
            assessment = assess_claim(
                analyses, corrections, context, signals, model_versions, policy
            )
            version = add_version(session, claim, assessment, job.photo_ids, job_id=job.id)
            leases.finish(session, JOBS, lease, SUCCEEDED, finished_at=leases.now())
            if _moves_claim(session, job.id, claim) and try_transition(
                session, claim, status_after(assessment), ""
            ):
                claim.retake_request = None
                stand_on(claim, version, assessment)
            else:
                claim.touch()
            return True
    except LeaseLost:
        return False


def _fail(
    session: Session,
    job_id: str,
    claim: models.Claim,
    when: ColumnElement[bool],
    code: str,
    message: str,
) -> bool:
    """The one way a job fails: only while `when` holds (the state the caller read), and
    the claim with it when the job is the claim's latest. The caller holds the claim lock."""
    message = message[:2000]
    failed = leases.change(
        session,
        JOBS,
        job_id,
        when,
        state=FAILED,
        error_code=code,
        error_message=message,
        finished_at=leases.now(),
        lease_until=None,
    )
    if failed and _moves_claim(session, job_id, claim):
        try_transition(session, claim, ClaimStatus.FAILED, message)
    return failed


def fail(runtime: Runtime, lease: Lease, code: str, message: str) -> bool:
    """The run failed for good; False if it had already lost its lease."""
    with transaction(runtime.sessions) as session:
        locked = leases.lock(session, JOBS, lease.id)
        if locked is None:
            return False
        return _fail(session, lease.id, locked[1], leases.held_by(JOBS, lease), code, message)


def withdraw(runtime: Runtime, job_id: str, reason: str) -> None:
    """A job whose message could not be queued fails, so the client can submit again."""
    with transaction(runtime.sessions) as session:
        locked = leases.lock(session, JOBS, job_id)
        if locked is None:
            return
        still_queued = JOBS.column("state") == QUEUED
        message = reason or "the job queue was unavailable; submit again"
        _fail(session, job_id, locked[1], still_queued, "queue_unavailable", message)


def release_for_retry(runtime: Runtime, lease: Lease, delay_s: float) -> bool:
    """Hand a running job back to the queue after a transient error, due after `delay_s`."""
    with transaction(runtime.sessions) as session:
        if leases.lock(session, JOBS, lease.id) is None:
            return False
        return leases.hand_back(session, JOBS, lease, delay_s)


def sweep_stale(runtime: Runtime) -> list[str]:
    """Jobs whose worker vanished (lease expired) or whose message was lost; returns ids to resend.

    A job that keeps losing its worker fails for good after `job_max_attempts`.
    """

    def give_up(
        session: Session, job: Seen, claim: models.Claim, when: ColumnElement[bool]
    ) -> bool:
        message = f"the job lost its worker {job.attempts} times"
        return _fail(session, job.id, claim, when, "worker_lost", message)

    return leases.sweep(runtime, JOBS, give_up)
