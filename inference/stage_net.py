"""A crop stage's network: its head, on the pooled layers of the model it serves beside.

The damage verifier reads the damage model's layers, the part-family stage the part
model's: each averages some layers' feature maps over space on a crop, joins them, and runs
a small head (training/gate_net.py `GateNet.features` is the same pooling in PyTorch). A
stage is stored as its head alone, an ONNX file whose input `features` is that pooled vector
(and, for the verifier, `extras`); its metadata names the layers (`layers`), the crop side
(`side`) and the checksum of the model file it reads (`backbone_sha256`). At load, that
model's own graph is cut after its last tapped layer and the pooling appended
(`features_model`), so the tree holds one copy of each backbone, not three. A stage stored
whole (input `images`: crop in, answer out) still loads as it is.

    net = StageNet.load(head_path, threads=1, what="damage verifier", backbone=damage_onnx)
    answers = net.run(crops, extras)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from inference.errors import ModelUnavailable
from inference.stage_bf16 import Bf16StageSession, StagePrecision

FEATURES = "features"


def layer_of(node: Any) -> int | None:
    """The layer index of a node of an Ultralytics export (`/model.<k>/...`), else None."""
    parts = node.name.split("/")
    if len(parts) > 2 and parts[1].startswith("model.") and parts[1][6:].isdigit():
        return int(parts[1][6:])
    return None


def layer_outputs(graph: Any, layers: Sequence[int]) -> list[str]:
    """The output tensor of each layer of an Ultralytics export: the last of its nodes in
    the graph's (topological) order is the one the next layer reads."""
    last: dict[int, str] = {}
    for node in graph.node:
        layer = layer_of(node)
        if layer is not None:
            last[layer] = node.output[0]
    missing = [k for k in layers if k not in last]
    if missing:
        raise ModelUnavailable(f"no layer(s) {missing} in the model (an Ultralytics export?)")
    return [last[k] for k in layers]


def features_model(backbone: Path, layers: Sequence[int], side: int | None = None) -> Any:
    """The model's graph from `images` to the given layers, each averaged over space, joined
    along channels into `features` (N, sum of the layers' channels); for crops of `side`
    pixels (None: any side)."""
    import onnx
    from onnx import helper

    model = onnx.load(str(backbone))
    tapped = layer_outputs(model.graph, sorted(layers))
    # the cut needs each tensor's type; an export may not record them all
    model = onnx.shape_inference.infer_shapes(model)
    cut = onnx.utils.Extractor(model).extract_model(["images"], tapped)
    # shapes inferred at the export's side would contradict a crop's; a fixed side lets
    # ONNX Runtime plan the graph for it (a quarter faster on 160 px crops)
    del cut.graph.value_info[:]
    for dim in cut.graph.input[0].type.tensor_type.shape.dim[2:]:
        if side is None:
            dim.dim_param = "side"
        else:
            dim.dim_value = side
    pooled = [f"{name}_pooled" for name in tapped]
    nodes = [
        helper.make_node("GlobalAveragePool", [t], [f"{t}_gap"]) for t in tapped
    ] + [
        helper.make_node("Flatten", [f"{t}_gap"], [p], axis=1)
        for t, p in zip(tapped, pooled, strict=True)
    ]  # fmt: skip
    nodes.append(helper.make_node("Concat", pooled, [FEATURES], axis=1))
    cut.graph.node.extend(nodes)
    del cut.graph.output[:]
    cut.graph.output.append(
        helper.make_tensor_value_info(FEATURES, onnx.TensorProto.FLOAT, ["batch", "width"])
    )
    return cut


def features_session(
    backbone: Path,
    layers: Sequence[int],
    side: int,
    threads: int,
    what: str,
    precision: StagePrecision = "fp32",
) -> Any:
    """A session of `features_model` for crops of `side` pixels: ONNX Runtime in FP32, or
    OpenVINO in bf16 (inference/stage_bf16.py)."""
    from inference.backends import small_cpu_session

    model = read_features_model(backbone, layers, side, what).SerializeToString()
    if precision == "bf16":
        session = Bf16StageSession(model, threads, what, backbone)
        session.warm(lambda n: {"images": np.zeros((n, 3, side, side), np.float32)})
        return session
    return small_cpu_session(backbone, threads, what, model)


def read_features_model(backbone: Path, layers: Sequence[int], side: int | None, what: str) -> Any:
    """`features_model`, any failure to read `backbone` one ModelUnavailable naming it."""
    try:
        return features_model(backbone, layers, side)
    except ModelUnavailable as exc:
        raise ModelUnavailable(f"{what}: {backbone}: {exc}") from exc
    except Exception as exc:  # onnx raises its own errors for a file that is not a model
        raise ModelUnavailable(f"{what}: cannot read {backbone}: {exc}") from exc


def _int_list(text: str, path: Path, key: str) -> list[int]:
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        values = []
    if not values:
        raise ModelUnavailable(f"{path}: its `{key}` metadata is not a list of integers")
    return values


@dataclass
class StageNet:
    head: Any
    """The stage's own session: `images` (a whole stage) or `features` in."""
    side: int
    metadata: dict[str, str]
    body: Any = None
    """For a head: the backbone's `features_model` session."""
    crops: str = "images"
    """A whole stage's crop input."""
    whole_bf16: Any = None
    """A whole stage served in bf16: the same file compiled by OpenVINO, which answers in
    `head`'s place (`head` still says what the file declares)."""

    @classmethod
    def load(
        cls,
        path: Path,
        threads: int,
        what: str,
        backbone: Path | None = None,
        precision: StagePrecision = "fp32",
    ) -> StageNet:
        """A stage file; a head needs `backbone`, the very model file it was trained on.
        `precision` bf16 runs its heavy network on OpenVINO (inference/stage_bf16.py)."""
        from inference.backends import small_cpu_session, square_input_side
        from inference.registry import sha256_of

        # a head is a few small matrix products: threads of its own would only wait on
        # the backbone's, still spinning on the same cores
        head = small_cpu_session(path, 1, what)
        metadata = dict(head.get_modelmeta().custom_metadata_map)
        names = [i.name for i in head.get_inputs()]
        if FEATURES not in names:  # a whole stage runs its backbone itself
            # in bf16 its OpenVINO copy runs it: the one-thread session only says what it is
            keep = threads == 1 or precision == "bf16"
            head = head if keep else small_cpu_session(path, threads, what)
            crops = "images" if "images" in names else names[0]
            net = cls(head, square_input_side(head, path, crops), metadata, crops=crops)
            if precision == "bf16":
                net.whole_bf16 = Bf16StageSession(path.read_bytes(), threads, what, path)
                net.whole_bf16.warm(net.zero_feeds)
            return net
        if backbone is None:
            raise ModelUnavailable(f"{what} {path} is a head: name the model whose layers it reads")
        if not backbone.is_file():
            raise ModelUnavailable(f"{what} {path}: its model {backbone} is missing")
        if sha256_of(backbone) != metadata.get("backbone_sha256"):
            raise ModelUnavailable(
                f"{what} {path} reads the layers of another model than {backbone} "
                "(its backbone_sha256): train it again on this one"
            )
        side = _int_list(metadata.get("side", ""), path, "side")[0]
        layers = _int_list(metadata.get("layers", ""), path, "layers")
        body = features_session(backbone, layers, side, threads, what, precision)
        net = cls(head, side, metadata, body)
        width = next(i.shape[-1] for i in head.get_inputs() if i.name == FEATURES)
        got = net.features(np.zeros((1, 3, side, side), np.float32)).shape[-1]
        if got != width:
            raise ModelUnavailable(
                f"{what} {path}: its head reads {width} features, {backbone}'s layers "
                f"{layers} give {got}"
            )
        return net

    def zero_feeds(self, batch: int) -> dict[str, np.ndarray]:
        """A whole stage's inputs for `batch` black crops (and zero extras, where it reads
        them)."""
        feeds = {self.crops: np.zeros((batch, 3, self.side, self.side), np.float32)}
        extras = self.input_width("extras")
        if extras is not None:
            feeds["extras"] = np.zeros((batch, extras), np.float32)
        return feeds

    def input_width(self, name: str) -> int | None:
        """The last dimension of the stage's input `name` (None where it has none)."""
        return next((i.shape[-1] for i in self.head.get_inputs() if i.name == name), None)

    @property
    def output_width(self) -> Any:
        return self.head.get_outputs()[0].shape[-1]

    def features(self, crops: np.ndarray) -> np.ndarray:
        return np.asarray(self.body.run([FEATURES], {"images": crops})[0], np.float32)

    def pooled_with_photo(
        self, photo: np.ndarray, crops: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """(the photo's pooled layers (1, width), the crops' (N, width)) for a head that reads
        the whole photo too: the photo rides in the crops' batch, one pass, not two."""
        pooled = self.features(np.concatenate([photo[None], crops]))
        return pooled[:1], pooled[1:]

    def run(self, crops: np.ndarray, extras: np.ndarray | None = None) -> np.ndarray:
        """The stage's first output for (N, 3, side, side) crops (and their extras)."""
        if self.body is not None:
            return self.run_head(self.features(crops), extras)
        feeds = {self.crops: crops} if extras is None else {self.crops: crops, "extras": extras}
        return np.asarray((self.whole_bf16 or self.head).run(None, feeds)[0])

    def run_head(self, features: np.ndarray, extras: np.ndarray | None = None) -> np.ndarray:
        """A head's first output on pooled features already computed (`features`)."""
        feeds = {FEATURES: features} if extras is None else {FEATURES: features, "extras": extras}
        return np.asarray(self.head.run(None, feeds)[0])
