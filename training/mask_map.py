"""Mask mAP50 of a served runtime on labelled held-out photos, without Ultralytics.

`cdat evaluate` gets mAP from Ultralytics' validator, which runs its own pre- and
post-processing on a PyTorch, ONNX or OpenVINO model: it cannot run a model as serving
does (our letterbox, decoding and masks on the analysis grid, any backend and precision).
The precision gate needs the same figure for FP32 and for a candidate precision from the
same code, so this measures it through `inference.runtime.DetectorRuntime`:

* detections at confidence >= 0.001, NMS IoU 0.7 (the validator's settings), masks on the
  analysis grid (`inference.postprocess.grid_shape`), outlines drawn on the same grid;
* per class, detections in falling score order each match the unmatched outline of their
  class with the highest mask IoU, a true positive at IoU >= 0.5;
* AP is the area under the precision envelope sampled at 101 recall points (COCO's rule);
  mAP50 the mean over the classes with an outline in the split.

The figure is close to, not equal to, the validator's (other mask resolution, other
interpolation): compare it with itself, FP32 against a candidate, never with a card.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from inference.postprocess import PostprocessConfig, grid_shape
from inference.runtime import Runtime
from training.closeup import _polygon_mask

MAP_CONFIG = PostprocessConfig(conf=0.001, iou=0.7, max_det=100)
MATCH_IOU = 0.5
RECALL_POINTS = np.linspace(0.0, 1.0, 101)

Polygon = tuple[float, ...]
"""Normalised x, y pairs, as the data-set readers give them."""


@dataclass(frozen=True)
class LabelledPhoto:
    image: np.ndarray
    """Upright BGR uint8 photo."""
    outlines: tuple[tuple[int, Polygon], ...]
    """(class id of the model, normalised polygon) per labelled instance."""


def average_precision(scores: Sequence[float], hits: Sequence[bool], truths: int) -> float:
    """AP of one class from its detections (score, true positive?) over all photos."""
    if truths == 0 or not len(scores):
        return 0.0
    order = np.argsort(-np.asarray(scores, np.float64), kind="stable")
    hit = np.asarray(hits, bool)[order]
    tp = np.cumsum(hit)
    fp = np.cumsum(~hit)
    recall = tp / truths
    precision = tp / np.maximum(tp + fp, 1)
    envelope = np.maximum.accumulate(precision[::-1])[::-1]
    at = np.searchsorted(recall, RECALL_POINTS, side="left")
    sampled = np.where(at < len(envelope), envelope[np.minimum(at, len(envelope) - 1)], 0.0)
    return float(sampled.mean())


def _mask_iou(a: np.ndarray, b: np.ndarray) -> float:
    union = int(np.logical_or(a, b).sum())
    return int(np.logical_and(a, b).sum()) / union if union else 0.0


def match_photo(
    masks: np.ndarray, scores: np.ndarray, class_ids: np.ndarray, truths: list[tuple[int, Any]]
) -> list[bool]:
    """For each detection (in the given order), is it a true positive?"""
    hits = [False] * len(scores)
    used: set[int] = set()
    for i in np.argsort(-scores, kind="stable"):
        best, best_iou = -1, MATCH_IOU
        for j, (cls, mask) in enumerate(truths):
            if j in used or cls != int(class_ids[i]):
                continue
            iou = _mask_iou(masks[i], mask)
            if iou >= best_iou:
                best, best_iou = j, iou
        if best >= 0:
            used.add(best)
            hits[int(i)] = True
    return hits


def mask_map50(runtime: Runtime, photos: Sequence[LabelledPhoto], classes: Sequence[str]) -> dict:
    """{"mask_map50", "per_class": {name: {"ap50", "instances"}}, "photos", "instances"}."""
    scores: dict[int, list[float]] = {}
    hits: dict[int, list[bool]] = {}
    counts: dict[int, int] = {}
    for photo in photos:
        raw = runtime.infer([photo.image])[0]
        height, width = photo.image.shape[:2]
        grid = grid_shape(width, height)
        truths = [(cls, _polygon_mask(poly, grid, scale=True)) for cls, poly in photo.outlines]
        for cls, _ in truths:
            counts[cls] = counts.get(cls, 0) + 1
        for i, hit in enumerate(match_photo(raw.masks, raw.scores, raw.class_ids, truths)):
            cls = int(raw.class_ids[i])
            scores.setdefault(cls, []).append(float(raw.scores[i]))
            hits.setdefault(cls, []).append(hit)
    per_class = {
        classes[cls]: {
            "ap50": average_precision(scores.get(cls, []), hits.get(cls, []), n),
            "instances": n,
        }
        for cls, n in sorted(counts.items())
    }
    aps = [c["ap50"] for c in per_class.values()]
    return {
        "mask_map50": float(np.mean(aps)) if aps else None,
        "per_class": per_class,
        "photos": len(photos),
        "instances": sum(counts.values()),
    }


def labelled_split(
    config: Path, split: str, classes: Sequence[str], seed: int, data_root: Path
) -> list[LabelledPhoto]:
    """A data set's held-out photos with their outlines mapped to the model's classes
    (`minor-dent` -> `dent` for a model of types); outlines of other classes are left out."""
    from inference.imaging import decode_photo
    from training.convert import split_records
    from training.dataconfig import detector_class, load_dataset_config

    names = list(classes)
    out = []
    for rec in split_records(load_dataset_config(config, data_root), split, seed):
        outlines = []
        for name, polygon in rec.instances:
            cls, _ = detector_class(name, names)
            if cls in names:
                outlines.append((names.index(cls), tuple(polygon)))
        out.append(LabelledPhoto(decode_photo(rec.image.read_bytes()), tuple(outlines)))
    return out
