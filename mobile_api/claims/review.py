"""Adjuster review: corrections to an assessment's findings, and the claim decisions.

A correction never edits a stored assessment. It takes the claim's current version,
applies the change (`cdat.corrections`), re-assesses the claim with the core's one entry
point (`cdat.pipeline.assess_claim`, which the assessment job uses too) and stores it as
the next version with `source="adjuster"`; the photos, fraud signals and model versions
are the current version's.
Every action writes an `AuditEvent` with who, when, and the state before and after.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.orm import Session

from cdat.assessment import Assessment
from cdat.claims import ClaimStatus, RetakeRequest, check_transition
from cdat.corrections import Edit
from cdat.pipeline import assess_claim
from cdat.record import decode
from mobile_api.errors import Conflict, ValidationFailed
from mobile_api.runtime import Runtime
from mobile_api.storage import models
from mobile_api.storage.claim_store import (
    FRAUD_CLEARED,
    add_version,
    claim_context,
    current_assessment,
    current_record,
    lock_claim,
    photos_changed_since,
    stand_on,
    transition,
)
from mobile_api.storage.db import transaction

EDITABLE = frozenset(
    {ClaimStatus.NEEDS_REVIEW, ClaimStatus.ASSESSED, ClaimStatus.MORE_PHOTOS_REQUESTED}
)
DECIDABLE = frozenset({ClaimStatus.NEEDS_REVIEW, ClaimStatus.ASSESSED})
Json = dict[str, Any]
Change = Callable[[Assessment], Edit]


@dataclass(frozen=True)
class Actor:
    user_id: str
    email: str


def audit(
    session: Session, claim_id: str, actor: Actor, action: str, before: Json | None, after: Json
) -> None:
    session.add(
        models.AuditEvent(
            claim_id=claim_id, actor=actor.email, action=action, before=before, after=after
        )
    )


def correct(rt: Runtime, claim_id: str, actor: Actor, action: str, change: Change) -> int:
    """Apply `change` to the claim's current assessment; store and stand on the next version.

    Returns the new version number.
    """
    policy = rt.policy()
    with transaction(rt.sessions) as session:
        claim = lock_claim(session, claim_id)
        if ClaimStatus(claim.status) not in EDITABLE:
            raise Conflict(f"a claim that is {claim.status} cannot be corrected")
        record = current_record(session, claim)
        if record is None:
            raise Conflict("the claim has no assessment to correct")
        previous = decode(record.body)
        edit = change(previous)
        context = claim_context(session, claim, record.photo_ids)
        corrected = assess_claim(
            previous.photos,
            edit.corrections,
            context,
            previous.fraud_signals,
            previous.model_versions,
            policy,
        )
        old_total = str(claim.estimate_total) if claim.estimate_total is not None else None
        version = add_version(session, claim, corrected, record.photo_ids, author=actor.email)
        stand_on(claim, version, corrected)
        new_total = str(corrected.estimate.total) if corrected.estimate else None
        audit(
            session,
            claim_id,
            actor,
            action,
            {"version": record.version, "estimate_total": old_total, "value": edit.before},
            {"version": version, "estimate_total": new_total, "value": edit.after},
        )
    return version


def decide(
    rt: Runtime,
    claim_id: str,
    actor: Actor,
    target: ClaimStatus,
    reason: str = "",
    *,
    nothing_to_pay_confirmed: bool = False,
) -> None:
    """Approve or reject; a rejection needs a reason the policyholder will read, and an
    approval of nothing (no estimate, or a zero one) needs saying so."""
    reason = reason.strip()
    if target not in (ClaimStatus.APPROVED, ClaimStatus.REJECTED):
        raise ValidationFailed(f"{target.value} is not a decision", field="decision")
    if target is ClaimStatus.REJECTED and not reason:
        raise ValidationFailed("give the reason for the rejection", field="reason")
    with transaction(rt.sessions) as session:
        claim = lock_claim(session, claim_id)
        check_transition(ClaimStatus(claim.status), target)  # say "decided" before "zero"
        if target is ClaimStatus.APPROVED:
            _check_photos_assessed(claim, current_record(session, claim))
        if target is ClaimStatus.APPROVED and not nothing_to_pay_confirmed:
            _check_something_to_pay(current_assessment(session, claim))
        before = {"status": claim.status, "reason": claim.status_reason}
        transition(session, claim, target, reason or f"{target.value} by {actor.email}")
        after = {"status": claim.status, "reason": claim.status_reason}
        audit(session, claim_id, actor, f"claim.{target.value}", before, after)


def _check_photos_assessed(claim: models.Claim, record: models.AssessmentRecord | None) -> None:
    """An approval pays the estimate of one assessment: it must be of the photos on the
    claim now, not of photos the policyholder has since replaced or removed."""
    added, removed = photos_changed_since(claim, record)
    if not (added or removed) or record is None:
        return
    changes = [f"{len(added)} added or retaken"] if added else []
    changes += [f"{len(removed)} removed or replaced"] if removed else []
    raise Conflict(
        f"the photos changed after assessment version {record.version} was made "
        f"({', '.join(changes)}): it no longer prices this claim's photos; it can be approved "
        "once the policyholder submits and the new photos are assessed, or ask for photos",
        field="decision",
    )


def _check_something_to_pay(assessment: Assessment | None) -> None:
    estimate = assessment.estimate if assessment else None
    if estimate is not None and estimate.total > 0:
        return
    shown = f"{estimate.currency} {estimate.total}" if estimate else "no amount"
    raise ValidationFailed(
        f"the estimate is {shown}: confirm that the claim is approved with nothing to pay",
        field="confirm_nothing_to_pay",
    )


def request_photos(
    rt: Runtime, claim_id: str, actor: Actor, message: str, photo_ids: Sequence[str]
) -> None:
    """Ask the policyholder for new photos; their status shows what to retake."""
    message = message.strip()
    if not message:
        raise ValidationFailed("say which photos to take and how", field="message")
    with transaction(rt.sessions) as session:
        claim = lock_claim(session, claim_id)
        known = {p.id for p in claim.photos}
        unknown = [pid for pid in photo_ids if pid not in known]
        if unknown:
            raise ValidationFailed(f"no photo {unknown[0]} on this claim", field="photo_ids")
        before = {"status": claim.status, "retake_request": claim.retake_request}
        transition(session, claim, ClaimStatus.MORE_PHOTOS_REQUESTED, message)
        asked = RetakeRequest(message, tuple(photo_ids), datetime.now(UTC))
        claim.retake_request = asked.as_json()
        after = {"status": claim.status, "retake_request": claim.retake_request}
        audit(session, claim_id, actor, "claim.more_photos_requested", before, after)


def clear_fraud_signals(rt: Runtime, claim_id: str, actor: Actor, note: str) -> None:
    """The adjuster has looked at the claim's fraud signals and found nothing: later
    assessments stop carrying them (a signal a later assessment raises again still counts).
    The current version keeps its signals, and the claim its status, until decided."""
    note = note.strip()
    if not note:
        raise ValidationFailed("say what was checked before clearing the signals", field="note")
    with transaction(rt.sessions) as session:
        claim = lock_claim(session, claim_id)
        if ClaimStatus(claim.status) not in EDITABLE:
            raise Conflict(f"a claim that is {claim.status} cannot have its signals cleared")
        assessment = current_assessment(session, claim)
        if assessment is None or not assessment.fraud_signals:
            raise ValidationFailed("the current assessment has no fraud signal", field="note")
        signals = [s.code for s in assessment.fraud_signals]
        before = {"version": claim.current_version, "signals": signals}
        after = {"through_version": claim.current_version, "note": note}
        audit(session, claim_id, actor, FRAUD_CLEARED, before, after)
