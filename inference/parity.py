"""Does a candidate runtime or precision find what FP32 finds? Detection parity, which the
precision gate (`training.precision_gate`) measures and records as information beside the
accuracy on labelled val that decides, and which the bench reports per variant.

Detections are matched greedily, same class, highest box IoU first at >= `MATCH_IOU`;
for each match the mask IoU on the analysis grid and the score drift are measured. The
FP32 ONNX Runtime model is the reference: it is what the model was evaluated as.

`Tolerance` holds the parity limits. They were stated, before any candidate is
measured, from what the downstream stages need: a lost damage is a lost repair line
(so most of FP32's detections must be found), a moved mask moves the damage onto another
part, and a drifting score moves detections across the served threshold.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from inference.postprocess import RawDetections, box_iou
from inference.runtime import Runtime

MATCH_IOU = 0.5


@dataclass(frozen=True)
class Tolerance:
    min_recall: float = 0.95
    """Share of the reference's detections the candidate must find."""
    min_precision: float = 0.95
    """Share of the candidate's detections the reference must also find."""
    min_mask_iou: float = 0.85
    """Mean mask IoU over matched detections."""
    max_mean_score_drift: float = 0.02
    max_score_drift: float = 0.15


@dataclass(frozen=True)
class Parity:
    photos: int
    reference: int
    """Detections of the reference (FP32)."""
    candidate: int
    matched: int
    mean_box_iou: float | None
    mean_mask_iou: float | None
    mean_score_drift: float | None
    max_score_drift: float | None

    @property
    def recall(self) -> float:
        return self.matched / self.reference if self.reference else 1.0

    @property
    def precision(self) -> float:
        return self.matched / self.candidate if self.candidate else 1.0

    def as_dict(self) -> dict[str, Any]:
        return {
            **asdict(self),
            "recall": round(self.recall, 4),
            "precision": round(self.precision, 4),
        }


@dataclass(frozen=True)
class Verdict:
    parity: Parity
    tolerance: Tolerance
    reasons: tuple[str, ...] = field(default_factory=tuple)

    @property
    def passed(self) -> bool:
        return not self.reasons

    def as_dict(self) -> dict[str, Any]:
        return {
            "passed": self.passed,
            "parity": self.parity.as_dict(),
            "tolerance": asdict(self.tolerance),
            "reasons": list(self.reasons),
        }


def match(a: RawDetections, b: RawDetections, min_iou: float = MATCH_IOU) -> list[tuple[int, int]]:
    """Pairs (i in a, j in b): same class, best box IoU first, each used once."""
    if not len(a) or not len(b):
        return []
    iou = box_iou(a.boxes.astype(np.float64), b.boxes.astype(np.float64))
    iou[a.class_ids[:, None] != b.class_ids[None, :]] = 0.0
    pairs: list[tuple[int, int]] = []
    used_a: set[int] = set()
    used_b: set[int] = set()
    for flat in np.argsort(-iou, axis=None, kind="stable"):
        i, j = divmod(int(flat), iou.shape[1])
        if iou[i, j] < min_iou:
            break
        if i in used_a or j in used_b:
            continue
        pairs.append((i, j))
        used_a.add(i)
        used_b.add(j)
    return pairs


def _mask_iou(a: np.ndarray, b: np.ndarray) -> float:
    union = np.logical_or(a, b).sum()
    return float(np.logical_and(a, b).sum() / union) if union else 1.0


def compare(reference: Sequence[RawDetections], candidate: Sequence[RawDetections]) -> Parity:
    """Both runtimes' detections on the same photos, in the same order."""
    box_ious: list[float] = []
    mask_ious: list[float] = []
    drifts: list[float] = []
    for a, b in zip(reference, candidate, strict=True):
        pairs = match(a, b)
        for i, j in pairs:
            box_ious.append(float(box_iou(a.boxes[i : i + 1], b.boxes[j : j + 1])[0, 0]))
            mask_ious.append(_mask_iou(a.masks[i], b.masks[j]))
            drifts.append(abs(float(a.scores[i]) - float(b.scores[j])))

    def mean(values: list[float]) -> float | None:
        return round(float(np.mean(values)), 4) if values else None

    return Parity(
        photos=len(reference),
        reference=sum(len(r) for r in reference),
        candidate=sum(len(c) for c in candidate),
        matched=len(box_ious),
        mean_box_iou=mean(box_ious),
        mean_mask_iou=mean(mask_ious),
        mean_score_drift=mean(drifts),
        max_score_drift=round(max(drifts), 4) if drifts else None,
    )


def judge(parity: Parity, tolerance: Tolerance | None = None) -> Verdict:
    """The gate: every limit of `tolerance` met, or the reasons it is not."""
    tol = tolerance or Tolerance()
    reasons = []
    if parity.reference == 0:
        reasons.append("the reference found nothing on these photos: nothing to compare")
    if parity.recall < tol.min_recall:
        reasons.append(
            f"found {parity.matched} of the reference's {parity.reference} detections "
            f"({parity.recall:.3f} < {tol.min_recall})"
        )
    if parity.precision < tol.min_precision:
        reasons.append(
            f"{parity.candidate - parity.matched} of its {parity.candidate} detections are not "
            f"the reference's ({parity.precision:.3f} < {tol.min_precision})"
        )
    if parity.mean_mask_iou is not None and parity.mean_mask_iou < tol.min_mask_iou:
        reasons.append(f"mean mask IoU {parity.mean_mask_iou} < {tol.min_mask_iou}")
    if parity.mean_score_drift is not None and parity.mean_score_drift > tol.max_mean_score_drift:
        reasons.append(f"mean score drift {parity.mean_score_drift} > {tol.max_mean_score_drift}")
    if parity.max_score_drift is not None and parity.max_score_drift > tol.max_score_drift:
        reasons.append(f"largest score drift {parity.max_score_drift} > {tol.max_score_drift}")
    return Verdict(parity, tol, tuple(reasons))


def gate(
    reference: Runtime,
    candidate: Runtime,
    images: Sequence[np.ndarray],
    tolerance: Tolerance | None = None,
) -> Verdict:
    """The candidate's detections against the reference's on `images`, judged."""
    return judge(compare(reference.infer(images), candidate.infer(images)), tolerance)
