"""The Celery application. Configured from settings by whoever starts a process.

Queues: `assess` (CPU or GPU workers run the models), `checks` (the capture page's quick
photo checks, which must not wait behind assessments) and `events` (webhooks,
housekeeping), so a fleet can scale them apart.
"""

from __future__ import annotations

from typing import Any

from celery import Celery
from kombu import pools

from cdat.settings import Settings

ASSESS_QUEUE = "assess"
EVENTS_QUEUE = "events"
CHECKS_QUEUE = "checks"

celery = Celery("cdat", include=["mobile_api.worker.tasks"])


def broker_options(settings: Settings) -> dict[str, Any]:
    url = settings.resolved_broker_url
    if url.startswith("sqla+sqlite"):
        # Options go to SQLAlchemy's create_engine: wait out the API's and workers' write locks.
        return {"connect_args": {"timeout": 30}}
    if url.startswith(("redis", "rediss")):
        # Redelivery of a message whose worker died waits for this; our own lease sweep is faster.
        return {"visibility_timeout": 3600}
    return {}


def configure_celery(settings: Settings) -> Celery:
    _forget_connections()
    celery.conf.update(
        broker_url=settings.resolved_broker_url,
        broker_transport_options=broker_options(settings),
        broker_connection_retry_on_startup=True,
        task_ignore_result=True,
        result_backend=None,
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_default_queue=EVENTS_QUEUE,
        task_routes={
            "cdat.assess": {"queue": ASSESS_QUEUE},
            "cdat.capture_check": {"queue": CHECKS_QUEUE},
        },
        task_publish_retry=True,
        task_publish_retry_policy={"max_retries": 2, "interval_start": 0.2, "interval_step": 0.5},
        worker_hijack_root_logger=False,
        worker_send_task_events=False,
        accept_content=["json"],
        task_serializer="json",
        timezone="UTC",
    )
    return celery


def _forget_connections() -> None:
    """Drop pooled connections made under an earlier configuration of this process.

    Celery offers no public call for this (`close()` also unregisters the app), and
    without it a re-configured process keeps publishing to the old broker.
    """
    # kombu keeps process-wide pools keyed by broker URL: closing only ours left the closed
    # pool registered, and a re-configure with the same URL then failed every publish
    # ("Acquire on closed pool", answered as 503). reset() closes and forgets them all.
    pools.reset()
    celery._pool = None
    amqp = celery.__dict__.get("amqp")
    if amqp is not None:
        amqp._producer_pool = None
