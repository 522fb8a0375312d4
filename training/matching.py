"""Instance matching by mask IoU, and the severity / class confusion it yields.

Pure numpy: predictions and ground truth are boolean masks at photo size. A
prediction matches the unmatched ground-truth instance it overlaps most, if that
mask IoU is at least `iou_threshold`, highest-scoring predictions first, class
ignored; severity and class are then compared on the matched pairs.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from cdat.taxonomy import Severity, parse_damage_class

SEVERITIES = [s.value for s in Severity]
BACKGROUND = "background"


@dataclass(frozen=True)
class Instance:
    class_name: str
    mask: np.ndarray
    score: float = 1.0


def mask_iou(a: list[Instance], b: list[Instance]) -> np.ndarray:
    if not a or not b:
        return np.zeros((len(a), len(b)))
    fa = np.stack([i.mask.reshape(-1) for i in a]).astype(np.float32)
    fb = np.stack([i.mask.reshape(-1) for i in b]).astype(np.float32)
    inter = fa @ fb.T
    union = fa.sum(1)[:, None] + fb.sum(1)[None, :] - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-9), 0.0)


def match(
    preds: list[Instance], truths: list[Instance], iou_threshold: float = 0.5
) -> list[tuple[int, int]]:
    """(prediction index, truth index) pairs; greedy by prediction score."""
    iou = mask_iou(preds, truths)
    taken: set[int] = set()
    pairs = []
    for p in sorted(range(len(preds)), key=lambda k: -preds[k].score):
        candidates = [(iou[p, t], t) for t in range(len(truths)) if t not in taken]
        if candidates:
            best, t = max(candidates)
            if best >= iou_threshold:
                taken.add(t)
                pairs.append((p, t))
    return pairs


@dataclass
class Confusion:
    labels: list[str]
    matrix: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        self.matrix = np.zeros((len(self.labels), len(self.labels)), dtype=np.int64)

    def add(self, truth: str, predicted: str) -> None:
        self.matrix[self.labels.index(truth), self.labels.index(predicted)] += 1

    @property
    def accuracy(self) -> float | None:
        total = int(self.matrix.sum())
        return float(np.trace(self.matrix)) / total if total else None


def severity_of(class_name: str) -> str:
    return parse_damage_class(class_name)[1].value


@dataclass
class MatchStats:
    """Accumulates class confusion (with background) and, for damage, severity confusion."""

    classes: list[str]
    damage: bool
    iou_threshold: float = 0.5
    classes_cm: Confusion = field(init=False)
    severity_cm: Confusion = field(init=False)

    def __post_init__(self) -> None:
        self.classes_cm = Confusion([*self.classes, BACKGROUND])
        self.severity_cm = Confusion(list(SEVERITIES))

    def add_image(self, preds: list[Instance], truths: list[Instance]) -> None:
        pairs = match(preds, truths, self.iou_threshold)
        for p, t in pairs:
            truth, pred = truths[t].class_name, preds[p].class_name
            self.classes_cm.add(truth, pred)
            if self.damage:
                self.severity_cm.add(severity_of(truth), severity_of(pred))
        matched_p = {p for p, _ in pairs}
        matched_t = {t for _, t in pairs}
        for t, inst in enumerate(truths):
            if t not in matched_t:
                self.classes_cm.add(inst.class_name, BACKGROUND)
        for p, inst in enumerate(preds):
            if p not in matched_p:
                self.classes_cm.add(BACKGROUND, inst.class_name)

    @property
    def matched(self) -> int:
        return int(self.classes_cm.matrix[:-1, :-1].sum())

    @property
    def correct(self) -> int:
        return int(np.trace(self.classes_cm.matrix[:-1, :-1]))

    @property
    def precision(self) -> float | None:
        """Share of predictions at the threshold that match a truth of their class: what a
        lower served threshold costs on photos whose every instance is labelled."""
        predicted = int(self.classes_cm.matrix[:, :-1].sum())
        return self.correct / predicted if predicted else None

    @property
    def recall(self) -> float | None:
        """Share of labelled instances matched by a prediction of their class."""
        labelled = int(self.classes_cm.matrix[:-1, :].sum())
        return self.correct / labelled if labelled else None
