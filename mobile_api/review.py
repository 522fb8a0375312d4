"""Adjuster review: corrections to an assessment's findings, and the claim decisions.

A correction never edits a stored assessment. It copies the latest version's body,
applies the change to the per-photo damage instances (where the geometry lives),
merges and prices again with the same `cdat` rules the job uses, and stores the
result as the next version with `source="adjuster"`. Fraud signals do not depend on
findings and are carried over unchanged (their perceptual hashes are not stored).
Every action writes an `AuditEvent` with who, when, and the state before and after.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from cdat.assessment import Assessment, FraudSignal, Operation
from cdat.catalog import classify_vehicle
from cdat.claims import ClaimContext, ClaimStatus, GeoPoint, check_transition
from cdat.errors import InvalidTransition
from cdat.estimate import OVERRIDABLE, Pricing, build_estimate
from cdat.findings import Box, DamageInstance, PartInstance, PhotoAnalysis, QualityIssue
from cdat.merge import merge_findings
from cdat.pipeline import AssessmentPolicy
from cdat.taxonomy import CarPart, DamageType, Severity
from cdat.total_loss import check_total_loss
from cdat.triage import triage
from mobile_api import models
from mobile_api.assessing import photo_meta, vehicle_from_json
from mobile_api.db import transaction
from mobile_api.errors import Conflict, NotFound, ValidationFailed
from mobile_api.runtime import Runtime
from mobile_api.serialize import assessment_body

EDITABLE = frozenset(
    {ClaimStatus.NEEDS_REVIEW, ClaimStatus.ASSESSED, ClaimStatus.MORE_PHOTOS_REQUESTED}
)
Json = dict[str, Any]


@dataclass(frozen=True)
class Actor:
    user_id: str
    email: str


# -- JSON body <-> domain ---------------------------------------------------------------


def _box(raw: Json) -> Box:
    return Box(float(raw["x1"]), float(raw["y1"]), float(raw["x2"]), float(raw["y2"]))


def _polygon(raw: Sequence[Sequence[float]]) -> tuple[tuple[float, float], ...]:
    return tuple((float(x), float(y)) for x, y in raw)


def damage_from_json(raw: Json) -> DamageInstance:
    return DamageInstance(
        damage_type=DamageType(raw["damage_type"]),
        severity=Severity(raw["severity"]),
        confidence=float(raw["confidence"]),
        box=_box(raw["box"]),
        polygon=_polygon(raw.get("polygon") or ()),
        part=CarPart(raw["part"]) if raw.get("part") else None,
        part_coverage=float(raw.get("part_coverage") or 0.0),
    )


def analysis_from_json(raw: Json) -> PhotoAnalysis:
    return PhotoAnalysis(
        photo_id=raw["photo_id"],
        width=int(raw["width"]),
        height=int(raw["height"]),
        damages=tuple(damage_from_json(d) for d in raw.get("damages", [])),
        parts=tuple(
            PartInstance(CarPart(p["part"]), float(p["confidence"]), _box(p["box"]))
            for p in raw.get("parts", [])
        ),
        quality_issues=tuple(
            QualityIssue(q["code"], q["message"], q["retake_hint"], bool(q["blocking"]))
            for q in raw.get("quality_issues", [])
        ),
    )


def signals_from_json(body: Json) -> tuple[FraudSignal, ...]:
    return tuple(
        FraudSignal(s["code"], s["message"], s.get("photo_id"), dict(s.get("evidence") or {}))
        for s in body.get("fraud_signals", [])
    )


def claim_context(session: Session, claim: models.Claim, photo_ids: Sequence[str]) -> ClaimContext:
    rows = session.scalars(select(models.Photo).where(models.Photo.id.in_(photo_ids))).all()
    by_id = {row.id: row for row in rows}
    location = (
        GeoPoint(claim.loss_latitude, claim.loss_longitude)
        if claim.loss_latitude is not None and claim.loss_longitude is not None
        else None
    )
    return ClaimContext(
        claim_id=claim.id,
        vehicle=vehicle_from_json(claim.vehicle),
        loss_date=claim.loss_date,
        loss_location=location,
        photos=tuple(
            photo_meta(p.id, p.sha256, p.exif) for pid in photo_ids if (p := by_id.get(pid))
        ),
    )


def reprice(body: Json, context: ClaimContext, policy: AssessmentPolicy) -> Assessment:
    """Merge, price, total-loss check and triage on the (edited) per-photo damages."""
    analyses = [analysis_from_json(p) for p in body["photos"]]
    findings = merge_findings(analyses)
    overrides = {CarPart(k): Operation(v) for k, v in body.get("operation_overrides", {}).items()}
    vehicle = classify_vehicle(context.vehicle, policy.catalog.vehicle_classes)
    pricing = Pricing(policy.catalog, policy.rules, policy.region, vehicle)
    estimate = build_estimate(findings, pricing, overrides)
    total_loss = check_total_loss(
        estimate,
        context.vehicle,
        vehicle.vehicle_class,
        context.loss_date,
        policy.catalog,
        policy.region,
    )
    signals = signals_from_json(body)
    decision = triage(analyses, findings, estimate, total_loss, signals, policy.triage)
    return Assessment(
        photos=tuple(analyses),
        findings=findings,
        model_versions=dict(body.get("model_versions", {})),
        estimate=estimate,
        total_loss=total_loss,
        triage=decision,
        fraud_signals=signals,
    )


def rebuilt_body(edited: Json, context: ClaimContext, policy: AssessmentPolicy) -> Json:
    """The repriced body, keeping what the domain types do not carry (review marks, overrides)."""
    body = assessment_body(reprice(edited, context, policy))
    for new_photo, old_photo in zip(body["photos"], edited["photos"], strict=True):
        new_photo["usable"] = old_photo.get("usable", new_photo["usable"])
        new_photo["reviewed"] = bool(old_photo.get("reviewed"))
        for new, old in zip(new_photo["damages"], old_photo["damages"], strict=True):
            if "review" in old:
                new["review"] = old["review"]
    body["operation_overrides"] = dict(edited.get("operation_overrides", {}))
    return body


# -- Edits on the JSON body --------------------------------------------------------------


@dataclass(frozen=True)
class DamageFields:
    damage_type: DamageType
    severity: Severity
    part: CarPart | None


def parse_fields(damage_type: str, severity: str, part: str) -> DamageFields:
    try:
        kind = DamageType(damage_type)
    except ValueError:
        raise ValidationFailed(
            f"unknown damage type {damage_type!r}", field="damage_type"
        ) from None
    try:
        level = Severity(severity)
    except ValueError:
        raise ValidationFailed(f"unknown severity {severity!r}", field="severity") from None
    try:
        where = CarPart(part) if part else None
    except ValueError:
        raise ValidationFailed(f"unknown car part {part!r}", field="part") from None
    return DamageFields(kind, level, where)


def parse_polygon(raw: Any, width: int, height: int) -> list[tuple[float, float]]:
    """An outline drawn on the photo: at least 3 points inside the photo."""
    try:
        points = [(float(x), float(y)) for x, y in raw]
    except (TypeError, ValueError):
        raise ValidationFailed("draw a box or polygon on the photo", field="shape") from None
    if len(points) < 3:
        raise ValidationFailed("draw a box or polygon on the photo", field="shape")
    clipped = [(min(max(x, 0.0), width), min(max(y, 0.0), height)) for x, y in points]
    if _area(clipped) < 4.0:
        raise ValidationFailed("the shape drawn is too small", field="shape")
    return clipped


def _area(points: Sequence[tuple[float, float]]) -> float:
    pairs = zip(points, [*points[1:], points[0]], strict=True)
    return abs(sum(x1 * y2 - x2 * y1 for (x1, y1), (x2, y2) in pairs)) / 2


def _bounds(points: Sequence[tuple[float, float]]) -> Json:
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    return {"x1": min(xs), "y1": min(ys), "x2": max(xs), "y2": max(ys)}


def _outline(damage: Json) -> list[tuple[float, float]]:
    if damage.get("polygon") and len(damage["polygon"]) >= 3:
        return [(float(x), float(y)) for x, y in damage["polygon"]]
    b = damage["box"]
    return [(b["x1"], b["y1"]), (b["x2"], b["y1"]), (b["x2"], b["y2"]), (b["x1"], b["y2"])]


def coverage(damage: Json, photo: Json) -> float:
    """Share of the assigned part's box (as the part model saw it) that the damage covers."""
    part = damage.get("part")
    boxes = [p["box"] for p in photo.get("parts", []) if p["part"] == part]
    if not part or not boxes:
        return 0.0
    b = boxes[0]
    part_area = max(b["x2"] - b["x1"], 0) * max(b["y2"] - b["y1"], 0)
    return round(min(_area(_outline(damage)) / part_area, 1.0), 4) if part_area else 0.0


def _photo(body: Json, photo_id: str) -> Json:
    for photo in body["photos"]:
        if photo["photo_id"] == photo_id:
            return photo
    raise NotFound(f"the assessment has no photo {photo_id}")


def _damage(body: Json, photo_id: str, index: int) -> Json:
    damages = _reviewed(body, photo_id)["damages"]
    if not 0 <= index < len(damages):
        raise NotFound(f"photo {photo_id} has no finding #{index}")
    return damages[index]


def _reviewed(body: Json, photo_id: str) -> Json:
    """The photo, marked as looked at by an adjuster: its damages become training labels."""
    photo = _photo(body, photo_id)
    photo["reviewed"] = True
    return photo


def _set(damage: Json, photo: Json, fields: DamageFields, mark: str) -> None:
    damage.update(
        damage_type=fields.damage_type.value,
        severity=fields.severity.value,
        part=fields.part.value if fields.part else None,
        confidence=1.0,  # the adjuster has looked: no model uncertainty left
        review=mark,
    )
    damage["part_coverage"] = coverage(damage, photo)


def confirm_damage(body: Json, photo_id: str, index: int) -> tuple[Json | None, Json | None]:
    damage = _damage(body, photo_id, index)
    before = copy.deepcopy(damage)
    damage.update(confidence=1.0, review="confirmed")
    return before, damage


def edit_damage(
    body: Json, photo_id: str, index: int, fields: DamageFields
) -> tuple[Json | None, Json | None]:
    damage = _damage(body, photo_id, index)
    before = copy.deepcopy(damage)
    _set(damage, _photo(body, photo_id), fields, "edited")
    return before, damage


def delete_damage(body: Json, photo_id: str, index: int) -> tuple[Json | None, Json | None]:
    damage = _damage(body, photo_id, index)
    _photo(body, photo_id)["damages"].pop(index)
    return damage, None


def add_damage(
    body: Json, photo_id: str, fields: DamageFields, shape: Any
) -> tuple[Json | None, Json | None]:
    photo = _reviewed(body, photo_id)
    polygon = parse_polygon(shape, int(photo["width"]), int(photo["height"]))
    damage: Json = {"box": _bounds(polygon), "polygon": [list(p) for p in polygon]}
    _set(damage, photo, fields, "added")
    photo["damages"].append(damage)
    return None, damage


def set_operation(body: Json, part: str, operation: str) -> tuple[Json | None, Json | None]:
    try:
        where = CarPart(part)
    except ValueError:
        raise ValidationFailed(f"unknown car part {part!r}", field="part") from None
    overrides = body.setdefault("operation_overrides", {})
    before = {"part": where.value, "operation": overrides.get(where.value, "rules")}
    if operation == "rules":
        overrides.pop(where.value, None)
    else:
        allowed = {op.value for op in OVERRIDABLE}
        if operation not in allowed:
            choices = ", ".join(sorted(allowed | {"rules"}))
            raise ValidationFailed(f"operation must be one of {choices}", field="operation")
        overrides[where.value] = operation
    return before, {"part": where.value, "operation": overrides.get(where.value, "rules")}


# -- Transactions ------------------------------------------------------------------------


def _claim(session: Session, claim_id: str) -> models.Claim:
    claim = session.get(models.Claim, claim_id, with_for_update=True)
    if claim is None:
        raise NotFound(f"no claim {claim_id}")
    return claim


def latest_record(session: Session, claim_id: str) -> models.AssessmentRecord | None:
    return session.scalar(
        select(models.AssessmentRecord)
        .where(models.AssessmentRecord.claim_id == claim_id)
        .order_by(models.AssessmentRecord.version.desc())
        .limit(1)
    )


def audit(
    session: Session, claim_id: str, actor: Actor, action: str, before: Json | None, after: Json
) -> None:
    session.add(
        models.AuditEvent(
            claim_id=claim_id, actor=actor.email, action=action, before=before, after=after
        )
    )


def correct(rt: Runtime, claim_id: str, actor: Actor, action: str, change: Any) -> int:
    """Apply `change(body) -> (before, after)` to the latest assessment; store the next version.

    Returns the new version number.
    """
    policy = rt.policy()
    with transaction(rt.sessions) as session:
        claim = _claim(session, claim_id)
        if ClaimStatus(claim.status) not in EDITABLE:
            raise Conflict(f"a claim that is {claim.status} cannot be corrected")
        record = latest_record(session, claim_id)
        if record is None:
            raise Conflict("the claim has no assessment to correct")
        edited = copy.deepcopy(record.body)
        before, after = change(edited)
        body = rebuilt_body(edited, claim_context(session, claim, record.photo_ids), policy)
        version = record.version + 1
        session.add(
            models.AssessmentRecord(
                claim_id=claim_id,
                version=version,
                job_id=None,
                photo_ids=list(record.photo_ids),
                body=body,
                source="adjuster",
                author=actor.email,
            )
        )
        old_total = str(claim.estimate_total) if claim.estimate_total is not None else None
        estimate = body.get("estimate") or {}
        claim.estimate_total = estimate.get("total")
        claim.touch()
        audit(
            session,
            claim_id,
            actor,
            action,
            {"version": record.version, "estimate_total": old_total, "value": before},
            {"version": version, "estimate_total": estimate.get("total"), "value": after},
        )
    return version


def decide(rt: Runtime, claim_id: str, actor: Actor, target: ClaimStatus, reason: str = "") -> None:
    """Approve or reject; a rejection needs a reason the policyholder will read."""
    reason = reason.strip()
    if target is ClaimStatus.REJECTED and not reason:
        raise ValidationFailed("give the reason for the rejection", field="reason")
    with transaction(rt.sessions) as session:
        claim = _claim(session, claim_id)
        current = ClaimStatus(claim.status)
        if target not in (ClaimStatus.APPROVED, ClaimStatus.REJECTED):
            raise ValidationFailed(f"{target.value} is not a decision", field="decision")
        _check(current, target)
        before = {"status": current.value, "reason": claim.status_reason}
        claim.touch(target.value, reason or f"{target.value} by {actor.email}")
        after = {"status": target.value, "reason": claim.status_reason}
        audit(session, claim_id, actor, f"claim.{target.value}", before, after)


def request_photos(
    rt: Runtime, claim_id: str, actor: Actor, message: str, photo_ids: Sequence[str]
) -> None:
    """Ask the policyholder for new photos; their status shows what to retake."""
    message = message.strip()
    if not message:
        raise ValidationFailed("say which photos to take and how", field="message")
    with transaction(rt.sessions) as session:
        claim = _claim(session, claim_id)
        current = ClaimStatus(claim.status)
        _check(current, ClaimStatus.MORE_PHOTOS_REQUESTED)
        known = {p.id for p in claim.photos}
        unknown = [pid for pid in photo_ids if pid not in known]
        if unknown:
            raise ValidationFailed(f"no photo {unknown[0]} on this claim", field="photo_ids")
        before = {"status": current.value, "retake_request": claim.retake_request}
        claim.retake_request = {
            "message": message,
            "photo_ids": list(photo_ids),
            "requested_at": datetime.now(UTC).isoformat(),
        }
        claim.touch(ClaimStatus.MORE_PHOTOS_REQUESTED.value, message)
        after = {"status": claim.status, "retake_request": claim.retake_request}
        audit(session, claim_id, actor, "claim.more_photos_requested", before, after)


def _check(current: ClaimStatus, target: ClaimStatus) -> None:
    try:
        check_transition(current, target)
    except InvalidTransition as exc:
        raise Conflict(exc.message) from exc
