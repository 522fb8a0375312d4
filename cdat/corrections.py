"""An adjuster's corrections to an assessment's per-photo damages, and keeping them.

Each edit takes an `Assessment` and returns an `Edit`: the corrected photos and
operation overrides, plus what changed (before / after) for the audit trail. The caller
assesses the claim again with the edit's `Corrections` (`cdat.pipeline.assess_claim`).

A photo an adjuster touched is `reviewed`: its damages are the adjuster's word. When the
claim is assessed again (the policyholder sent more photos), `Corrections.kept_on` keeps
those damages for every photo that is still on the claim, instead of the model's guess.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic import TypeAdapter

from cdat.assessment import Assessment, Operation
from cdat.errors import CdatError
from cdat.estimate import OVERRIDABLE
from cdat.findings import Box, DamageInstance, PhotoAnalysis
from cdat.merge import seen_again
from cdat.outlines import fresh_share
from cdat.taxonomy import CarPart, DamageType, Severity

Json = dict[str, Any]
Point = tuple[float, float]
_DAMAGE = TypeAdapter(DamageInstance)


class CorrectionRefused(CdatError):
    """The correction asked for cannot be made (unknown value, shape too small)."""

    code = "validation_error"

    def __init__(self, message: str, *, field: str) -> None:
        super().__init__(message)
        self.field = field


class UnknownFinding(CdatError):
    code = "not_found"


@dataclass(frozen=True)
class DamageFields:
    damage_type: DamageType
    severity: Severity
    part: CarPart | None


@dataclass(frozen=True)
class Edit:
    photos: tuple[PhotoAnalysis, ...]
    overrides: dict[CarPart, Operation]
    before: Json | None
    after: Json | None

    @property
    def corrections(self) -> Corrections:
        """Every correction on the assessment once this edit is made."""
        return Corrections.made_on(self.photos, self.overrides)


def parse_fields(damage_type: str, severity: str, part: str) -> DamageFields:
    try:
        kind = DamageType(damage_type)
    except ValueError:
        raise CorrectionRefused(
            f"unknown damage type {damage_type!r}", field="damage_type"
        ) from None
    try:
        level = Severity(severity)
    except ValueError:
        raise CorrectionRefused(f"unknown severity {severity!r}", field="severity") from None
    try:
        where = CarPart(part) if part else None
    except ValueError:
        raise CorrectionRefused(f"unknown car part {part!r}", field="part") from None
    return DamageFields(kind, level, where)


NOT_FINITE = "the shape's points must be finite numbers"


def parse_polygon(raw: Any, width: int, height: int) -> list[Point]:
    """An outline drawn on the photo: at least 3 points inside the photo."""
    try:
        points = [(float(x), float(y)) for x, y in raw]
    except OverflowError:  # an integer too large for a float (a 400-digit one)
        raise CorrectionRefused(NOT_FINITE, field="shape") from None
    except (TypeError, ValueError):
        raise CorrectionRefused("draw a box or polygon on the photo", field="shape") from None
    if len(points) < 3:
        raise CorrectionRefused("draw a box or polygon on the photo", field="shape")
    if not all(math.isfinite(v) for point in points for v in point):
        # NaN survives clipping and would reach exported training labels as `nan`.
        raise CorrectionRefused(NOT_FINITE, field="shape")
    clipped = [(min(max(x, 0.0), width), min(max(y, 0.0), height)) for x, y in points]
    if _area(clipped) < 4.0:
        raise CorrectionRefused("the shape drawn is too small", field="shape")
    return clipped


def _area(points: Sequence[Point]) -> float:
    pairs = zip(points, [*points[1:], points[0]], strict=True)
    return abs(sum(x1 * y2 - x2 * y1 for (x1, y1), (x2, y2) in pairs)) / 2


def _outline(damage: DamageInstance) -> list[Point]:
    if len(damage.polygon) >= 3:
        return list(damage.polygon)
    b = damage.box
    return [(b.x1, b.y1), (b.x2, b.y1), (b.x2, b.y2), (b.x1, b.y2)]


def coverage(
    damage: DamageInstance, photo: PhotoAnalysis, others: Sequence[DamageInstance] = ()
) -> float:
    """Share of the assigned part's box (as the part model saw it) that the damage covers,
    less what `others` of its part and type already cover: a claim adds a photo's coverages
    of one part and type (`cdat.merge`), so a dent drawn over one the model found must not
    cover the panel twice."""
    boxes = [p.box for p in photo.parts if p.part == damage.part]
    if damage.part is None or not boxes or not boxes[0].area:
        return 0.0
    outline = _outline(damage)
    same = [
        _outline(o) for o in others if o.part is damage.part and o.damage_type is damage.damage_type
    ]
    return round(min(_area(outline) * fresh_share(outline, same) / boxes[0].area, 1.0), 4)


DRAWN = ("added", "edited")
"""Damages whose coverage an adjuster's outline decides (the model's come from its masks)."""


def drawn_coverages(photo: PhotoAnalysis, damages: list[DamageInstance]) -> None:
    """Every drawn damage's coverage again, after any change to the photo's damages: the
    model's damages count first, then the drawn ones in their order, each only where those
    before it do not reach (so deleting the damage it was drawn over gives it back what
    that one covered)."""
    for k, damage in enumerate(damages):
        if damage.review in DRAWN:
            others = [
                d for j, d in enumerate(damages) if j != k and (j < k or d.review not in DRAWN)
            ]
            damages[k] = dataclasses.replace(damage, part_coverage=coverage(damage, photo, others))


def audit_value(damage: DamageInstance) -> Json:
    value: Json = _DAMAGE.dump_python(damage, mode="json")
    return value


def _photo_index(assessment: Assessment, photo_id: str) -> int:
    for i, photo in enumerate(assessment.photos):
        if photo.photo_id == photo_id:
            return i
    raise UnknownFinding(f"the assessment has no photo {photo_id}")


def _with_damages(
    assessment: Assessment, photo_id: str, change: Any
) -> tuple[PhotoAnalysis, tuple[PhotoAnalysis, ...]]:
    """Apply `change(photo, damages list)` and mark the photo reviewed."""
    i = _photo_index(assessment, photo_id)
    photo = assessment.photos[i]
    damages = list(photo.damages)
    change(photo, damages)
    drawn_coverages(photo, damages)
    updated = dataclasses.replace(photo, damages=tuple(damages), reviewed=True)
    return updated, (*assessment.photos[:i], updated, *assessment.photos[i + 1 :])


def _checked_index(photo: PhotoAnalysis, index: int) -> int:
    if not 0 <= index < len(photo.damages):
        raise UnknownFinding(f"photo {photo.photo_id} has no finding #{index}")
    return index


def _edit(assessment: Assessment, photos: tuple[PhotoAnalysis, ...], before, after) -> Edit:
    return Edit(photos, dict(assessment.operation_overrides), before, after)


def confirm_damage(assessment: Assessment, photo_id: str, index: int) -> Edit:
    seen: list[DamageInstance] = []

    def change(photo: PhotoAnalysis, damages: list[DamageInstance]) -> None:
        i = _checked_index(photo, index)
        seen.append(damages[i])
        damages[i] = dataclasses.replace(
            damages[i], confidence=1.0, chance=None, review="confirmed"
        )
        seen.append(damages[i])

    _, photos = _with_damages(assessment, photo_id, change)
    return _edit(assessment, photos, audit_value(seen[0]), audit_value(seen[1]))


def edit_damage(assessment: Assessment, photo_id: str, index: int, fields: DamageFields) -> Edit:
    seen: list[DamageInstance] = []

    def change(photo: PhotoAnalysis, damages: list[DamageInstance]) -> None:
        i = _checked_index(photo, index)
        seen.append(damages[i])
        damages[i] = _set(damages[i], photo, fields, "edited")

    updated, photos = _with_damages(assessment, photo_id, change)
    after = updated.damages[index]  # as stored: its coverage counted beside the others
    return _edit(assessment, photos, audit_value(seen[0]), audit_value(after))


def delete_damage(
    assessment: Assessment, photo_id: str, index: int, *, with_repeats: bool = False
) -> Edit:
    """The damage at `index` deleted; `with_repeats`, the model's repeats of it too (its
    outlines and other names, `cdat.merge.seen_again`): no such damage, under any outline
    or name. The audit's before names each repeat deleted with it."""
    seen: list[DamageInstance] = []
    repeats: list[DamageInstance] = []

    def change(photo: PhotoAnalysis, damages: list[DamageInstance]) -> None:
        i = _checked_index(photo, index)
        again = seen_again(damages) if with_repeats else {}
        gone = {i, *(k for k, repeat in again.items() if repeat.under == i)}
        seen.append(damages[i])
        repeats.extend(damages[k] for k in sorted(gone - {i}))
        damages[:] = [d for k, d in enumerate(damages) if k not in gone]

    _, photos = _with_damages(assessment, photo_id, change)
    before = audit_value(seen[0])
    if repeats and isinstance(before, dict):
        before = {**before, "repeats": [audit_value(r) for r in repeats]}
    return _edit(assessment, photos, before, None)


def add_damage(assessment: Assessment, photo_id: str, fields: DamageFields, shape: Any) -> Edit:
    def change(photo: PhotoAnalysis, damages: list[DamageInstance]) -> None:
        polygon = parse_polygon(shape, photo.width, photo.height)
        xs, ys = [x for x, _ in polygon], [y for _, y in polygon]
        drawn = DamageInstance(
            fields.damage_type,
            fields.severity,
            1.0,
            Box(min(xs), min(ys), max(xs), max(ys)),
            polygon=tuple(polygon),
        )
        damages.append(_set(drawn, photo, fields, "added"))

    updated, photos = _with_damages(assessment, photo_id, change)
    return _edit(assessment, photos, None, audit_value(updated.damages[-1]))


def _set(
    damage: DamageInstance, photo: PhotoAnalysis, fields: DamageFields, mark: str
) -> DamageInstance:
    changed = dataclasses.replace(
        damage,
        damage_type=fields.damage_type,
        severity=fields.severity,
        part=fields.part,
        confidence=1.0,  # the adjuster has looked: no model uncertainty left
        chance=None,
        review=mark,
    )
    return dataclasses.replace(changed, part_coverage=coverage(changed, photo))


def set_operation(assessment: Assessment, part: str, operation: str) -> Edit:
    try:
        where = CarPart(part)
    except ValueError:
        raise CorrectionRefused(f"unknown car part {part!r}", field="part") from None
    overrides = dict(assessment.operation_overrides)
    before = {"part": where.value, "operation": _shown(overrides.get(where))}
    if operation == "rules":
        overrides.pop(where, None)
    else:
        allowed = {op.value for op in OVERRIDABLE}
        if operation not in allowed:
            choices = ", ".join(sorted(allowed | {"rules"}))
            raise CorrectionRefused(f"operation must be one of {choices}", field="operation")
        overrides[where] = Operation(operation)
    after = {"part": where.value, "operation": _shown(overrides.get(where))}
    return Edit(assessment.photos, overrides, before, after)


def _shown(operation: Operation | None) -> str:
    return operation.value if operation else "rules"


@dataclass(frozen=True)
class Corrections:
    """An adjuster's word on a claim, which every later assessment keeps over the models':
    the damages of each photo they reviewed, and the operation they chose for a part.

    Photo ids never change for the same upload (a retake is a new photo), so a reviewed
    photo still on the claim shows what the adjuster saw; what the models measure again
    (quality, parts, hash) is taken fresh, the damages are the adjuster's.
    """

    damages: Mapping[str, tuple[DamageInstance, ...]] = field(default_factory=dict)
    """Photo id -> the damages an adjuster settled on for that photo."""
    overrides: Mapping[CarPart, Operation] = field(default_factory=dict)

    @classmethod
    def made_on(
        cls, photos: Sequence[PhotoAnalysis], overrides: Mapping[CarPart, Operation]
    ) -> Corrections:
        return cls({p.photo_id: p.damages for p in photos if p.reviewed}, dict(overrides))

    @classmethod
    def of(cls, assessment: Assessment | None) -> Corrections:
        """The corrections `assessment` carries (none for no assessment)."""
        if assessment is None:
            return cls()
        return cls.made_on(assessment.photos, assessment.operation_overrides)

    def kept_on(self, photos: Sequence[PhotoAnalysis]) -> tuple[PhotoAnalysis, ...]:
        """`photos`, with the adjuster's damages on every photo they reviewed."""
        return tuple(
            dataclasses.replace(p, damages=self.damages[p.photo_id], reviewed=True)
            if p.photo_id in self.damages
            else p
            for p in photos
        )
