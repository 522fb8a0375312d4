"""Close-up severity read from the damage model's own layers under each damage's box.

The hand-made features of the severity stage (inference/severity.py) see a damage's size,
edges and texture; on close-ups from sources they were not taught they read heavy damage as
minor (docs/model-experiments.md, "Close-ups from other sources"). This stage reads what the
detector itself saw there: a class-balanced softmax head over some of the damage model's
layers (`taps`, its neck's three scales by default), each averaged over the grid cells
under a damage's box. The layers come from the one run the model makes on the photo: the
model is served with them as extra outputs (`TappedRuntime`), so a close-up pays for no
second pass. `training/severity_head.py` fits it.

Stored as JSON (`kind` "layer_head"): the taps, the features' mean and scale, the weights
((width + 1) x 3, the last row the bias), the checksum of the damage model whose layers it
reads, and what it was trained on. A damage entry names it as its close-up severity stage
(`closeup_severity_model`), as it names a hand-feature one.

    head = LayerSeverityHead.load(path, damage_onnx)
    runtime = TappedRuntime.of(damage_onnx, head.taps, config, threads)
    (raw,) = runtime.infer([image])
    damages = severities_from_layers(head, damages, raw.layers, photo_scale)
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from cdat.findings import Box, DamageInstance
from inference.backends import OrtSession
from inference.errors import ModelUnavailable
from inference.imaging import letterbox, to_tensor
from inference.postprocess import PhotoLayers, PostprocessConfig, RawDetections, decode
from inference.runtime import DetectorRuntime
from inference.severity import (
    SEVERITIES,
    SeverityModel,
    SeverityView,
    softmax_of_standardised,
    view_features,
)

KIND = "layer_head"
DEFAULT_TAPS = (16, 19, 22)


def pooled_under(layers: PhotoLayers, box: Box) -> np.ndarray:
    """Each layer averaged over the grid cells under `box` (pixels of the image the model
    was run on), joined: at least one cell each, however small the box."""
    out = []
    lb = layers.box
    for layer in layers.layers:
        _, _, rows, cols = layer.shape
        stride = lb.size / cols
        x1, x2 = ((np.array([box.x1, box.x2]) * lb.scale + lb.pad_x) / stride).tolist()
        y1, y2 = ((np.array([box.y1, box.y2]) * lb.scale + lb.pad_y) / stride).tolist()
        i1 = int(np.clip(np.floor(x1), 0, cols - 1))
        j1 = int(np.clip(np.floor(y1), 0, rows - 1))
        i2 = max(int(np.clip(np.ceil(x2), 1, cols)), i1 + 1)
        j2 = max(int(np.clip(np.ceil(y2), 1, rows)), j1 + 1)
        out.append(layer[0, :, j1:j2, i1:i2].mean((1, 2)))
    return np.concatenate(out).astype(np.float64)


@dataclass(frozen=True)
class LayerSeverityHead:
    """Pooled layers under a damage's box -> softmax over minor / moderate / severe."""

    taps: tuple[int, ...]
    mean: list[float]
    scale: list[float]
    weights: list[list[float]]
    """(features + 1 bias) x 3."""
    backbone_sha256: str
    trained_on: str = ""
    hand_features: bool = False
    """Its features end with the hand-made ones of inference/severity.py (`view_features`),
    which carry how much of the photo a damage covers."""
    kind: str = KIND

    def probabilities(self, features: np.ndarray) -> np.ndarray:
        return softmax_of_standardised(features, self.mean, self.scale, self.weights)

    def save(self, path: Path) -> None:
        body = asdict(self) | {"taps": list(self.taps)}
        path.write_text(json.dumps(body, indent=1) + "\n")

    @classmethod
    def load(cls, path: Path, backbone: Path) -> LayerSeverityHead:
        """The head stored at `path`, refused unless it reads `backbone`'s layers."""
        from inference.registry import sha256_of

        try:
            body = json.loads(path.read_text())
            head = cls(**(body | {"taps": tuple(int(t) for t in body["taps"])}))
        except (OSError, ValueError, TypeError, KeyError) as exc:
            raise ModelUnavailable(f"cannot load severity head {path}: {exc}") from exc
        if head.kind != KIND:
            raise ModelUnavailable(f"{path}: a {head.kind!r}, not a {KIND}")
        if np.asarray(head.weights).shape != (len(head.mean) + 1, len(SEVERITIES)):
            raise ModelUnavailable(
                f"{path}: its weights do not match its {len(head.mean)} features"
            )
        if sha256_of(backbone) != head.backbone_sha256:
            raise ModelUnavailable(
                f"severity head {path} reads the layers of another model than {backbone} "
                "(its backbone_sha256): train it again on this one"
            )
        return head


def load_closeup_severity(path: Path, backbone: Path) -> SeverityModel | LayerSeverityHead:
    """A damage entry's close-up severity stage: a head on `backbone`'s layers where the file
    says so (`kind`), else a hand-feature stage (inference/severity.py)."""
    try:
        kind = json.loads(path.read_text()).get("kind")
    except (OSError, ValueError, AttributeError) as exc:
        raise ModelUnavailable(f"cannot load severity model {path}: {exc}") from exc
    return LayerSeverityHead.load(path, backbone) if kind == KIND else SeverityModel.load(path)


def severities_from_layers(
    head: LayerSeverityHead,
    damages: tuple[DamageInstance, ...],
    layers: PhotoLayers,
    scale: tuple[float, float],
    masks: np.ndarray | None = None,
    view: SeverityView | None = None,
) -> tuple[DamageInstance, ...]:
    """`damages` (photo coordinates; `scale` maps the image the model ran on to the photo)
    with the severity the head reads under each one's box (and, for a head that reads
    them, the hand-made features of its mask, one of `masks`, on the photo's `view`)."""
    if not damages:
        return damages
    if head.hand_features and (masks is None or view is None):
        raise ValueError("this head reads hand-made features too: give masks and view")
    sx, sy = scale
    rows = []
    for k, d in enumerate(damages):
        box = Box(d.box.x1 / sx, d.box.y1 / sy, d.box.x2 / sx, d.box.y2 / sy)
        row = pooled_under(layers, box)
        if head.hand_features:
            assert masks is not None and view is not None  # checked above
            row = np.concatenate([row, view_features(view, masks[k], d.damage_type)])
        rows.append(row)
    features = np.stack(rows)
    picked = head.probabilities(features).argmax(1)
    return tuple(
        replace(d, severity=SEVERITIES[int(k)]) for d, k in zip(damages, picked, strict=True)
    )


def tapped_session(path: Path, taps: Sequence[int], threads: int) -> OrtSession:
    """The model at `path` with `layer<k>` outputs for each tap: a file that already gives
    them as it is, else an Ultralytics export tapped (inference/placer.py `tapped_model`)."""
    import onnx

    from inference.placer import tapped_model

    model = onnx.load(str(path))
    wanted = {f"layer{k}" for k in taps}
    if not wanted <= {o.name for o in model.graph.output}:
        model = tapped_model(model, taps)
    return OrtSession(path, threads=threads, model=model.SerializeToString())


class TappedRuntime(DetectorRuntime):
    """The damage model run photo by photo, each photo's detections carrying the tapped
    layers (`RawDetections.layers`); its detections are the model's alone."""

    def __init__(
        self, session: OrtSession, taps: Sequence[int], config: PostprocessConfig | None
    ) -> None:
        super().__init__(session, config=config)
        self.tapped = session
        names = [o.name for o in session.session.get_outputs()]
        self._positions = [names.index(f"layer{k}") for k in taps]

    @classmethod
    def of(
        cls, path: Path, taps: Sequence[int], config: PostprocessConfig | None, threads: int
    ) -> TappedRuntime:
        return cls(tapped_session(path, taps, threads), taps, config)

    def infer(self, images: Sequence[np.ndarray]) -> list[RawDetections]:
        out = []
        for image in images:
            canvas, box = letterbox(image, self.imgsz)
            outputs: list[Any] = self.tapped.run_all(to_tensor([canvas]))
            raw = decode(outputs[0][0], outputs[1][0], box, self.config)
            layers = tuple(np.asarray(outputs[k]) for k in self._positions)
            out.append(replace(raw, layers=PhotoLayers(layers, box)))
        return out
