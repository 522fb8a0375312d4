"""What the vision models saw, in domain terms.

`inference` produces these; estimating, triage and the API consume them. Geometry
is in the original photo's pixel coordinates (after EXIF orientation).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from cdat.taxonomy import CarPart, DamageType, Severity, damage_fits_part

Polygon = tuple[tuple[float, float], ...]

NO_VEHICLE = "no_vehicle"
"""The blocking photo issue of a photo in which no vehicle is seen (the vehicle gate, or no
part at all); the claim reason of the same name counts such photos."""


@dataclass(frozen=True)
class Box:
    x1: float
    y1: float
    x2: float
    y2: float

    @property
    def area(self) -> float:
        return max(0.0, self.x2 - self.x1) * max(0.0, self.y2 - self.y1)

    def intersection_area(self, other: Box) -> float:
        return Box(
            max(self.x1, other.x1),
            max(self.y1, other.y1),
            min(self.x2, other.x2),
            min(self.y2, other.y2),
        ).area

    def iou(self, other: Box) -> float:
        inner = self.intersection_area(other)
        union = self.area + other.area - inner
        return inner / union if union > 0 else 0.0


@dataclass(frozen=True)
class QualityIssue:
    """A reason a photo is not good enough, with a hint the policyholder can act on."""

    code: str
    message: str
    retake_hint: str
    blocking: bool = False


@dataclass(frozen=True)
class DamageInstance:
    damage_type: DamageType
    severity: Severity
    confidence: float
    box: Box
    polygon: Polygon = ()
    part: CarPart | None = None
    part_coverage: float = 0.0
    """Share of the assigned part's visible area that this damage covers, 0..1, less what
    surer damages of its type in the same photo already cover of it (as the analyzer
    reports it: `inference.assign.unique_coverage`; an adjuster's drawn damage, less what
    the photo's other damages of its type on its part cover: `cdat.corrections`)."""
    review: str = ""
    """What an adjuster did to it: "" (model output), confirmed, edited or added."""
    chance: float | None = None
    """The chance this is damage, read from `confidence` (the detector's score, which ranks
    damages but is no chance) by its damage model's curves, fitted on val
    (cdat/calibration.py). None: no curves read it (an adjuster's damage, a model served
    without curves, an assessment made before them)."""

    @property
    def certainty(self) -> float:
        """How sure the damage is, as triage, the estimate's range and an adjuster read it:
        its chance where curves read one, else its confidence."""
        return self.confidence if self.chance is None else self.chance


@dataclass(frozen=True)
class PartInstance:
    part: CarPart
    confidence: float
    box: Box
    polygon: Polygon = ()


@dataclass(frozen=True)
class PhotoAnalysis:
    """Everything the models and checks found in one photo."""

    photo_id: str
    width: int
    height: int
    damages: tuple[DamageInstance, ...] = ()
    parts: tuple[PartInstance, ...] = ()
    quality_issues: tuple[QualityIssue, ...] = ()
    perceptual_hash: str | None = None
    timings_ms: dict[str, float] = field(default_factory=dict)
    reviewed: bool = False
    """An adjuster corrected findings on this photo: its damages are labels, and a
    re-assessment keeps them rather than the model's new guess."""
    vehicle_probability: float | None = None
    """The vehicle gate's probability that the photo shows a vehicle (None: no gate ran).
    A photo under the gate's threshold carries a blocking `no_vehicle` issue and no
    findings; the adjuster sees the figure either way."""
    whole_car_view_probability: float | None = None
    """The gate's probability that the photo shows the whole car rather than a close-up
    (None: no gate read it); the whole-car rule may read it (cdat/whole_car.py)."""
    severity_read_close_up: bool = False
    """The damage model's close-up severity stage read this photo's damages: measured to
    under-call heavy close-ups from sources it did not learn (the damage card), so a finding
    seen only on such photos has its severity confirmed by an adjuster
    (`severity_to_confirm`)."""

    @property
    def usable(self) -> bool:
        return not any(issue.blocking for issue in self.quality_issues)

    @property
    def refused_no_vehicle(self) -> bool:
        """Refused as showing no vehicle: the one test triage and every measurement use."""
        return any(issue.code == NO_VEHICLE for issue in self.quality_issues)


@dataclass(frozen=True)
class Evidence:
    """One photo's sighting of a claim-level finding."""

    photo_id: str
    confidence: float
    damage_index: int


@dataclass(frozen=True)
class PartFinding:
    """One damage on one part, merged across the photos that show it.

    `part` is None when the damage lies on no visible part; such findings are
    kept for an adjuster rather than dropped.
    """

    part: CarPart | None
    damage_type: DamageType
    severity: Severity
    confidence: float
    part_coverage: float
    evidence: tuple[Evidence, ...]
    coverage_cut_off: bool = False
    """Every photo that measured `part_coverage` cuts the part off at its edge (a close-up
    of a door): the share is of what the photos show, an upper bound on the part's."""
    part_outlined: bool = True
    """Some photo that shows the damage outlines its part, so `part_coverage` was measured.
    False where every such photo placed the part without an outline (a fender placed by the
    part-family stage, a part an adjuster named): the coverage is 0 for want of a measure,
    not because the damage is small."""
    named_again: bool = False
    """Every sighting lies mostly inside a surer damage of another type on its part in its
    photo (`cdat.merge.NAMED_AGAIN_SHARE`): one damage the model named twice, say a dent and
    a scratch. It is shown and may decide a replacement, but adds no repair hours. On no part:
    every sighting lies mostly inside a surer damage on no part (of any type), whose finding
    asks an adjuster for the part."""
    chance: float | None = None
    """The chance it is damage, combined over its photos as `confidence` is, from each
    sighting's `DamageInstance.certainty`. None: no sighting's curves read one."""

    @property
    def certainty(self) -> float:
        """How sure the finding is, as triage and the estimate's range read it: its chance
        where one was read, else its confidence."""
        return self.confidence if self.chance is None else self.chance

    @property
    def type_contradicts_part(self) -> bool:
        """The damage's type cannot be on the part it was put on (a broken lamp on a hood):
        the part or the type is wrong, and an adjuster says which (`damage_part_mismatch`)."""
        return self.part is not None and not damage_fits_part(self.damage_type, self.part)


def stray_on_its_part(finding: PartFinding, findings: Sequence[PartFinding]) -> bool:
    """A damage its part cannot have (a broken lamp on a hood) beside one of `findings` the
    part can have: most likely a neighbour's damage spilt over, so the part is priced for
    what fits it (cdat/estimate.py) and an adjuster says where the stray belongs."""
    return finding.type_contradicts_part and any(
        other.part is finding.part and not other.type_contradicts_part for other in findings
    )


def severity_to_confirm(finding: PartFinding, photos: Sequence[PhotoAnalysis]) -> bool:
    """Every photo showing the finding had its severity read as a close-up, none corrected
    by an adjuster: how severe it is waits on one (the policyholder is told so)."""
    by_id = {p.photo_id: p for p in photos}
    seen = [by_id.get(e.photo_id) for e in finding.evidence]
    return bool(seen) and all(
        p is not None and p.severity_read_close_up and not p.reviewed for p in seen
    )
