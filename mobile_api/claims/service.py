"""Claim creation, credentials and idempotency behind the policyholder and adjuster APIs.

Routes parse and authorise; the modules behind them own the transactions: this one,
`submission` (photos and submits), `review` (adjuster actions) and `claim_views` (reads).
Every write either commits whole or leaves stored data as it was.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from cdat.claims import ClaimStatus
from mobile_api.auth import (
    CLAIM_TOKEN_PREFIX,
    STAFF_TOKEN_PREFIX,
    Principal,
    Role,
    hash_token,
    new_id,
    new_token,
)
from mobile_api.claims import idempotency
from mobile_api.errors import Conflict, Forbidden, NotFound, Unauthenticated
from mobile_api.queues.webhooks import check_destination
from mobile_api.runtime import Runtime
from mobile_api.storage import models, sealed_secrets
from mobile_api.storage.db import transaction

Outcome = idempotency.Outcome


@dataclass(frozen=True)
class NewClaim:
    """A claim to open, as the HTTP edge parsed and checked it."""

    policy_number: str
    loss_date: date
    description: str
    vehicle: dict[str, Any]
    contact: dict[str, Any]
    loss_latitude: float | None
    loss_longitude: float | None
    webhook_url: str | None
    request: dict[str, Any]
    """The request as sent: a retry with the same Idempotency-Key must repeat it."""


@dataclass(frozen=True)
class ClaimOpened:
    id: str
    status: ClaimStatus
    access_token: str
    """The claim's bearer token, shown once: only its hash is stored."""
    webhook_secret: str | None


def create_claim(
    rt: Runtime, body: NewClaim, key: str | None, answer: Callable[[ClaimOpened], Outcome]
) -> Outcome:
    """Open a claim. `answer` writes the response inside the transaction, where an
    Idempotency-Key stores it for a retry to replay."""
    webhook_url = body.webhook_url
    if webhook_url:
        check_destination(
            webhook_url,
            allow_private=rt.settings.webhooks_may_reach_private,
            allowed_hosts=rt.settings.webhook_allowed_hosts,
        )

    def action(session: Session) -> Outcome:
        token = new_token(CLAIM_TOKEN_PREFIX)
        claim_id = new_id()
        webhook_secret = secrets.token_urlsafe(32) if webhook_url else None
        claim = models.Claim(
            id=claim_id,
            token_hash=hash_token(token),
            policy_number=body.policy_number,
            loss_date=body.loss_date,
            description=body.description,
            loss_latitude=body.loss_latitude,
            loss_longitude=body.loss_longitude,
            vehicle=body.vehicle,
            contact=body.contact,
            status=ClaimStatus.RECEIVED.value,
            webhook_url=webhook_url,
            webhook_secret=(
                sealed_secrets.seal(rt.settings.secret_key, claim_id, webhook_secret)
                if webhook_secret
                else None
            ),
        )
        session.add(claim)
        return answer(ClaimOpened(claim.id, ClaimStatus.RECEIVED, token, webhook_secret))

    # Nobody is signed in yet: the key and the identical request prove who made it.
    retry = idempotency.request_for("claims.create", "", key, body.request)
    return idempotency.run_once(rt, retry, action)


def authenticate(rt: Runtime, token: str | None) -> Principal:
    if not token:
        raise Unauthenticated("missing bearer token")
    digest = hash_token(token)
    with rt.sessions() as session:
        if token.startswith(CLAIM_TOKEN_PREFIX):
            claim_id = session.scalar(
                select(models.Claim.id).where(models.Claim.token_hash == digest)
            )
            if claim_id:
                return Principal(Role.POLICYHOLDER, claim_id)
        elif token.startswith(STAFF_TOKEN_PREFIX):
            row = session.execute(
                select(models.User.id, models.User.role, models.User.email)
                .join(models.ApiToken, models.ApiToken.user_id == models.User.id)
                .where(models.ApiToken.token_hash == digest, ~models.ApiToken.revoked)
                .where(models.User.active)
            ).first()
            if row:
                return Principal(Role(row.role), row.id, row.email)
    raise Unauthenticated("invalid or revoked token")


def authorize_claim(principal: Principal, claim_id: str) -> None:
    """A claim token opens only its own claim; the answer never says whether others exist."""
    if principal.is_staff or principal.subject == claim_id:
        return
    raise Forbidden("this token does not grant access to that claim")


def photo_blob(rt: Runtime, claim_id: str, photo_id: str) -> tuple[bytes, str]:
    with rt.sessions() as session:
        photo = session.get(models.Photo, photo_id)
        if photo is None or photo.claim_id != claim_id:
            raise NotFound(f"no photo {photo_id} on this claim")
        sha, content_type = photo.sha256, photo.content_type
    return rt.blobs.get(sha), content_type


def queue_webhook(rt: Runtime, claim_id: str, job_id: str) -> str | None:
    with transaction(rt.sessions) as session:
        claim = session.get_one(models.Claim, claim_id)
        if not claim.webhook_url:
            return None
        job = session.get_one(models.Job, job_id)
        delivery = models.WebhookDelivery(
            id=new_id(),
            claim_id=claim_id,
            event="claim.assessment_finished",
            url=claim.webhook_url,
            payload={
                "event": "claim.assessment_finished",
                "claim_id": claim_id,
                "job_id": job_id,
                "job_state": job.state,
                "status": claim.status,
                "revision": claim.revision,
            },
        )
        session.add(delivery)
        return delivery.id


def create_staff(
    rt: Runtime, email: str, role: Role, *, name: str = "", password_hash: str | None = None
) -> tuple[str, str]:
    """Create a staff user and an API token; returns (user id, token shown once)."""
    token = new_token(STAFF_TOKEN_PREFIX)
    with transaction(rt.sessions) as session:
        if session.scalar(select(models.User.id).where(models.User.email == email)):
            raise Conflict(f"a user {email} already exists", field="email")
        user = models.User(
            id=new_id(), email=email, name=name, role=role.value, password_hash=password_hash
        )
        session.add(user)
        session.flush()
        session.add(models.ApiToken(token_hash=hash_token(token), user_id=user.id, label="cli"))
    return user.id, token


def ensure_staff_token(rt: Runtime, email: str, token: str) -> None:
    """Make `token` a valid adjuster credential (development bootstrap)."""
    with transaction(rt.sessions) as session:
        user = session.scalar(select(models.User).where(models.User.email == email))
        if user is None:
            user = models.User(id=new_id(), email=email, name="Dev adjuster", role="adjuster")
            session.add(user)
            session.flush()
        if session.get(models.ApiToken, hash_token(token)) is None:
            session.add(models.ApiToken(token_hash=hash_token(token), user_id=user.id, label="dev"))


def list_claims(
    rt: Runtime, status: ClaimStatus | None, limit: int, offset: int
) -> list[models.Claim]:
    """A page of the review queue, most urgent first."""
    with rt.sessions() as session:
        query = select(models.Claim)
        if status is not None:
            query = query.where(models.Claim.status == status.value)
        query = query.order_by(models.Claim.review_priority.desc(), models.Claim.created_at)
        rows = session.scalars(query.limit(limit).offset(offset)).all()
        return list(rows)
