"""Raw YOLO-seg outputs -> boxes, scores, classes and masks in the original photo.

Two export layouts are understood, told apart by the output shapes:

* classic: ``output0`` [B, 4+nc+nm, N] (cx, cy, w, h, class scores, mask coefficients),
  NMS done here;
* end-to-end (NMS-free heads): ``output0`` [B, K, 6+nm] (x1, y1, x2, y2, score, class, coeffs).

``output1`` holds the mask prototypes [B, nm, H/4, W/4] in both.

Masks are never upsampled to the full photo: each one is cut to the letterboxed photo
area of the prototype map and resized onto a small *analysis grid* (the photo scaled to
at most `GRID_SIDE` on its longest side). Both models land on the same grid, so
damage/part overlap is a cheap boolean AND, and polygons scale back to photo pixels.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import cv2
import numpy as np

from inference.imaging import Letterbox

GRID_SIDE = 256
MAX_POLYGON_POINTS = 64


@dataclass(frozen=True)
class PostprocessConfig:
    conf: float = 0.25
    iou: float = 0.7
    max_det: int = 100
    agnostic: bool = False


@dataclass(frozen=True)
class PhotoLayers:
    """Some of the model's own layers on one photo (each (1, C, h, w)), beside the letterbox
    that fitted the photo into its input: what a stage reading the model's layers under a
    damage's box needs (inference/layer_severity.py)."""

    layers: tuple[np.ndarray, ...]
    box: Letterbox


@dataclass(frozen=True)
class RawDetections:
    """One photo's detections: boxes in photo pixels, masks on the analysis grid."""

    boxes: np.ndarray
    """(N, 4) float32 x1, y1, x2, y2 in original photo pixels."""
    scores: np.ndarray
    class_ids: np.ndarray
    masks: np.ndarray
    """(N, gh, gw) bool on `grid_shape(width, height)`."""
    best_score: float = 0.0
    """The highest class score anywhere in the photo, kept or not: faint evidence that
    something the model knows is there (a car part seen too close to name with confidence)."""
    layers: PhotoLayers | None = None
    """The photo's tapped layers, from a runtime serving them (`TappedRuntime`), kept
    through a second look's merge (the first look's: `pooled`); None otherwise."""

    @classmethod
    def empty(cls, grid: tuple[int, int], best_score: float = 0.0) -> RawDetections:
        return cls(
            np.zeros((0, 4), np.float32),
            np.zeros(0, np.float32),
            np.zeros(0, np.int64),
            np.zeros((0, *grid), bool),
            best_score,
        )

    def __len__(self) -> int:
        return len(self.scores)

    def rescaled(self, sx: float, sy: float) -> RawDetections:
        """Boxes scaled to a larger copy of the photo (masks are on the grid: unchanged)."""
        if sx == 1.0 and sy == 1.0:
            return self
        factors = np.array([sx, sy, sx, sy], np.float32)
        return RawDetections(
            self.boxes * factors, self.scores, self.class_ids, self.masks, self.best_score,
            self.layers,
        )  # fmt: skip


def grid_shape(width: int, height: int, side: int = GRID_SIDE) -> tuple[int, int]:
    """(rows, cols) of the analysis grid of a width x height photo."""
    scale = min(1.0, side / max(width, height))
    return max(1, round(height * scale)), max(1, round(width * scale))


def is_end2end(output0: np.ndarray, num_masks: int) -> bool:
    return output0.ndim == 3 and output0.shape[2] == 6 + num_masks


def _candidates_classic(pred: np.ndarray, nm: int, cfg: PostprocessConfig) -> tuple | None:
    """[4+nc+nm, N] -> xyxy, score, class, coeffs of boxes above conf, after NMS."""
    nc = pred.shape[0] - 4 - nm
    class_scores = pred[4 : 4 + nc]
    class_ids = class_scores.argmax(0)
    scores = class_scores[class_ids, np.arange(pred.shape[1])]
    keep = scores > cfg.conf
    if not keep.any():
        return None
    cand = pred[:, keep]
    scores, class_ids = scores[keep], class_ids[keep]
    cx, cy, w, h = cand[0], cand[1], cand[2], cand[3]
    xyxy = np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], 1)
    kept = nms(xyxy, scores, class_ids, cfg)
    return xyxy[kept], scores[kept], class_ids[kept], cand[4 + nc :, kept].T


def _candidates_end2end(pred: np.ndarray, cfg: PostprocessConfig) -> tuple | None:
    keep = pred[:, 4] > cfg.conf
    if not keep.any():
        return None
    cand = pred[keep][: cfg.max_det]
    return cand[:, :4], cand[:, 4], cand[:, 5].astype(np.int64), cand[:, 6:]


def nms(
    xyxy: np.ndarray, scores: np.ndarray, class_ids: np.ndarray, cfg: PostprocessConfig
) -> np.ndarray:
    """Indices of the boxes kept, best first (class-aware unless `cfg.agnostic`)."""
    # Offsetting boxes per class makes one NMS pass class-aware (as Ultralytics does).
    offset = 0 if cfg.agnostic else class_ids[:, None].astype(np.float32) * 7680.0
    boxes = xyxy + offset
    order = scores.argsort()[::-1][:30000]
    areas = (boxes[:, 2] - boxes[:, 0]).clip(0) * (boxes[:, 3] - boxes[:, 1]).clip(0)
    kept: list[int] = []
    while order.size and len(kept) < cfg.max_det:
        i = int(order[0])
        kept.append(i)
        rest = order[1:]
        xx1 = np.maximum(boxes[i, 0], boxes[rest, 0])
        yy1 = np.maximum(boxes[i, 1], boxes[rest, 1])
        xx2 = np.minimum(boxes[i, 2], boxes[rest, 2])
        yy2 = np.minimum(boxes[i, 3], boxes[rest, 3])
        inter = (xx2 - xx1).clip(0) * (yy2 - yy1).clip(0)
        iou = inter / (areas[i] + areas[rest] - inter + 1e-9)
        order = rest[iou <= cfg.iou]
    return np.asarray(kept, dtype=np.int64)


def pooled(first: RawDetections, second: RawDetections, cfg: PostprocessConfig) -> RawDetections:
    """Two looks at one photo (both in its coordinates, masks on its grid) as one: pooled
    and reduced by the same NMS as a single look, so what both find is reported once, at
    the higher score. The first look's layers are the photo's own, so a head reading them
    (the close-up severity stage) reads every pooled damage where it lies on the photo."""
    best = max(first.best_score, second.best_score)
    if not len(second):
        return replace(first, best_score=best)
    boxes = np.concatenate([first.boxes, second.boxes])
    scores = np.concatenate([first.scores, second.scores])
    class_ids = np.concatenate([first.class_ids, second.class_ids])
    masks = np.concatenate([first.masks, second.masks])
    keep = nms(boxes, scores, class_ids, cfg)
    found = boxes[keep], scores[keep], class_ids[keep], masks[keep]
    return RawDetections(*found, best, first.layers)


def joined_apart(
    first: RawDetections, added: RawDetections, cfg: PostprocessConfig
) -> RawDetections:
    """`first` with those of `added`'s detections whose box overlaps none of `first`'s
    (IoU over `cfg.iou`, whatever the type) joined to it, best first: a look that adds
    damage where the others propose none and never replaces what they propose. The first
    look's layers stay the photo's own, as in `pooled`."""
    best = max(first.best_score, added.best_score)
    if len(first) and len(added):
        apart = np.flatnonzero(box_iou(added.boxes, first.boxes).max(axis=1) <= cfg.iou)
    else:
        apart = np.arange(len(added))
    if not len(apart):
        return replace(first, best_score=best)
    scores = np.concatenate([first.scores, added.scores[apart]])
    order = np.argsort(-scores, kind="stable")
    boxes = np.concatenate([first.boxes, added.boxes[apart]])[order]
    class_ids = np.concatenate([first.class_ids, added.class_ids[apart]])[order]
    masks = np.concatenate([first.masks, added.masks[apart]])[order]
    return RawDetections(boxes, scores[order], class_ids, masks, best, first.layers)


def agreeing(found: RawDetections, first: RawDetections, iou: float) -> RawDetections:
    """Those of `found`'s detections whose mask overlaps one of `first`'s (whatever the
    type) at mask IoU `iou` or more: what another look sees where the first look saw
    something too, however faintly."""
    if not len(found) or not len(first):
        return kept(found, np.zeros(len(found), bool))
    a = found.masks.reshape(len(found), -1).astype(np.float32)
    b = first.masks.reshape(len(first), -1).astype(np.float32)
    inter = a @ b.T
    union = a.sum(axis=1)[:, None] + b.sum(axis=1)[None, :] - inter
    return kept(found, (inter / np.maximum(union, 1.0)).max(axis=1) >= iou)


def kept(raw: RawDetections, keep: np.ndarray) -> RawDetections:
    """`raw`'s detections where `keep` (a bool per detection) is true."""
    return RawDetections(
        raw.boxes[keep], raw.scores[keep], raw.class_ids[keep], raw.masks[keep], raw.best_score
    )


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of every box of `a` (n, 4) with every box of `b` (m, 4), as (n, m)."""
    x1 = np.maximum(a[:, None, 0], b[None, :, 0])
    y1 = np.maximum(a[:, None, 1], b[None, :, 1])
    x2 = np.minimum(a[:, None, 2], b[None, :, 2])
    y2 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = (x2 - x1).clip(0) * (y2 - y1).clip(0)
    area_a = ((a[:, 2] - a[:, 0]).clip(0) * (a[:, 3] - a[:, 1]).clip(0))[:, None]
    area_b = ((b[:, 2] - b[:, 0]).clip(0) * (b[:, 3] - b[:, 1]).clip(0))[None, :]
    union = area_a + area_b - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-9), 0.0)


def decode(
    output0: np.ndarray, protos: np.ndarray, box: Letterbox, cfg: PostprocessConfig
) -> RawDetections:
    """One photo's raw outputs (no batch axis) -> detections in photo coordinates."""
    nm = protos.shape[0]
    grid = grid_shape(box.width, box.height)
    if is_end2end(output0[None], nm):
        found = _candidates_end2end(output0, cfg)
        best = float(output0[:, 4].max(initial=0.0))
    else:
        found = _candidates_classic(output0, nm, cfg)
        best = float(output0[4 : output0.shape[0] - nm].max(initial=0.0))
    if found is None:
        return RawDetections.empty(grid, best)
    xyxy, scores, class_ids, coeffs = found
    masks = _masks_on_grid(coeffs, protos, xyxy, box, grid)
    boxes = box.to_original(xyxy.astype(np.float32))
    return RawDetections(boxes, scores.astype(np.float32), class_ids.astype(np.int64), masks, best)


def _masks_on_grid(
    coeffs: np.ndarray,
    protos: np.ndarray,
    xyxy: np.ndarray,
    box: Letterbox,
    grid: tuple[int, int],
) -> np.ndarray:
    nm, mh, mw = protos.shape
    logits = (coeffs.astype(np.float32) @ protos.reshape(nm, -1)).reshape(-1, mh, mw)
    stride = box.size / mw
    x0, y0 = box.pad_x / stride, box.pad_y / stride
    x1, y1 = x0 + box.width * box.scale / stride, y0 + box.height * box.scale / stride
    gh, gw = grid
    # Affine map grid pixel centres -> prototype coordinates (sub-pixel accurate crop+resize).
    sx, sy = (x1 - x0) / gw, (y1 - y0) / gh
    warp = np.array([[sx, 0, x0 + 0.5 * sx - 0.5], [0, sy, y0 + 0.5 * sy - 0.5]], np.float32)
    flags = cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP
    # Crop to the box on the prototype grid before resampling, exactly as Ultralytics
    # does (outside -> logit 0), so masks match what the model was validated with.
    cols, rows = np.arange(mw, dtype=np.float32), np.arange(mh, dtype=np.float32)[:, None]
    scaled = xyxy * (mw / box.size)
    # Then to the exact box on the grid: the coarse prototype crop would let a mask spill
    # up to a prototype pixel (4 input pixels) past its box.
    gx = (xyxy[:, [0, 2]] - box.pad_x) / box.scale * (gw / box.width)
    gy = (xyxy[:, [1, 3]] - box.pad_y) / box.scale * (gh / box.height)
    out = np.zeros((len(logits), gh, gw), bool)
    for k, logit in enumerate(logits):
        x_lo, y_lo, x_hi, y_hi = scaled[k]
        inside = (cols >= x_lo) & (cols < x_hi) & (rows >= y_lo) & (rows < y_hi)
        cropped = np.where(inside, logit, np.float32(0.0))
        warped = cv2.warpAffine(cropped, warp, (gw, gh), flags=flags, borderValue=0.0)
        c0, c1 = np.clip(np.round(gx[k]), 0, gw).astype(int)
        r0, r1 = np.clip(np.round(gy[k]), 0, gh).astype(int)
        out[k, r0:r1, c0:c1] = warped[r0:r1, c0:c1] > 0.0
        if not out[k].any():
            # A confident detection whose mask vanished (tiny object, thin scratch) still
            # has a location: its box stands in, so it can be placed on a part.
            out[k, r0 : max(r1, r0 + 1), c0 : max(c1, c0 + 1)] = True
    return out


def mask_polygon(
    mask: np.ndarray, width: int, height: int, max_points: int = MAX_POLYGON_POINTS
) -> tuple[tuple[float, float], ...]:
    """Largest outer contour of a grid mask, simplified, in original photo pixels."""
    contours, _ = cv2.findContours(
        mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE
    )
    if not contours:
        return ()
    contour = max(contours, key=cv2.contourArea)
    epsilon = 0.004 * cv2.arcLength(contour, True)
    simplified = cv2.approxPolyDP(contour, epsilon, True)
    while len(simplified) > max_points:
        epsilon *= 1.5
        simplified = cv2.approxPolyDP(contour, epsilon, True)
    gh, gw = mask.shape
    sx, sy = width / gw, height / gh
    # Contour points are pixel indices; +0.5 lands on pixel centres in photo coordinates.
    return tuple(
        (
            round(min(width, max(0.0, (float(x) + 0.5) * sx)), 1),
            round(min(height, max(0.0, (float(y) + 0.5) * sy)), 1),
        )
        for x, y in simplified.reshape(-1, 2)
    )
