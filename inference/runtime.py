"""Model runtimes behind one interface: photos in, `RawDetections` out.

`DetectorRuntime` runs any backend's session (`inference.backends`); `OnnxRuntime` is
ONNX Runtime FP32, the fallback that works everywhere (no PyTorch).
`inference.ultralytics_runtime` holds the PyTorch one (parity checks, GPU).
`SegmentationModel` pairs a runtime with its registry entry and turns detections into
`cdat` types.
"""

from __future__ import annotations

import ast
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from cdat.findings import Box, DamageInstance, PartInstance
from cdat.taxonomy import CarPart, DamageType, Severity, parse_damage_class
from inference.backends import ModelSession, OrtSession
from inference.crop_memo import CropMemo
from inference.errors import InferenceError, ModelUnavailable
from inference.imaging import letterbox, to_tensor
from inference.postprocess import (
    PostprocessConfig,
    RawDetections,
    agreeing,
    decode,
    joined_apart,
    mask_polygon,
    pooled,
)
from inference.registry import ModelEntry
from inference.severity import SeverityModel, SeverityView, severity_view, view_features

if TYPE_CHECKING:  # it builds on this module's runtime
    from inference.layer_severity import LayerSeverityHead

CORNER_AGREEMENT_IOU = 0.3
"""A corner's detection is added only where one of the first look's own (any type, from the
served threshold) overlaps its mask this much: magnified, wheels and reflections look like
damage where the first look saw nothing (docs/model-experiments.md, candidates (L), (O))."""

# Data-set spellings that differ from the taxonomy (damage-severity says "broken").
_DAMAGE_ALIASES = {"broken": DamageType.BROKEN_PART, "glass": DamageType.GLASS_SHATTER}


class Runtime(Protocol):
    imgsz: int
    num_classes: int

    def infer(self, images: Sequence[np.ndarray]) -> list[RawDetections]:
        """Upright BGR uint8 photos -> one `RawDetections` each, in photo coordinates."""
        ...


class SecondLook(Runtime, Protocol):
    """A runtime pooling a second look with the first (inference/second_look.py)."""

    config: PostprocessConfig

    def second(self, image: np.ndarray) -> RawDetections:
        """The second look alone at one photo, brought back onto the photo."""
        ...


class DetectorRuntime:
    """A model session (any backend) with the letterboxing before and decoding after it."""

    def __init__(
        self,
        session: ModelSession,
        *,
        batch_size: int = 1,
        config: PostprocessConfig | None = None,
    ) -> None:
        self.session = session
        self.config = config or PostprocessConfig()
        shapes = session.shapes
        self.imgsz = shapes.imgsz
        # A fixed batch dimension (the default export) dictates the batch we can send.
        self.fixed_batch = shapes.batch
        self.batch_size = self.fixed_batch or max(1, batch_size)
        self.num_masks = int(shapes.protos[1] or 0)
        width0 = shapes.output0[1] or 0
        self.num_classes = (
            -1 if shapes.output0[2] == 6 + self.num_masks else int(width0) - 4 - self.num_masks
        )
        self.metadata = session.metadata

    @property
    def label(self) -> str:
        return self.session.label

    def class_names(self) -> list[str]:
        """Class names stored by the exporter in the ONNX metadata (may be empty)."""
        raw = self.metadata.get("names")
        if not raw:
            return []
        names = ast.literal_eval(raw)
        return [str(names[k]) for k in sorted(names)]

    def infer(self, images: Sequence[np.ndarray]) -> list[RawDetections]:
        results: list[RawDetections] = []
        for start in range(0, len(images), self.batch_size):
            chunk = images[start : start + self.batch_size]
            boxed = [letterbox(image, self.imgsz) for image in chunk]
            canvases = [canvas for canvas, _ in boxed]
            if self.fixed_batch and len(canvases) < self.fixed_batch:
                canvases += [canvases[-1]] * (self.fixed_batch - len(canvases))
            output0, protos = self.session.run(to_tensor(canvases))
            for k, (_, box) in enumerate(boxed):
                results.append(decode(output0[k], protos[k], box, self.config))
        return results


class OnnxRuntime(DetectorRuntime):
    """ONNX Runtime on the CPU; one session per model, reused for every call."""

    def __init__(
        self,
        path: Path,
        *,
        threads: int = 2,
        batch_size: int = 1,
        config: PostprocessConfig | None = None,
        providers: Sequence[str] | None = None,
    ) -> None:
        session = OrtSession(
            path, threads=threads, providers=tuple(providers) if providers else None
        )
        super().__init__(session, batch_size=batch_size, config=config)


DamageLabel = DamageType | tuple[DamageType, Severity]


def damage_class(name: str) -> DamageLabel:
    """A damage model class name -> its type (severity assessed apart) or, for models
    whose classes pair them, (type, severity); tolerant of data-set spellings."""
    if name in DamageType._value2member_map_:
        return DamageType(name)
    try:
        return parse_damage_class(name)
    except ValueError:
        severity, _, damage = name.partition("-")
        if damage in _DAMAGE_ALIASES:
            return _DAMAGE_ALIASES[damage], Severity(severity)
        raise


@dataclass
class SegmentationModel:
    """A loaded model and what its classes mean."""

    entry: ModelEntry
    runtime: Runtime
    severity: SeverityModel | None = None
    """The severity stage, for a damage model whose classes are types only."""
    closeup_severity: SeverityModel | LayerSeverityHead | None = None
    """The severity stage of photos which are no whole-car view, where one is served: hand
    features, or a head on the model's own layers (inference/layer_severity.py)."""
    closeup_runtime: SecondLook | None = None
    """The runtime of photos the gate reads under the entry's `zoom_look_view_below`, where
    one is served: the model with its second look from further away (inference/zoom_look.py)."""
    middle_runtime: SecondLook | None = None
    """The closer middle look taken where the first look finds damage, where the entry
    serves one (`middle_look_where_found`: inference/crop_look.py)."""
    detector_look: SecondLook | None = None
    """A second detector's look taken where the first look finds damage, where the entry
    names one (`detector_where_found`: inference/detector_look.py)."""
    corner_runtime: SecondLook | None = None
    """The closer looks at the four corners taken where the first look finds damage, where
    the entry serves them (`corner_looks_where_found`: inference/crop_look.py)."""

    def __post_init__(self) -> None:
        nc = self.runtime.num_classes
        if nc >= 0 and nc != len(self.entry.classes):
            raise ModelUnavailable(
                f"model {self.entry.id} predicts {nc} classes but the registry lists "
                f"{len(self.entry.classes)}"
            )
        try:
            if self.entry.task == "damage":
                self._labels: list[Any] = [damage_class(n) for n in self.entry.classes]
            else:
                self._labels = [CarPart(n) for n in self.entry.classes]
        except ValueError as exc:
            raise ModelUnavailable(f"model {self.entry.id} has an unknown class: {exc}") from exc
        typed_only = any(isinstance(label, DamageType) for label in self._labels)
        if self.entry.task == "damage" and typed_only and self.severity is None:
            raise ModelUnavailable(
                f"damage model {self.entry.id} detects types only and needs its severity "
                "stage (the registry entry's severity_model)"
            )

    @property
    def version(self) -> str:
        return self.entry.id

    def infer(self, images: Sequence[np.ndarray]) -> list[RawDetections]:
        return self.runtime.infer(images)

    def infer_by_view(
        self, images: Sequence[np.ndarray], views: Sequence[float | None]
    ) -> list[RawDetections]:
        """`infer`, but photos whose whole-car view the gate read (`views`, in order) under
        the entry's `zoom_look_view_below` go to the close-up runtime; a photo whose view
        was not read, and every photo where no close-up runtime is served, to `runtime`.
        An entry that takes the look only where damage is found (`zoom_look_where_found`)
        sends every photo to `runtime`: the analyzer looks again later (`looked_again`)."""
        bar = self.entry.zoom_look_view_below
        if self.closeup_runtime is None or bar is None or self.entry.zoom_look_where_found:
            return self.infer(images)
        close = [view is not None and view < bar for view in views]
        near = [im for im, c in zip(images, close, strict=True) if c]
        far = [im for im, c in zip(images, close, strict=True) if not c]
        near_found = iter(self.closeup_runtime.infer(near) if near else [])
        far_found = iter(self.runtime.infer(far) if far else [])
        return [next(near_found) if c else next(far_found) for c in close]

    def looks_again(self, view: float | None) -> bool:
        """Whether a photo whose first look found damage is looked at again
        (`again_looks`, a second detector, the corners)."""
        apart = self.detector_look is not None or self.corner_runtime is not None
        return bool(self.again_looks(view)) or apart

    def again_looks(self, view: float | None) -> list[SecondLook]:
        """The looks taken again at a photo whose first look found damage and pooled with
        it: from further away where the entry's `zoom_look_where_found` does so under its
        bar (the gate's read `view`), the middle where it serves `middle_look_where_found`."""
        looks = []
        bar = self.entry.zoom_look_view_below
        zoom = self.closeup_runtime if self.entry.zoom_look_where_found else None
        if zoom is not None and bar is not None and view is not None and view < bar:
            looks.append(zoom)
        return looks + ([self.middle_runtime] if self.middle_runtime is not None else [])

    def looked_again(
        self,
        image: np.ndarray,
        scale: tuple[float, float],
        first: RawDetections,
        view: float | None,
    ) -> RawDetections:
        """The first look's detections on the photo (of which `image` is a copy `scale`
        maps onto it) pooled with those of each look `again_looks` takes at `image`, by the
        same NMS as a served second look pools them; then the second detector's, where the
        entry names one, joined only where none of those lie (`joined_apart`); then the
        corners', where it takes them, those the first look saw too (`agreeing`), joined
        the same way. Neither replaces what the served looks propose: where they did, a
        region the served detector had found was lost (docs/model-experiments.md)."""
        own = first
        for look in self.again_looks(view):
            first = pooled(first, look.second(image).rescaled(*scale), look.config)
        detector = self.detector_look
        if detector is not None:
            first = joined_apart(first, detector.second(image).rescaled(*scale), detector.config)
        corners = self.corner_runtime
        if corners is not None:
            seen = agreeing(corners.second(image).rescaled(*scale), own, CORNER_AGREEMENT_IOU)
            first = joined_apart(first, seen, corners.config)
        return first

    def label(self, class_id: int) -> Any:
        if not 0 <= class_id < len(self._labels):
            raise InferenceError(f"model {self.entry.id} emitted class id {class_id}")
        return self._labels[class_id]


def _box(row: np.ndarray) -> Box:
    return Box(*(round(float(v), 1) for v in row))


def part_instances(model: SegmentationModel, raw: RawDetections, width: int, height: int):
    return tuple(
        PartInstance(
            part=model.label(int(raw.class_ids[i])),
            confidence=round(float(raw.scores[i]), 4),
            box=_box(raw.boxes[i]),
            polygon=mask_polygon(raw.masks[i], width, height),
        )
        for i in range(len(raw))
    )


def damage_instances(
    model: SegmentationModel,
    raw: RawDetections,
    image: np.ndarray,
    width: int,
    height: int,
    view_of: Callable[[], SeverityView] | None = None,
    memo: CropMemo | None = None,
):
    """Unassigned damage instances (part filled in later by `inference.assign`); `image`
    is the analysed view of the photo, which the severity stage looks at (through
    `view_of` where the caller keeps the photo's severity view); `memo` keeps each damage's
    severity features for the photo's second analysis (`severity_features_of`)."""
    out = []
    view: SeverityView | None = None
    for i in range(len(raw)):
        label = model.label(int(raw.class_ids[i]))
        confidence, box = round(float(raw.scores[i]), 4), _box(raw.boxes[i])
        if isinstance(label, DamageType):
            assert model.severity is not None  # checked when the model was loaded
            damage_type = label
            view = view or (view_of() if view_of else severity_view(image))  # once a photo
            key = (damage_type, box, confidence)
            features = severity_features_of(memo, key, view, raw.masks[i])
            severity = model.severity.predict(features)[0]
        else:
            damage_type, severity = label
        out.append(
            DamageInstance(
                damage_type=damage_type,
                severity=severity,
                confidence=confidence,
                box=box,
                polygon=mask_polygon(raw.masks[i], width, height),
            )
        )
    return tuple(out)


def severity_features_of(
    memo: CropMemo | None,
    damage: tuple[DamageType, Box, float],
    view: SeverityView,
    mask: np.ndarray,
) -> np.ndarray:
    """A damage's hand-made severity features (`view_features`), looked up in the photo's
    `memo` where its first analysis measured them: they depend only on the photo, the
    damage's mask and its type, and a damage is known by its type, box and score as the crop
    stages know it (inference/crop_memo.py)."""
    key = ("severity features", *damage)
    if memo is None:
        return view_features(view, mask, damage[0])
    if key not in memo:
        memo[key] = view_features(view, mask, damage[0])
    return memo[key]


def severities_reread(
    stage: SeverityModel,
    damages: tuple[DamageInstance, ...],
    masks: np.ndarray,
    view: SeverityView,
    memo: CropMemo | None = None,
) -> tuple[DamageInstance, ...]:
    """`damages` (one per mask of `masks`, in photo coordinates) with the severity `stage`
    reads on the photo's severity `view`: a close-up's damages, read by the stage taught
    close-ups (their features looked up in `memo` where measured: `severity_features_of`)."""
    return tuple(
        replace(d, severity=stage.predict(severity_features_of(memo, key, view, masks[k]))[0])
        for k, d in enumerate(damages)
        for key in [(d.damage_type, d.box, d.confidence)]
    )
