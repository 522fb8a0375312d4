"""SQLAlchemy models. Schema changes go through Alembic (mobile_api/storage/migrations)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    Numeric,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from mobile_api.storage.db import Base


def utcnow() -> datetime:
    return datetime.now(UTC)


class UtcDateTime(TypeDecorator[datetime]):
    """A timestamp that reads back timezone-aware UTC on every backend.

    SQLite drops the offset, and the API then emitted timestamps that are not RFC 3339
    `date-time` values as its schema promises.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value


class Claim(Base):
    __tablename__ = "claims"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    policy_number: Mapped[str] = mapped_column(String(64), index=True)
    loss_date: Mapped[date] = mapped_column(Date)
    description: Mapped[str] = mapped_column(Text, default="")
    loss_latitude: Mapped[float | None] = mapped_column(Float, nullable=True)
    loss_longitude: Mapped[float | None] = mapped_column(Float, nullable=True)
    vehicle: Mapped[dict[str, Any]] = mapped_column(JSON)
    contact: Mapped[dict[str, Any]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(32), index=True)
    status_reason: Mapped[str] = mapped_column(Text, default="")
    revision: Mapped[int] = mapped_column(Integer, default=0)
    webhook_url: Mapped[str | None] = mapped_column(Text, nullable=True)
    webhook_secret: Mapped[str | None] = mapped_column(String(128), nullable=True)
    review_priority: Mapped[int] = mapped_column(Integer, default=0)
    estimate_total: Mapped[Decimal | None] = mapped_column(Numeric(14, 2), nullable=True)
    retake_request: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    current_version: Mapped[int | None] = mapped_column(Integer, nullable=True)
    """The assessment version the claim's status stands on (the latest one may be a job
    that finished after a decision, kept for the record only)."""
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)

    photos: Mapped[list[Photo]] = relationship(
        primaryjoin="and_(Claim.id == Photo.claim_id, Photo.removed_at.is_(None))",
        order_by="Photo.created_at, Photo.id",
        viewonly=True,
    )
    """The photos on the claim now: removed and replaced ones are kept, but not here."""

    def touch(self) -> None:
        """Record a change so long-polling clients wake up. Status changes go through
        `claim_store.transition`, never through here."""
        self.revision += 1
        self.updated_at = utcnow()


class Photo(Base):
    __tablename__ = "photos"
    __table_args__ = (UniqueConstraint("claim_id", "sha256", name="uq_photo_claim_sha"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    claim_id: Mapped[str] = mapped_column(ForeignKey("claims.id"), index=True)
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    content_type: Mapped[str] = mapped_column(String(64))
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    exif: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    filename: Mapped[str] = mapped_column(String(255), default="")
    public_sha256: Mapped[str | None] = mapped_column(String(64), nullable=True)
    """Blob served to policyholders: the photo without its GPS block (the same blob when it
    has none), made once at upload. None only for photos stored before it existed."""
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)
    removed_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    """Set when the policyholder removed or replaced it; past versions still show it."""

    claim: Mapped[Claim] = relationship()


class PhotoHash(Base):
    """Perceptual hashes of every analysed photo, chunked for near-duplicate lookup."""

    __tablename__ = "photo_hashes"

    photo_id: Mapped[str] = mapped_column(ForeignKey("photos.id"), primary_key=True)
    claim_id: Mapped[str] = mapped_column(String(32), index=True)
    hash_hex: Mapped[str] = mapped_column(String(16))
    chunk0: Mapped[int] = mapped_column(Integer, index=True)
    chunk1: Mapped[int] = mapped_column(Integer, index=True)
    chunk2: Mapped[int] = mapped_column(Integer, index=True)
    chunk3: Mapped[int] = mapped_column(Integer, index=True)


class Job(Base):
    __tablename__ = "jobs"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    claim_id: Mapped[str] = mapped_column(ForeignKey("claims.id"), index=True)
    state: Mapped[str] = mapped_column(String(16), index=True)
    photo_ids: Mapped[list[str]] = mapped_column(JSON, default=list)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    error_code: Mapped[str | None] = mapped_column(String(64), nullable=True)
    error_message: Mapped[str | None] = mapped_column(Text, nullable=True)
    lease_until: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    enqueued_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    started_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)


class AssessmentRecord(Base):
    __tablename__ = "assessments"
    __table_args__ = (UniqueConstraint("claim_id", "version", name="uq_assessment_version"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    claim_id: Mapped[str] = mapped_column(ForeignKey("claims.id"), index=True)
    version: Mapped[int] = mapped_column(Integer)
    job_id: Mapped[str | None] = mapped_column(ForeignKey("jobs.id"), unique=True, nullable=True)
    """The job that made it; None for a version an adjuster made by correcting findings."""
    photo_ids: Mapped[list[str]] = mapped_column(JSON)
    body: Mapped[dict[str, Any]] = mapped_column(JSON)
    source: Mapped[str] = mapped_column(String(16), default="model", server_default="model")
    """'model' (an assessment job) or 'adjuster' (a reviewed, corrected version)."""
    author: Mapped[str | None] = mapped_column(String(255), nullable=True)
    """Email of the adjuster who made an 'adjuster' version."""
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)


class IdempotencyRecord(Base):
    """A sealed answer to replay (mobile_api.claims.idempotency): no key, no secret in the clear."""

    __tablename__ = "idempotency_keys"

    key_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    scope: Mapped[str] = mapped_column(String(96))
    status_code: Mapped[int] = mapped_column(Integer)
    sealed: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime(), index=True)


class User(Base):
    __tablename__ = "users"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    email: Mapped[str] = mapped_column(String(255), unique=True)
    name: Mapped[str] = mapped_column(String(255), default="")
    role: Mapped[str] = mapped_column(String(32))
    password_hash: Mapped[str | None] = mapped_column(String(255), nullable=True)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)


class ApiToken(Base):
    __tablename__ = "api_tokens"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id"), index=True)
    label: Mapped[str] = mapped_column(String(255), default="")
    revoked: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)


class WebSession(Base):
    """A signed-in adjuster's workspace session; signing out deletes it (mobile_api.web.session)."""

    __tablename__ = "web_sessions"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    """SHA-256 of the session's nonce: the cookie's value is not stored."""
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id"), index=True)
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime())
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)


class WebhookDelivery(Base):
    __tablename__ = "webhook_deliveries"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    claim_id: Mapped[str] = mapped_column(ForeignKey("claims.id"), index=True)
    event: Mapped[str] = mapped_column(String(64))
    url: Mapped[str] = mapped_column(Text)
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    state: Mapped[str] = mapped_column(String(16), default="pending")
    """pending, sending (under a lease), delivered or failed: see mobile_api.queues.deliveries."""
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    delivered_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    due_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True, default=utcnow)
    lease_until: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)


class AuditEvent(Base):
    __tablename__ = "audit_events"
    __table_args__ = (Index("ix_audit_claim_time", "claim_id", "created_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    claim_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    actor: Mapped[str] = mapped_column(String(255))
    action: Mapped[str] = mapped_column(String(64))
    before: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    after: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)


class CaptureLink(Base):
    """A one-time link that signs a claimant into one claim's capture page (mobile_api.capture)."""

    __tablename__ = "capture_links"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    """SHA-256 of the link's secret: the link itself is not stored."""
    claim_id: Mapped[str] = mapped_column(ForeignKey("claims.id"), index=True)
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime())
    used_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    created_by: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)


class CaptureSession(Base):
    """A claimant's capture-page session: its cookie opens one claim until it expires."""

    __tablename__ = "capture_sessions"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    """SHA-256 of the cookie's value."""
    claim_id: Mapped[str] = mapped_column(ForeignKey("claims.id"), index=True)
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime())
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)


class CaptureCheck(Base):
    """Which shot of the capture page a photo is, and its quick check's result."""

    __tablename__ = "capture_checks"

    photo_id: Mapped[str] = mapped_column(ForeignKey("photos.id"), primary_key=True)
    claim_id: Mapped[str] = mapped_column(ForeignKey("claims.id"), index=True)
    shot: Mapped[str] = mapped_column(String(32))
    upload_key: Mapped[str | None] = mapped_column(String(64), nullable=True, index=True)
    """HMAC of the upload's Idempotency-Key, so a retried upload answers as the first."""
    state: Mapped[str] = mapped_column(String(16), default="pending")
    """pending (queued), done, or failed (the page then says the check could not run)."""
    issues: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    perceptual_hash: Mapped[str | None] = mapped_column(String(16), nullable=True)
    checked_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)
