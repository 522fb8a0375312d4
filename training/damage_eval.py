"""Damage figures beyond mAP: recall at IoU 0.3, and severity from the served severity stage.

`damage_recall_iou30`: the share of labelled damages that some predicted damage (any type,
at the served confidence threshold) overlaps at mask IoU >= 0.3: what a claim needs is
that the damage is *found*, even where its outline differs from the labeller's.
`damage_precision_iou30`: the share of predicted damages that overlap a labelled one so.

Severity: on predictions matched to a labelled damage (mask IoU >= 0.5, greedy by score),
the severity stage's answer against the label, wherever the label has a severity. Both
are tallied per source data set (the converter prefixes each photo `<dataset>__`).

Recall is also broken down by the labelled damage's type and, where labelled, severity
(`recall_per_type`, `recall_per_severity`): a missed minor scratch and a missed severe
damage cost a claim very differently, and the pooled figure hides which one a model misses.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from cdat.taxonomy import DamageType, Severity
from inference.severity import SEVERITIES, SeverityModel, severity_features
from training.matching import Instance, mask_iou, match
from training.severity import severity_scores

RECALL_IOU = 0.3


def source_of(image: Path) -> str:
    return image.name.split("__", 1)[0] if "__" in image.name else "unknown"


def truth_severities(image: Path) -> list[str]:
    """The converter's severity sidecar beside the label ('-' where none was labelled)."""
    sidecar = image.parent.parent.parent / "severity" / image.parent.name / f"{image.stem}.txt"
    return sidecar.read_text().splitlines() if sidecar.exists() else []


@dataclass
class _SourceTally:
    truths: int = 0
    found: int = 0
    predictions: int = 0
    true_predictions: int = 0
    severity_truth: list[int] = field(default_factory=list)
    severity_predicted: list[int] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "instances": self.truths,
            "damage_recall_iou30": self.found / self.truths if self.truths else None,
            "damage_precision_iou30": (
                self.true_predictions / self.predictions if self.predictions else None
            ),
            "severity_matched": len(self.severity_truth),
            "severity_accuracy": None,
            "severity_balanced_accuracy": None,
        }
        if self.severity_truth:
            scores = severity_scores(
                np.asarray(self.severity_truth), np.asarray(self.severity_predicted)
            )
            out["severity_accuracy"] = scores["accuracy"]
            out["severity_balanced_accuracy"] = scores["balanced_accuracy"]
        return out


@dataclass
class _RecallTally:
    instances: int = 0
    found: int = 0

    def as_dict(self) -> dict[str, Any]:
        recall = self.found / self.instances if self.instances else None
        return {"instances": self.instances, "damage_recall_iou30": recall}


def _recall_breakdown(tallies: dict[str, _RecallTally]) -> dict[str, dict[str, Any]]:
    return {name: t.as_dict() for name, t in sorted(tallies.items())}


@dataclass
class DamageTally:
    """Recall and severity per source; `add_image` once per evaluated photo."""

    severity: SeverityModel | None
    sources: dict[str, _SourceTally] = field(default_factory=lambda: defaultdict(_SourceTally))
    by_type: dict[str, _RecallTally] = field(default_factory=lambda: defaultdict(_RecallTally))
    by_severity: dict[str, _RecallTally] = field(default_factory=lambda: defaultdict(_RecallTally))

    def add_image(
        self,
        image_path: Path,
        image: np.ndarray,
        preds: list[Instance],
        truths: list[Instance],
    ) -> None:
        tally = self.sources[source_of(image_path)]
        tally.truths += len(truths)
        tally.predictions += len(preds)
        found: np.ndarray = np.zeros(len(truths), bool)
        if preds and truths:
            overlap = mask_iou(preds, truths) >= RECALL_IOU
            found = np.asarray(overlap.any(0), bool)
            tally.found += int(found.sum())
            tally.true_predictions += int(overlap.any(1).sum())
        labelled = truth_severities(image_path)
        self._add_breakdown(truths, labelled, found)
        if self.severity is None or len(labelled) != len(truths):
            return
        for p, t in match(preds, truths, 0.5):
            if labelled[t] not in Severity._value2member_map_:
                continue
            damage_type = DamageType(preds[p].class_name.rpartition("-")[2])
            features = severity_features(image, preds[p].mask, damage_type)
            predicted = self.severity.predict(features)[0]
            tally.severity_truth.append(SEVERITIES.index(Severity(labelled[t])))
            tally.severity_predicted.append(SEVERITIES.index(predicted))

    def _add_breakdown(
        self, truths: list[Instance], labelled: list[str], found: np.ndarray
    ) -> None:
        severities = labelled if len(labelled) == len(truths) else [""] * len(truths)
        for truth, severity, hit in zip(truths, severities, found, strict=True):
            groups = [self.by_type[truth.class_name]]
            if severity in Severity._value2member_map_:
                groups.append(self.by_severity[severity])
            for group in groups:
                group.instances += 1
                group.found += int(hit)

    def metrics(self) -> dict[str, Any]:
        """The registry names over all sources, and `per_source` beside them."""
        total = _SourceTally()
        for tally in self.sources.values():
            total.truths += tally.truths
            total.found += tally.found
            total.predictions += tally.predictions
            total.true_predictions += tally.true_predictions
            total.severity_truth += tally.severity_truth
            total.severity_predicted += tally.severity_predicted
        out = total.as_dict()
        out.pop("instances")
        out["per_source"] = {name: t.as_dict() for name, t in sorted(self.sources.items())}
        out["recall_per_type"] = _recall_breakdown(self.by_type)
        out["recall_per_severity"] = _recall_breakdown(self.by_severity)
        return out
