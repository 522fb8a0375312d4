"""The claim view: per-photo damage instances merged into per-part findings.

One dent seen in three photos must be priced once. Damages are grouped by
(part, damage type) across the claim's usable photos; every finding keeps the
photos, instance indices and confidences it came from (`Evidence`).

Rules (chosen so a finding is explainable to an adjuster):

* Severity: the worst severity among the *credible* sightings, those whose confidence
  is at least `SEVERITY_CREDIBLE_RATIO` of the group's best. A repairer prices the worst
  damage actually there, but one weak "severe" guess must not override confident
  "moderate" sightings.
* Confidence: noisy-OR over photos, ``1 - prod(1 - c_photo)``, with ``c_photo`` the best
  confidence of the group in that photo (instances in one photo are not independent
  evidence). Seeing the damage from several angles raises confidence; capped at
  `MAX_CONFIDENCE` because photos of one car are never fully independent.
* Part coverage: per photo the sum of the group's instances (several scratches on one
  door cover more of it; each instance counts only what surer ones of its group do not
  already cover, `inference.assign.unique_coverage`, so the sum is their union), then
  the maximum over photos (views overlap; summing across photos would double count), over
  the photos that show the part whole where one does: a close-up that cuts the part off
  measures only what it shows, so its share overstates the part's
  (`PartFinding.coverage_cut_off` when no photo shows it whole). A part no photo outlines
  (placed by a stage or an adjuster) has no measured coverage (`PartFinding.part_outlined`).
* A trunk or tailgate sighting is a finding on the rear lid the vehicle's body type has:
  the part model tells them apart by looks, the policy says which one the car has.
* One damage, two names: the model's classes are suppressed one class at a time, so one
  damage often comes back as a dent and as a scratch or a broken part. A model sighting
  at least `NAMED_AGAIN_SHARE` of whose outline lies inside the photo's surer damages of
  other types on its part names that damage again; a finding whose every sighting does is
  `named_again` (the estimate gives it no repair hours of its own). An adjuster's reviewed
  damages are taken as separate damages.
* Damage on no visible part is never merged: one finding per instance, `part=None`; one
  lying mostly inside a surer damage on no part of its photo is `named_again` (the same
  damage outlined again or under another name: triage asks for its part once).
* Photos with a blocking quality issue (unreadable, duplicate, no vehicle) are ignored.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Literal

from cdat.claims import BodyType, as_fitted
from cdat.findings import DamageInstance, Evidence, PartFinding, PhotoAnalysis
from cdat.outlines import HeldShares
from cdat.taxonomy import CarPart, DamageType, Severity

SEVERITY_CREDIBLE_RATIO = 0.5
NAMED_AGAIN_SHARE = 0.5
_NAMED_AGAIN_SAMPLES = 16
"""A share to within about 1/16 is enough to tell "mostly inside" (most such sightings lie
wholly inside, a few mostly outside), at a fraction of a claim's merge time."""
MAX_CONFIDENCE = 0.999


CUT_OFF_MARGIN = 0.01
"""A part whose box comes within this share of the photo's side of its edge is cut off."""


@dataclass(frozen=True)
class _Sighting:
    photo_id: str
    index: int
    damage: DamageInstance
    part_cut_off: bool = False
    named_again: bool = False
    part_outlined: bool = False


def as_fitted_photo(analysis: PhotoAnalysis, body_type: BodyType | None) -> PhotoAnalysis:
    """The photo's damages and parts named as the vehicle of `body_type` has them
    (`cdat.claims.as_fitted`), so that what the adjuster reads beside the findings says
    trunk where they do; the same photo where nothing is renamed."""
    damages = tuple(
        d if d.part is None else replace(d, part=as_fitted(d.part, body_type))
        for d in analysis.damages
    )
    parts = tuple(replace(p, part=as_fitted(p.part, body_type)) for p in analysis.parts)
    if damages == analysis.damages and parts == analysis.parts:
        return analysis
    return replace(analysis, damages=damages, parts=parts)


def merge_findings(
    analyses: Sequence[PhotoAnalysis], body_type: BodyType | None = None
) -> tuple[PartFinding, ...]:
    """Claim-level findings from all photos of a claim, in a stable order, each on the part
    as the vehicle of `body_type` has it (`cdat.claims.as_fitted`)."""
    groups: dict[tuple[CarPart, DamageType], list[_Sighting]] = defaultdict(list)
    unassigned: list[_Sighting] = []
    for analysis in analyses:
        if not analysis.usable:
            continue
        again = named_again(analysis.damages)
        for index, damage in enumerate(analysis.damages):
            cut = damage.part is not None and part_cut_off(analysis, damage.part)
            outlined = damage.part is not None and part_outlined(analysis, damage.part)
            sighting = _Sighting(analysis.photo_id, index, damage, cut, index in again, outlined)
            if damage.part is None:
                unassigned.append(sighting)
            else:
                groups[(as_fitted(damage.part, body_type), damage.damage_type)].append(sighting)
    merged = [_merge(part, kind, sightings) for (part, kind), sightings in groups.items()]
    merged.sort(key=lambda f: (f.part.value if f.part else "", f.damage_type.value))
    return tuple(merged) + tuple(_single(s) for s in unassigned)


def _merge(part: CarPart, kind: DamageType, sightings: list[_Sighting]) -> PartFinding:
    return PartFinding(
        part=part,
        damage_type=kind,
        severity=merged_severity([s.damage for s in sightings]),
        confidence=combined_confidence(sightings),
        chance=combined_chance(sightings),
        part_coverage=merged_coverage(sightings),
        evidence=tuple(
            Evidence(s.photo_id, s.damage.confidence, s.index)
            for s in sorted(sightings, key=lambda s: -s.damage.confidence)
        ),
        coverage_cut_off=all(s.part_cut_off for s in sightings),
        part_outlined=any(s.part_outlined for s in sightings),
        named_again=all(s.named_again for s in sightings),
    )


def named_again(damages: Sequence[DamageInstance]) -> set[int]:
    """Indices of the model's damages that mostly lie inside surer damages of other types
    on their part, or on no part inside surer damages on no part: the same damage under
    another name (or, on no part, outlined again)."""
    return set(named_again_under(damages))


def named_again_under(
    damages: Sequence[DamageInstance], shares: HeldShares | None = None
) -> dict[int, int]:
    """`named_again`'s damages, each -> the index of the surer damage (of another type, but
    on no part of any type) that holds most of its outline (the one an adjuster's view shows
    it under)."""
    shares = shares or _shares(damages)
    again: dict[int, int] = {}
    for index, damage in enumerate(damages):
        if damage.review or len(damage.polygon) < 3:
            continue
        # On no part, any surer damage on no part: none is priced, each asks an adjuster for a
        # part, and one damage outlined twice under two types must ask once.
        surer = [
            k
            for k, other in enumerate(damages)
            if other.part is damage.part
            and (damage.part is None or other.damage_type is not damage.damage_type)
            and (other.confidence, -k) > (damage.confidence, -index)
        ]
        if surer and shares.held(index, surer) >= NAMED_AGAIN_SHARE:
            again[index] = max(surer, key=lambda k: shares.held(index, [k]))
    return again


def outlined_again(
    damages: Sequence[DamageInstance], shares: HeldShares | None = None
) -> dict[int, int]:
    """Index of a model's damage -> index of the surest damage of its type on its part that
    holds most of its outline (`NAMED_AGAIN_SHARE`): the same damage outlined again at
    another extent, as the analyzer's looks taken where damage is found outline one damage
    several times. The estimate prices a part's damages together already; an adjuster's
    view of the photo groups them under the surer one."""
    shares = shares or _shares(damages)
    ranked = sorted(range(len(damages)), key=lambda k: (-damages[k].confidence, k))
    again: dict[int, int] = {}
    for position, index in enumerate(ranked):
        damage = damages[index]
        if damage.review or len(damage.polygon) < 3:
            continue
        for k in ranked[:position]:
            other = damages[k]
            same = other.part is damage.part and other.damage_type is damage.damage_type
            if not same or len(other.polygon) < 3:
                continue
            if shares.held(index, [k]) >= NAMED_AGAIN_SHARE:
                again[index] = k
                break
    return again


def _shares(damages: Sequence[DamageInstance]) -> HeldShares:
    return HeldShares([d.polygon for d in damages], _NAMED_AGAIN_SAMPLES)


@dataclass(frozen=True)
class SeenAgain:
    """A photo's damage that repeats a surer one: `under` is the index of the damage it
    repeats (never itself a repeat), `how` whether it outlines that damage again at another
    extent or names it as another type."""

    under: int
    how: Literal["outline", "name"]


def seen_again(damages: Sequence[DamageInstance]) -> dict[int, SeenAgain]:
    """Each damage that `outlined_again` or `named_again_under` finds repeating a surer
    one, under the first of the chain it repeats: the looks taken where damage is found
    outline and name one damage many times, and an adjuster reads it once."""
    shares = _shares(damages)
    direct = {k: SeenAgain(j, "outline") for k, j in outlined_again(damages, shares).items()}
    for k, j in named_again_under(damages, shares).items():
        direct.setdefault(k, SeenAgain(j, "name"))
    # each points at a surer damage, so a chain ends
    return {k: replace(seen, under=_first(seen.under, direct)) for k, seen in direct.items()}


def _first(index: int, direct: dict[int, SeenAgain]) -> int:
    while index in direct:
        index = direct[index].under
    return index


def _single(sighting: _Sighting) -> PartFinding:
    damage = sighting.damage
    return PartFinding(
        part=None,
        damage_type=damage.damage_type,
        severity=damage.severity,
        confidence=damage.confidence,
        chance=damage.chance,
        part_coverage=0.0,
        part_outlined=False,
        evidence=(Evidence(sighting.photo_id, damage.confidence, sighting.index),),
        named_again=sighting.named_again,
    )


def credible(confidence: float, surest: float) -> bool:
    """Is a sighting sure enough, beside the surest one of its group, to decide how bad the
    damage is? (A weak "severe" guess must not override confident "moderate" sightings.)"""
    # A hair of slack: confidences scaled together must not cross the bound by rounding.
    return confidence >= SEVERITY_CREDIBLE_RATIO * surest * (1.0 - 1e-9)


def merged_severity(damages: Sequence[DamageInstance]) -> Severity:
    surest = max(d.confidence for d in damages)
    sure = [d for d in damages if credible(d.confidence, surest)]
    return max((d.severity for d in sure), key=lambda s: s.rank)


def _best_per_photo(sightings: Sequence[_Sighting], value) -> dict[str, float]:
    per_photo: dict[str, float] = {}
    for s in sightings:
        per_photo[s.photo_id] = value(per_photo.get(s.photo_id), s.damage)
    return per_photo


def combined_confidence(sightings: Sequence[_Sighting]) -> float:
    return _seen_in_any(sightings, lambda d: d.confidence)


def combined_chance(sightings: Sequence[_Sighting]) -> float | None:
    """As `combined_confidence`, of each sighting's certainty; None where no curves read
    any sighting (the finding is then as sure as its confidence says)."""
    if all(s.damage.chance is None for s in sightings):
        return None
    return _seen_in_any(sightings, lambda d: d.certainty)


def _seen_in_any(sightings: Sequence[_Sighting], sure: Callable[[DamageInstance], float]) -> float:
    """1 - the chance every photo missed it, each photo as sure as its surest sighting."""
    per_photo = _best_per_photo(
        sightings, lambda prev, d: sure(d) if prev is None else max(prev, sure(d))
    )
    miss = 1.0
    for confidence in per_photo.values():
        miss *= 1.0 - min(max(confidence, 0.0), 1.0)
    return round(min(1.0 - miss, MAX_CONFIDENCE), 4)


def merged_coverage(sightings: Sequence[_Sighting]) -> float:
    whole = [s for s in sightings if not s.part_cut_off]
    per_photo = _best_per_photo(whole or sightings, lambda prev, d: d.part_coverage + (prev or 0.0))
    return round(min(max(per_photo.values()), 1.0), 4)


def part_outlined(analysis: PhotoAnalysis, part: CarPart) -> bool:
    """Did the photo's part model outline `part`? Only then is a damage's coverage of it
    measured (`inference.assign`)."""
    return any(p.part is part for p in analysis.parts)


def part_cut_off(analysis: PhotoAnalysis, part: CarPart) -> bool:
    """Does the photo cut `part` off at its edge? (Its largest box, as the part model saw
    it, reaches the edge.) A part the photo's part model did not outline (a fender placed by the
    part-family stage, a part an adjuster named) is taken as seen whole: nothing says
    otherwise, and its coverage is not measured from a part outline."""
    boxes = [p.box for p in analysis.parts if p.part is part]
    if not boxes:
        return False
    mx, my = CUT_OFF_MARGIN * analysis.width, CUT_OFF_MARGIN * analysis.height
    box = max(boxes, key=lambda b: b.area)
    return (
        box.x1 <= mx
        or box.y1 <= my
        or box.x2 >= analysis.width - mx
        or box.y2 >= analysis.height - my
    )
