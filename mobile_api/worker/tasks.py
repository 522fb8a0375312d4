"""Celery tasks: thin, idempotent, taking ids. The work is in `assessing`, `jobs` and `cdat`."""

from __future__ import annotations

import logging
import threading
from typing import Any

from celery import Task
from celery.signals import worker_process_init, worker_process_shutdown, worker_ready
from sqlalchemy.exc import OperationalError

from cdat.errors import ConfigurationError, ModelUnavailable
from cdat.settings import Settings
from mobile_api import runtime
from mobile_api.claims import idempotency
from mobile_api.errors import StorageError
from mobile_api.logs import log_context
from mobile_api.queues import deliveries, jobs
from mobile_api.queues.leases import LeaseLost, backoff
from mobile_api.queues.webhooks import check_destination, deliver
from mobile_api.worker.assessing import analyze_photos
from mobile_api.worker.celery_app import celery

log = logging.getLogger("cdat.tasks")
TRANSIENT = (StorageError, OperationalError, ConnectionError, TimeoutError)


@celery.task(bind=True, name="cdat.assess", acks_late=True, max_retries=None)
def assess_claim(self: Task, job_id: str) -> str:
    rt = runtime.current()
    with log_context(job_id=job_id):
        leased = jobs.acquire(rt, job_id)
        if leased is None:
            log.info("job skipped: already done or held by a live worker")
            return "skipped: already done or held by a live worker"
        with log_context(claim_id=leased.claim_id):
            return _run_assessment(self, rt, leased)


def _run_assessment(self: Task, rt: runtime.Runtime, leased: jobs.LeasedJob) -> str:
    job_id = leased.id
    log.info("assessment started", extra={"attempt": leased.attempt})
    try:
        with jobs.lease_kept(rt, leased):
            analyses, versions = analyze_photos(rt, leased.claim_id, leased.photo_ids)
            # completing reads the policy, whose first load takes seconds on a slow CPU:
            # under a renewed lease, or the sweep takes the job back before it is stored
            rt.policy()
        # Inside the try: an error while storing fails or retries the job like any other.
        ended = jobs.complete(rt, leased, analyses, versions)
    except LeaseLost:
        ended = False
    except ModelUnavailable as exc:
        ended = jobs.fail(rt, leased, exc.code, exc.message)
    except TRANSIENT as exc:
        if leased.attempt >= rt.settings.job_max_attempts:
            message = f"gave up after {leased.attempt}: {exc}"
            ended = jobs.fail(rt, leased, "transient_error", message)
        else:
            countdown = backoff(rt.settings.job_retry_backoff_seconds, leased.attempt)
            jobs.release_for_retry(rt, leased, countdown)
            raise self.retry(countdown=countdown, exc=exc) from exc
    except Exception as exc:
        log.exception("assessment job %s failed", job_id)
        ended = jobs.fail(rt, leased, "internal_error", f"{type(exc).__name__}: {exc}")
    if not ended:
        log.info("job skipped: its lease was taken over by another run")
        return "skipped: lease taken over"
    log.info("assessment finished")
    notify_claim(rt, leased.claim_id, job_id)
    return "done"


def notify_claim(rt: runtime.Runtime, claim_id: str, job_id: str) -> None:
    from mobile_api.claims.service import queue_webhook

    delivery_id = queue_webhook(rt, claim_id, job_id)
    if delivery_id:
        deliver_webhook.delay(delivery_id)


@celery.task(bind=True, name="cdat.deliver_webhook", acks_late=True, max_retries=None)
def deliver_webhook(self: Task, delivery_id: str) -> str:
    rt = runtime.current()
    leased = deliveries.acquire(rt, delivery_id)
    if leased is None:
        return "skipped"
    error = _attempt(leased.url, leased.secret, leased.payload, rt.settings)
    state, delay = deliveries.finish(rt, leased, error)
    if state == deliveries.PENDING and delay:
        raise self.retry(countdown=delay)
    return state


def _attempt(url: str, secret: str, payload: dict[str, Any], settings: Settings) -> str | None:
    try:
        pinned = check_destination(
            url,
            allow_private=settings.webhooks_may_reach_private,
            allowed_hosts=settings.webhook_allowed_hosts,
        )
        status = deliver(
            url, secret, payload, timeout_s=settings.webhook_timeout_seconds, pinned=pinned
        )
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"
    return None if 200 <= status < 300 else f"receiver answered HTTP {status}"


@celery.task(name="cdat.capture_check", acks_late=True)
def capture_check(photo_id: str) -> str:
    """The capture page's quick check of one photo (`mobile_api.capture.quick_check`).
    Idempotent: a second run writes the same result."""
    from mobile_api.capture.quick_check import run_check

    with log_context(photo_id=photo_id):
        return run_check(runtime.current(), photo_id)


@celery.task(name="cdat.sweep_stale_jobs")
def sweep_stale_jobs() -> list[str]:
    return sweep(runtime.current())


def sweep(rt: runtime.Runtime) -> list[str]:
    """Resend jobs and webhook deliveries whose worker died or whose message was lost."""
    resend = jobs.sweep_stale(rt)
    for job_id in resend:
        assess_claim.delay(job_id)
    for delivery_id in deliveries.sweep(rt):
        deliver_webhook.delay(delivery_id)
    return resend


def _sweep_forever(rt: runtime.Runtime, stop: threading.Event) -> None:
    while not stop.wait(rt.settings.stale_job_scan_seconds):
        try:
            sweep(rt)
            idempotency.purge_expired(rt)
        except Exception:
            log.exception("stale-job sweep failed; will try again")


_sweeper_stop = threading.Event()


@worker_ready.connect
def _start_sweeper(**_: Any) -> None:
    rt = runtime.current()
    threading.Thread(target=_sweep_forever, args=(rt, _sweeper_stop), daemon=True).start()


@worker_process_init.connect
def _init_worker_child(**_: Any) -> None:
    # A forked child must not share the parent's database connections; models load here, once.
    parent = runtime.current()
    parent.engine.dispose(close=False)
    child = runtime.install(runtime.Runtime.build(parent.settings))
    reason = child.try_load_analyzer()
    if reason:
        log.warning("assessments will fail until a model is installed: %s", reason)
    try:  # read once here, not during the first claim
        child.policy()
    except ConfigurationError as exc:  # each job then fails with it, as before
        log.warning("assessments will fail until the pricing policy loads: %s", exc)


@worker_process_shutdown.connect
def _close_worker_child(**_: Any) -> None:
    runtime.current().dispose()
