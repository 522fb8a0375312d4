"""Damage -> car part, by mask overlap on the shared analysis grid.

A damage belongs to the part whose mask it overlaps most, when that part holds at least
`min_overlap` of the damage. A wheel needs more (`min_wheel_overlap`): a crumpled corner
reaches into the wheel arch, and pricing it as a new wheel is the costliest wrong line.
A wide damage (a smashed front end) holds less than that of any one part; it then belongs
to the part it engulfs most, when it covers at least `min_engulfed` of that part's visible
area (never a wheel). Otherwise it lies mostly on a panel the part model does not segment
(a fender or quarter panel, a pillar, a sill): it is kept as an *unlisted panel*
(`part=None`) for the adjuster, never priced as the part next to it.
Coverage is the share of the assigned part's visible area that the damage covers; where a
surer damage of the same type already covers some of it in the photo, only what it adds
(`unique_coverage`), so that a photo's coverages of one (part, type) add up to their union.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from cdat.findings import DamageInstance, PartInstance
from cdat.taxonomy import CarPart, DamageType

MIN_OVERLAP = 0.3
MIN_WHEEL_OVERLAP = 0.6
MIN_ENGULFED = 0.5


@dataclass(frozen=True)
class AssignRule:
    """The thresholds above, as one value a sweep can vary (`training.assign_sweep`)."""

    min_overlap: float = MIN_OVERLAP
    min_wheel_overlap: float = MIN_WHEEL_OVERLAP
    min_engulfed: float = MIN_ENGULFED


SERVED = AssignRule()


def region_part(
    overlap: np.ndarray,
    region_area: float,
    parts: tuple[CarPart, ...],
    part_areas: np.ndarray,
    rule: AssignRule = SERVED,
) -> int | None:
    """Index of the part a region lies on, from its overlap (pixels) with each part and
    each part's area; None for an unlisted panel."""
    if region_area <= 0 or not len(parts):
        return None
    best = int(overlap.argmax())
    need = rule.min_wheel_overlap if parts[best] is CarPart.WHEEL else rule.min_overlap
    # `> 0`: a region touching no part is never on one, even with `min_overlap` 0.
    if overlap[best] > 0 and overlap[best] >= need * region_area:
        return best
    engulfed = np.where(
        [p is not CarPart.WHEEL for p in parts], overlap / np.maximum(part_areas, 1.0), 0.0
    )
    most = int(engulfed.argmax())
    return most if engulfed[most] > 0 and engulfed[most] >= rule.min_engulfed else None


def assign_parts(
    damages: tuple[DamageInstance, ...],
    damage_masks: np.ndarray,
    parts: tuple[PartInstance, ...],
    part_masks: np.ndarray,
    rule: AssignRule = SERVED,
) -> tuple[DamageInstance, ...]:
    """Fill `part` and `part_coverage` of each damage; masks are (N, gh, gw) bool."""
    if not damages:
        return damages
    if not parts:
        return tuple(replace(d, part=None, part_coverage=0.0) for d in damages)
    dmg = damage_masks.reshape(len(damages), -1).astype(np.float32)
    prt = part_masks.reshape(len(parts), -1).astype(np.float32)
    overlap = dmg @ prt.T  # (damages, parts) pixel counts
    damage_area = dmg.sum(1)
    part_area = prt.sum(1)
    labels = tuple(p.part for p in parts)
    out = []
    for i, damage in enumerate(damages):
        j = region_part(overlap[i], float(damage_area[i]), labels, part_area, rule)
        if j is None:
            out.append(replace(damage, part=None, part_coverage=0.0))
            continue
        coverage = float(overlap[i, j] / max(part_area[j], 1.0))
        out.append(replace(damage, part=parts[j].part, part_coverage=round(min(coverage, 1.0), 4)))
    return tuple(out)


def unique_coverage(
    damages: tuple[DamageInstance, ...],
    damage_masks: np.ndarray,
    parts: tuple[PartInstance, ...],
    part_masks: np.ndarray,
) -> tuple[DamageInstance, ...]:
    """Each damage's coverage less the share of it that surer damages of its type on its part
    already cover in this photo. The detector reports one damage under several boxes (and the
    closer look adds its own), and a claim adds a photo's coverages of one part and type
    (`cdat.merge`): counted whole, one dent reported twice would cover its part twice."""
    covered: dict[tuple[CarPart, DamageType], np.ndarray] = {}
    out = list(damages)
    for k in sorted(range(len(damages)), key=lambda i: -damages[i].confidence):
        damage = damages[k]
        seen = [j for j, p in enumerate(parts) if p.part is damage.part]
        if damage.part is None or damage.part_coverage <= 0.0 or not seen:
            continue
        on_part = damage_masks[k] & part_masks[seen].any(0)
        area = float(on_part.sum())
        if area == 0.0:
            continue
        key = (damage.part, damage.damage_type)
        before = covered.get(key)
        covered[key] = on_part if before is None else before | on_part
        if before is not None:
            fresh = float((on_part & ~before).sum()) / area
            out[k] = replace(damage, part_coverage=round(damage.part_coverage * fresh, 4))
    return tuple(out)
