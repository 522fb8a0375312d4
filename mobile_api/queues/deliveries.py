"""Webhook deliveries in the database, under leases as jobs are (see `jobs`).

A delivery is `pending` (a message is on its way; `due_at` says when it should be worked),
`sending` (a worker holds it until `lease_until`), `delivered` or `failed`. A worker that
dies mid-delivery leaves it `sending` under a lease that runs out; a message lost with its
worker (the embedded broker loses them) leaves it `pending` past its due time. The sweep
sends each such delivery again, once per lease, and gives up after `webhook_max_attempts`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import or_, select, update

from mobile_api.runtime import Runtime
from mobile_api.storage import models
from mobile_api.storage.db import transaction
from mobile_api.storage.sealed_secrets import unseal

PENDING, SENDING, DELIVERED, FAILED = "pending", "sending", "delivered", "failed"


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class LeasedDelivery:
    id: str
    url: str
    secret: str
    payload: dict[str, Any]
    attempts: int


def acquire(rt: Runtime, delivery_id: str) -> LeasedDelivery | None:
    """Take the delivery for this worker; None when it is done or a live worker holds it."""
    now = _now()
    with transaction(rt.sessions) as session:
        taken = session.execute(  # type: ignore[attr-defined]
            update(models.WebhookDelivery)
            .where(models.WebhookDelivery.id == delivery_id)
            .where(
                or_(
                    models.WebhookDelivery.state == PENDING,
                    (models.WebhookDelivery.state == SENDING)
                    & (models.WebhookDelivery.lease_until < now),
                )
            )
            .values(
                state=SENDING,
                lease_until=now + timedelta(seconds=rt.settings.webhook_lease_seconds),
                attempts=models.WebhookDelivery.attempts + 1,
            )
        ).rowcount
        if not taken:
            return None
        delivery = session.get_one(models.WebhookDelivery, delivery_id)
        claim = session.get_one(models.Claim, delivery.claim_id)
        return LeasedDelivery(
            delivery.id,
            delivery.url,
            unseal(rt.settings.secret_key, claim.id, claim.webhook_secret or ""),
            dict(delivery.payload),
            delivery.attempts,
        )


def finish(rt: Runtime, delivery_id: str, error: str | None) -> tuple[str, float]:
    """Record an attempt's outcome; returns the new state and, when pending, the back-off."""
    settings = rt.settings
    with transaction(rt.sessions) as session:
        delivery = session.get_one(models.WebhookDelivery, delivery_id)
        delivery.last_error, delivery.lease_until = error, None
        backoff = 0.0
        if error is None:
            delivery.state, delivery.delivered_at = DELIVERED, _now()
        elif delivery.attempts >= settings.webhook_max_attempts:
            delivery.state = FAILED
        else:
            backoff = settings.webhook_backoff_seconds * 2 ** (delivery.attempts - 1)
            delivery.state, delivery.due_at = PENDING, _now() + timedelta(seconds=backoff)
        return delivery.state, backoff


def sweep(rt: Runtime) -> list[str]:
    """Deliveries whose worker died or whose message was lost; returns the ids to send again."""
    settings = rt.settings
    now = _now()
    lost_before = now - timedelta(seconds=settings.webhook_lease_seconds)
    resend: list[str] = []
    with transaction(rt.sessions) as session:
        stale = session.scalars(
            select(models.WebhookDelivery).where(
                or_(
                    (models.WebhookDelivery.state == SENDING)
                    & (models.WebhookDelivery.lease_until < now),
                    (models.WebhookDelivery.state == PENDING)
                    & (models.WebhookDelivery.due_at < lost_before),
                )
            )
        ).all()
        for delivery in stale:
            delivery.lease_until = None
            if delivery.attempts >= settings.webhook_max_attempts:
                delivery.state = FAILED
                delivery.last_error = f"lost its worker {delivery.attempts} times"
                continue
            # Due now: the next sweep leaves it alone for a whole lease, so it is sent once.
            delivery.state, delivery.due_at = PENDING, now
            resend.append(delivery.id)
    return resend
