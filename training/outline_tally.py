"""The tally of one source's labelled regions against a claim's reported damages: regions
found at mask IoU 0.3, the part family each landed on, damages lying off every label
(training/claim_eval.py says what each figure answers)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from cdat.findings import DamageInstance, PhotoAnalysis
from cdat.merge import merge_findings
from cdat.part_family import family_of, family_right
from cdat.taxonomy import PartFamily, Severity
from training.closeup import _polygon_mask
from training.convert import source_group
from training.intervals import share_interval

RECALL_IOU = 0.3
SEVERE = "severe"
OFF_LABEL_SHARE = 0.1
"""A reported damage with less of its mask inside the photo's labelled regions lies off them."""


@dataclass(frozen=True)
class Outline:
    mask: np.ndarray
    family: PartFamily | None = None
    severity: str | None = None


@dataclass
class OutlineTally:
    """Regions found and the part family they landed on, for one source."""

    photos: int = 0
    photos_with_damage: int = 0
    refused: int = 0
    regions: int = 0
    found: int = 0
    family_right: int = 0
    severe: int = 0
    severe_found: int = 0
    severe_called: dict[str, int] = field(default_factory=dict)
    """Severe regions found -> the severity the photo, as a claim of its own, prices them at
    (`priced_severity`): heavy damage under-called prices a repair where a part is
    replaced."""
    damages: int = 0
    """Damages reported over the source's photos: one damage named several times (several
    types and boxes over one dent) is more of them for an adjuster to read."""
    on_no_part: int = 0
    """Regions found whose damage lies on no part: unpriced, for an adjuster to place."""
    off_labels: int = 0
    """Damages reported that lie (less than `OFF_LABEL_SHARE` of their mask) outside every
    labelled region of their photo. These sources outline each damage, so such a finding is
    a false one or damage the labeller left out: an upper bound on false findings."""
    per_family: dict[str, list[int]] = field(default_factory=dict)
    """Named family -> [regions, found, found on the right family, found on no part]."""
    landed: dict[str, dict[str, int]] = field(default_factory=dict)
    """Named family -> the family each of its found regions landed on -> regions."""
    per_photo: dict[str, list[int]] = field(default_factory=dict)
    """Source photo (its augmented copies together) -> [regions, found, found on the right
    family]: the intervals resample these (training/intervals.py)."""

    def add_photo(self, analysis: PhotoAnalysis, outlines: list[Outline]) -> None:
        self.photos += 1
        self.photos_with_damage += bool(analysis.damages)
        self.refused += analysis.refused_no_vehicle
        self.damages += len(analysis.damages)
        masks = damage_masks(analysis)
        self.off_labels += sum(off_labels(mask, outlines) for mask in masks)
        for outline in outlines:
            self.add_outline(outline, analysis, masks)

    def add_outline(
        self, outline: Outline, analysis: PhotoAnalysis, masks: list[np.ndarray]
    ) -> None:
        ious = [mask_iou(mask, outline.mask) for mask in masks]
        self.add_outline_ious(outline, analysis, ious)

    def add_outline_ious(
        self, outline: Outline, analysis: PhotoAnalysis, ious: Sequence[float]
    ) -> None:
        """One region, from its IoU with each of the photo's damages (in order): a rule sweep
        computes the IoUs once and scores each candidate's damages from them."""
        hit = bool(len(ious)) and max(ious) >= RECALL_IOU
        self.regions += 1
        self.found += hit
        photo = self.per_photo.setdefault(source_group(analysis.photo_id), [0, 0, 0])
        photo[0] += 1
        photo[1] += hit
        if outline.severity == SEVERE:
            self.severe += 1
            self.severe_found += hit
            if hit:
                best = analysis.damages[int(np.argmax(ious))]
                called = priced_severity(analysis, best).value
                self.severe_called[called] = self.severe_called.get(called, 0) + 1
        if outline.family is None:
            return
        counts = self.per_family.setdefault(outline.family.value, [0, 0, 0, 0])
        counts[0] += 1
        if hit:
            best = analysis.damages[int(np.argmax(ious))]
            right = family_right(outline.family, best.part)
            self.family_right += right
            self.on_no_part += best.part is None
            counts[1] += 1
            counts[2] += right
            counts[3] += best.part is None
            photo[2] += right
            landed = self.landed.setdefault(outline.family.value, {})
            got = family_of(best.part).value
            landed[got] = landed.get(got, 0) + 1

    def report(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "photos": self.photos,
            "regions": self.regions,
            "damage_recall_iou30": _share(self.found, self.regions),
            "photos_with_damage": _share(self.photos_with_damage, self.photos),
            "refused_no_vehicle": _share(self.refused, self.photos),
            "damages_per_photo": _share(self.damages, self.photos),
            "damages_off_labels": _share(self.off_labels, self.damages),
            "source_photos_with_regions": len(self.per_photo),
            "damage_recall_iou30_interval": share_interval(
                {k: (found, n) for k, (n, found, _) in self.per_photo.items()}
            ),
        }
        if self.severe:
            out["severe_regions"] = self.severe
            out["severe_damage_recall_iou30"] = _share(self.severe_found, self.severe)
            out["severe_called_severe"] = _share(
                self.severe_called.get(SEVERE, 0), self.severe_found
            )
            out["severe_called"] = dict(sorted(self.severe_called.items()))
        if self.per_family:
            out["part_family_accuracy"] = _share(self.family_right, self.found)
            out["part_family_accuracy_interval"] = share_interval(
                {k: (right, found) for k, (_, found, right) in self.per_photo.items()}
            )
            out["found_on_no_part"] = _share(self.on_no_part, self.found)
            out["per_family"] = {
                family: {
                    "regions": n,
                    "damage_recall_iou30": _share(hit, n),
                    "part_family_accuracy": _share(right, hit),
                    "found_on_no_part": _share(unplaced, hit),
                    "landed_on": dict(sorted(self.landed.get(family, {}).items())),
                }
                for family, (n, hit, right, unplaced) in sorted(self.per_family.items())
            }
        return out


def priced_severity(analysis: PhotoAnalysis, damage: DamageInstance) -> Severity:
    """The severity a damage is priced at when its photo is a claim of its own: its
    finding's (`cdat.merge`: the part's damages of its type together, at the worst credible
    severity), or its own where no finding holds it (on no part; a photo no claim uses)."""
    found = merge_findings([analysis]) if damage.part is not None else ()
    same = (f for f in found if f.part is damage.part and f.damage_type is damage.damage_type)
    return next((f.severity for f in same), damage.severity)


def _share(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def off_labels(mask: np.ndarray, outlines: Sequence[Outline]) -> bool:
    """Whether less than `OFF_LABEL_SHARE` of a damage's mask lies in any labelled region."""
    area = int(mask.sum())
    if not area:
        return False
    inside = np.zeros_like(mask)
    for outline in outlines:
        inside |= outline.mask
    return int((mask & inside).sum()) < OFF_LABEL_SHARE * area


def mask_iou(a: np.ndarray, b: np.ndarray) -> float:
    union = int((a | b).sum())
    return int((a & b).sum()) / union if union else 0.0


def damage_masks(analysis: PhotoAnalysis) -> list[np.ndarray]:
    shape = (analysis.height, analysis.width)
    return [_polygon_mask(d.polygon, shape, scale=False) for d in analysis.damages]
