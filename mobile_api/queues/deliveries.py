"""Webhook deliveries in the database, leased as jobs are (see `leases`).

A delivery is `pending` (a message is on its way; `due_at` says when it should be worked),
`sending` (a worker holds it until `lease_until`), `delivered` or `failed`. A worker that
dies mid-delivery leaves it `sending` under a lease that runs out; a message lost with its
worker (the embedded broker loses them) leaves it `pending` past its due time. The sweep
sends each such delivery again, once per lease, and gives up after `webhook_max_attempts`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import ColumnElement
from sqlalchemy.orm import Session

from mobile_api.queues import leases
from mobile_api.queues.leases import Lease, LeaseLost, Seen
from mobile_api.runtime import Runtime
from mobile_api.storage import models
from mobile_api.storage.db import transaction
from mobile_api.storage.sealed_secrets import unseal

PENDING, SENDING, DELIVERED, FAILED = "pending", "sending", "delivered", "failed"
DELIVERIES = leases.Queue(
    model=models.WebhookDelivery,
    waiting=PENDING,
    working=SENDING,
    waiting_since="due_at",
    lease_seconds=lambda settings: settings.webhook_lease_seconds,
    max_attempts=lambda settings: settings.webhook_max_attempts,
)


@dataclass(frozen=True)
class LeasedDelivery(Lease):
    url: str = ""
    secret: str = ""
    payload: dict[str, Any] = field(default_factory=dict)


def acquire(rt: Runtime, delivery_id: str) -> LeasedDelivery | None:
    """Take the delivery for this run; None when it is done or a live worker holds it."""
    with transaction(rt.sessions) as session:
        taken = leases.take(session, DELIVERIES, rt.settings, delivery_id)
        if taken is None:
            return None
        lease, delivery, claim = taken
        return LeasedDelivery(
            lease.id,
            lease.claim_id,
            lease.attempt,
            url=delivery.url,
            secret=unseal(rt.settings.secret_key, claim.id, claim.webhook_secret or ""),
            payload=dict(delivery.payload),
        )


def finish(rt: Runtime, lease: Lease, error: str | None) -> tuple[str, float]:
    """Record an attempt's outcome: the new state and, when pending again, the back-off.

    A run that lost its lease records nothing and gets the delivery's state as it is.
    """
    settings = rt.settings
    try:
        with leases.holding(rt, DELIVERIES, lease) as (session, _, _):
            if error is None:
                leases.finish(
                    session,
                    DELIVERIES,
                    lease,
                    DELIVERED,
                    delivered_at=leases.now(),
                    last_error=None,
                )
                return DELIVERED, 0.0
            if lease.attempt >= settings.webhook_max_attempts:
                leases.finish(session, DELIVERIES, lease, FAILED, last_error=error)
                return FAILED, 0.0
            delay = leases.backoff(settings.webhook_backoff_seconds, lease.attempt)
            leases.hand_back(session, DELIVERIES, lease, delay, last_error=error)
            return PENDING, delay
    except LeaseLost:
        with rt.sessions() as session:
            return session.get_one(models.WebhookDelivery, lease.id).state, 0.0


def sweep(rt: Runtime) -> list[str]:
    """Deliveries whose worker died or whose message was lost; returns the ids to send again."""

    def give_up(
        session: Session, delivery: Seen, _: models.Claim, when: ColumnElement[bool]
    ) -> bool:
        reason = f"lost its worker {delivery.attempts} times"
        return leases.change(
            session,
            DELIVERIES,
            delivery.id,
            when,
            state=FAILED,
            lease_until=None,
            last_error=reason,
        )

    return leases.sweep(rt, DELIVERIES, give_up)
