"""The placer (cdat/placement.py), served on the damage model's own backbone.

A placer is fine-tuned from the served damage model with its first `SHARED_LAYERS` layers
frozen (`training.train --freeze 10`; Ultralytics freezes their batch-norm statistics too),
so those layers, the backbone, are the served model's to the last weight. It is stored as a
head: its graph from layer 10 on, reading the backbone's layer outputs (inputs `layer4`,
`layer6`, `layer9`), with the checksum of the damage model it was cut against
(`placer_head`, by `python -m training.placer_head`). Served, the damage model's run also
hands out those layers (`tapped_model`), and the head runs on them only for a photo where
damage is left to place, after the verifier: a photo pays for the backbone once, and a
photo without damage never pays for the head. `twin_model` joins the two into one graph, to
check a head against the models alone.

    head = placer_head(candidate_onnx, damage_onnx)   # training: cut, checked, then saved
    runtime = TwinRuntime.joined(damage_onnx, head_path, config, threads)
    ((damage, taps),) = runtime.infer_with_taps([image])
    placer_detections = runtime.placer_detections(taps)   # only where damage is left
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from cdat.findings import Box, DamageInstance, PartInstance
from cdat.placement import PlacementRule, placing_detection
from inference.assign import assign_parts
from inference.backends import OrtSession
from inference.errors import ModelUnavailable
from inference.imaging import Letterbox, letterbox, to_tensor
from inference.part_family import moved, placed_by_type
from inference.postprocess import PostprocessConfig, RawDetections, decode
from inference.runtime import DetectorRuntime, SegmentationModel, damage_instances
from inference.stage_net import layer_of, layer_outputs

SHARED_LAYERS = 10
PREFIX = "placer/"
OUTPUTS = ("output0", "output1")
MAX_WEIGHT_DRIFT = 1e-3
"""Largest difference a shared layer's weight may show between the two exports: the
checkpoints round the same frozen values to half precision, so any real difference is a
different backbone, orders of magnitude above this."""


def _shared_weights(graph: Any) -> dict[tuple[str, int], np.ndarray]:
    from onnx import numpy_helper

    inits = {i.name: i for i in graph.initializer}
    out = {}
    for node in graph.node:
        layer = layer_of(node)
        if layer is None or layer >= SHARED_LAYERS:
            continue
        for k, name in enumerate(node.input):
            if name in inits:
                out[(node.name, k)] = numpy_helper.to_array(inits[name])
    return out


def backbone_drift(candidate: Any, backbone: Any) -> float:
    """The largest weight difference between the two graphs' shared layers; ValueError when
    their shared layers are not the same layout."""
    ours, theirs = _shared_weights(candidate.graph), _shared_weights(backbone.graph)
    if ours.keys() != theirs.keys() or not ours:
        raise ValueError("its first layers are not laid out as the damage model's")
    drift = 0.0
    for key, array in ours.items():
        if array.shape != theirs[key].shape:
            raise ValueError(f"{key[0]}: weight shape {array.shape} against {theirs[key].shape}")
        drift = max(drift, float(np.abs(array - theirs[key]).max(initial=0.0)))
    return drift


def placer_head(candidate: Path, backbone: Path) -> Any:
    """The candidate's graph from layer `SHARED_LAYERS` on, reading `layer<k>` inputs, with
    `backbone_sha256` and `taps` in its metadata; ValueError when the candidate's shared
    layers are not `backbone`'s (a placer must be fine-tuned from it with them frozen)."""
    import onnx

    from inference.registry import sha256_of

    model, base = onnx.load(str(candidate)), onnx.load(str(backbone))
    if _input_shape(model) != _input_shape(base):
        raise ValueError(
            f"its input {_input_shape(model)} is not the damage model's {_input_shape(base)}: "
            "export it at the damage model's size"
        )
    mismatch = _mismatched_metadata(model, base)
    if mismatch:
        raise ValueError(mismatch)
    drift = backbone_drift(model, base)
    if drift > MAX_WEIGHT_DRIFT:
        raise ValueError(
            f"its first {SHARED_LAYERS} layers differ from the damage model's (by up to "
            f"{drift:.3g}): fine-tune it from that model with --freeze {SHARED_LAYERS}"
        )
    graph = model.graph
    produced_by = {o: layer_of(n) for n in graph.node for o in n.output}
    head_nodes = [n for n in graph.node if (layer_of(n) or 0) >= SHARED_LAYERS]
    taps: dict[str, int] = {}
    for node in head_nodes:
        for k, name in enumerate(node.input):
            layer = produced_by.get(name)
            if layer is not None and layer < SHARED_LAYERS:
                taps[name] = layer
                node.input[k] = f"layer{layer}"
    used = {name for n in head_nodes for name in n.input}
    kept_inits = [i for i in graph.initializer if i.name in used]
    shapes = {v.name: v for v in onnx.shape_inference.infer_shapes(model).graph.value_info}
    inputs = []
    for tensor, layer in sorted(taps.items(), key=lambda t: t[1]):
        info = onnx.ValueInfoProto()
        info.CopyFrom(shapes[tensor])
        info.name = f"layer{layer}"
        inputs.append(info)
    head = onnx.helper.make_graph(head_nodes, "placer-head", inputs, list(graph.output), kept_inits)
    out = onnx.helper.make_model(head, opset_imports=model.opset_import)
    out.ir_version = model.ir_version
    metadata = {p.key: p.value for p in model.metadata_props}
    metadata |= {
        "backbone_sha256": sha256_of(backbone),
        "taps": ",".join(str(layer) for layer in sorted(taps.values())),
        "backbone_drift": f"{drift:.3g}",
    }
    onnx.helper.set_model_props(out, metadata)
    onnx.checker.check_model(out)
    return out


def _input_shape(model: Any) -> list[int | str]:
    dims = model.graph.input[0].type.tensor_type.shape.dim
    return [d.dim_value if d.HasField("dim_value") else d.dim_param for d in dims][1:]


SAME = ("names", "imgsz")
"""What a placer and the damage model it places for must agree on, as their exports store
it: the damage model's class ids name the placer's detections (`Placer.placed`), and the
head reads layers of the damage model's input size."""


def _mismatched_metadata(placer: Any, damage: Any) -> str | None:
    """Which of `SAME` the two models' metadata disagree on, as an error message."""
    ours = {p.key: p.value for p in placer.metadata_props}
    theirs = {p.key: p.value for p in damage.metadata_props}
    wrong = [k for k in SAME if ours.get(k) != theirs.get(k)]
    if not wrong:
        return None
    return "; ".join(f"its {k} {ours.get(k)} differ from the damage model's {theirs.get(k)}"
                     for k in wrong)  # fmt: skip


def _prefixed(name: str, taps: dict[str, str]) -> str:
    return taps.get(name) or (PREFIX + name if name else name)


def checked_head(backbone: Path, head: Path) -> tuple[Any, Any, list[int]]:
    """Both graphs and the layers the head reads; ModelUnavailable when the head was not cut
    against this very file, or does not read the layers it names."""
    import onnx

    from inference.registry import sha256_of

    try:
        base, top = onnx.load(str(backbone)), onnx.load(str(head))
    except Exception as exc:  # onnx raises its own errors for a file that is not a model
        raise ModelUnavailable(f"damage placer: cannot read {head} or {backbone}: {exc}") from exc
    metadata = {p.key: p.value for p in top.metadata_props}
    if metadata.get("backbone_sha256") != sha256_of(backbone):
        raise ModelUnavailable(f"damage placer {head} was not cut against {backbone}")
    mismatch = _mismatched_metadata(top, base)
    if mismatch:
        raise ModelUnavailable(f"damage placer {head}: {mismatch}")
    layers = [int(v) for v in metadata.get("taps", "").split(",") if v]
    if not layers or sorted(i.name for i in top.graph.input) != sorted(f"layer{k}" for k in layers):
        raise ModelUnavailable(f"damage placer {head}: its inputs are not the layers it names")
    return base, top, layers


def twin_model(backbone: Path, head: Path) -> Any:
    """The damage model's graph with the placer head joined to its layers: outputs
    `output0`, `output1`, `placer/output0`, `placer/output1`."""
    base, top, layers = checked_head(backbone, head)
    taps = dict(zip((f"layer{k}" for k in layers), layer_outputs(base.graph, layers), strict=True))
    graph = base.graph
    for node in top.graph.node:
        node.name = PREFIX + node.name
        node.input[:] = [_prefixed(n, taps) for n in node.input]
        node.output[:] = [_prefixed(n, taps) for n in node.output]
        graph.node.append(node)
    for init in top.graph.initializer:
        init.name = PREFIX + init.name
        graph.initializer.append(init)
    for output in top.graph.output:
        output.name = PREFIX + output.name
        graph.output.append(output)
    return base


def tapped_model(base: Any, layers: Sequence[int]) -> Any:
    """The damage model's graph, also giving each of `layers`' outputs as `layer<k>`."""
    import onnx

    for layer, tensor in zip(layers, layer_outputs(base.graph, layers), strict=True):
        name = f"layer{layer}"
        base.graph.node.append(onnx.helper.make_node("Identity", [tensor], [name]))
        output = onnx.helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, None)
        base.graph.output.append(output)
    return base


@dataclass(frozen=True)
class Taps:
    """One photo's backbone layers, as the placer head reads them, and its letterbox."""

    layers: dict[str, np.ndarray]
    box: Letterbox


class TwinRuntime(DetectorRuntime):
    """The damage model, handing out the layers its placer head reads, and that head:
    `infer` gives the damage model's detections, as the model alone would."""

    def __init__(
        self,
        session: OrtSession,
        head: Any,
        config: PostprocessConfig | None,
        placer_version: str,
    ) -> None:
        self.tapped = session
        self.head = head
        """An ONNX Runtime session of the head: `layer<k>` in, `output0` and `output1` out."""
        super().__init__(session, config=config)
        self.placer_version = placer_version
        self._taps = [o.name for o in session.session.get_outputs()][len(OUTPUTS) :]

    @classmethod
    def joined(
        cls, backbone: Path, head: Path, config: PostprocessConfig | None, threads: int = 2
    ) -> TwinRuntime:
        """The damage model file, tapped for a placer head cut against it."""
        from inference.backends import small_cpu_session

        base, _, layers = checked_head(backbone, head)
        tapped = tapped_model(base, layers).SerializeToString()
        session = OrtSession(backbone, threads=threads, model=tapped)
        return cls(session, small_cpu_session(head, threads, "damage placer"), config, head.stem)

    @property
    def label(self) -> str:
        return f"{self.session.label}+placer"

    def infer_with_taps(self, images: Sequence[np.ndarray]) -> list[tuple[RawDetections, Taps]]:
        out = []
        for image in images:  # photo by photo: each photo's layers are kept apart
            canvas, box = letterbox(image, self.imgsz)
            output0, protos, *layers = self.tapped.run_all(to_tensor([canvas]))
            taps = Taps(dict(zip(self._taps, layers, strict=True)), box)
            out.append((decode(output0[0], protos[0], box, self.config), taps))
        return out

    def infer(self, images: Sequence[np.ndarray]) -> list[RawDetections]:
        return [damage for damage, _ in self.infer_with_taps(images)]

    def placer_detections(self, taps: Taps) -> RawDetections:
        """The placer's detections on the photo whose layers these are, in its coordinates."""
        output0, protos = self.head.run(list(OUTPUTS), taps.layers)
        return decode(output0[0], protos[0], taps.box, self.config)


@dataclass
class Placer:
    """The placer's detections on a photo, turned into parts for the served damages."""

    runtime: TwinRuntime
    rule: PlacementRule

    @property
    def version(self) -> str:
        return self.runtime.placer_version

    def placed(
        self,
        model: SegmentationModel,
        damages: tuple[DamageInstance, ...],
        damage_masks: np.ndarray,
        placer_raw: RawDetections,
        image: np.ndarray,
        parts: tuple[PartInstance, ...],
        part_masks: np.ndarray,
        size: tuple[int, int],
    ) -> tuple[DamageInstance, ...]:
        """Each damage on the part of the placer detection that places it (`model` names the
        placer's classes, which are the damage model's); masks on the analysis grid."""
        if not damages or not len(placer_raw):
            return damages
        # rounded as the damages' own boxes are (`inference.runtime.damage_instances`)
        boxes = [Box(*(round(float(v), 1) for v in row)) for row in placer_raw.boxes]
        chosen = [placing_detection(d.box, boxes, self.rule) for d in damages]
        needed = sorted({k for k in chosen if k is not None})
        if not needed:
            return damages
        # only the detections that place a damage are turned into instances (each costs a
        # polygon and, for a typed model, its severity)
        subset = RawDetections(
            placer_raw.boxes[needed], placer_raw.scores[needed], placer_raw.class_ids[needed],
            placer_raw.masks[needed], placer_raw.best_score,
        )  # fmt: skip
        found = damage_instances(model, subset, image, *size)
        found = assign_parts(found, subset.masks, parts, part_masks)
        found = placed_by_type(found, subset.masks, parts, part_masks)
        part_of = {k: found[j].part for j, k in enumerate(needed)}
        out = []
        for k, (damage, j) in enumerate(zip(damages, chosen, strict=True)):
            part = damage.part if j is None else part_of[j]
            same = part is damage.part
            out.append(damage if same else moved(damage, part, parts, part_masks, damage_masks[k]))
        return tuple(out)
