"""Store a whole crop stage as its head alone, reading the served model's own layers.

A stage trained before heads (inference/stage_net.py) carries a copy of the backbone it
pools: 8-9 MB each, most of what keeps the tree over a lent GPU's transfer limit. This cuts
the stage's graph where its pooled layers meet its head, feeds the head from a `features`
input instead, writes the head with the metadata the loader checks (the layers, the crop
side, the backbone file's checksum), and checks the head on the backbone's own layers
against the whole stage on the same crops (generated, and `--photo` crops where given). The
served stages were cut from their whole files, which are in history::

    git show 04f00c5:inference/models/damage-verifier-20261202.onnx \\
        > runs/stages/damage-verifier-20261202.onnx
    git show 04f00c5:inference/models/part-family-20261202.onnx \\
        > runs/stages/part-family-20261202.onnx

    python -m training.stage_head --stage runs/stages/damage-verifier-20261202.onnx \\
        --backbone inference/models/damage-claims-seg-n-20261201.onnx \\
        --out runs/stages/damage-verifier-20261202-head.onnx
    python -m training.stage_head --stage runs/stages/part-family.onnx \\
        --backbone inference/models/parts-seg-n-20261206b.onnx \\
        --out runs/stages/part-family-head.onnx
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np

from training.errors import TrainingError, run_script

LAYERS = (4, 6, 10, 13, 16, 19, 22)
TOLERANCE = 1e-4


def pooled_widths(backbone: Path, layers: tuple[int, ...]) -> list[int]:
    """Channels of each tapped layer, from the backbone's own graph."""
    import onnx
    import onnxruntime as ort

    from inference.stage_net import read_features_model

    model = read_features_model(backbone, layers, None, "--backbone")
    pooled = [n.output[0] for n in model.graph.node if n.op_type == "Flatten"][-len(layers) :]
    model.graph.output.extend(
        onnx.helper.make_tensor_value_info(p, onnx.TensorProto.FLOAT, None) for p in pooled
    )
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    outs = session.run(pooled, {"images": np.zeros((1, 3, 64, 64), np.float32)})
    return [int(o.shape[-1]) for o in outs]


def head_of(stage: Any, widths: list[int]) -> Any:
    """The stage's graph from its pooled features on: each spatial mean (ReduceMean over the
    maps, in layer order) becomes a slice of one `features` input."""
    import onnx
    from onnx import helper, numpy_helper

    graph = stage.graph
    means = [n for n in graph.node if n.op_type == "ReduceMean"]
    if len(means) != len(widths):
        raise TrainingError(
            f"the stage pools {len(means)} layers, the backbone's tapped layers are {len(widths)}"
        )
    kept = [n for n in graph.node if n.op_type != "ReduceMean"]
    del graph.node[:]
    sizes = numpy_helper.from_array(np.array(widths, np.int64), "feature_widths")
    graph.initializer.append(sizes)
    split = helper.make_node(
        "Split", ["features", "feature_widths"], [m.output[0] for m in means], axis=1
    )
    graph.node.extend([split, *kept])
    graph.input.insert(
        0, helper.make_tensor_value_info("features", onnx.TensorProto.FLOAT, ["batch", sum(widths)])
    )
    inputs = ["features", *(i.name for i in graph.input if i.name == "extras")]
    outputs = [o.name for o in graph.output]
    head = onnx.utils.Extractor(onnx.shape_inference.infer_shapes(stage)).extract_model(
        inputs, outputs
    )
    return head


def head_metadata(
    metadata: dict[str, str], layers: tuple[int, ...], side: int, backbone: Path
) -> dict[str, str]:
    """What the loader checks beside a head's own metadata (inference/stage_net.py)."""
    from inference.registry import sha256_of

    return {
        **metadata,
        "layers": ",".join(map(str, sorted(layers))),
        "side": str(side),
        "backbone": backbone.name,
        "backbone_sha256": sha256_of(backbone),
    }


def export_head(
    net: Any,
    out: Path,
    backbone: Path,
    metadata: dict[str, str],
    output: str,
    extras: int = 0,
) -> float:
    """A stage net trained in PyTorch (`net.body`, a training.gate_net.GateNet over the
    backbone's .pt; `net.head(features[, extras])`) written as its head alone, to read
    `backbone`, the served .onnx of that .pt. Returns the largest difference between the
    head on the backbone's layers and the whole net on generated crops; a TrainingError
    (and no file) where they disagree, as they would if `backbone` is not that .pt's export."""
    import onnx
    import torch
    from torch import nn

    from inference.stage_net import StageNet

    side, layers = int(metadata["side"]), tuple(net.body.taps)

    class Head(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.net = net

        def forward(self, features: torch.Tensor, *more: torch.Tensor) -> torch.Tensor:
            return self.net.head(features, *more)

    with torch.no_grad():
        width = net.body.features(torch.zeros(1, 3, side, side)).shape[1]
    inputs: tuple[torch.Tensor, ...] = (torch.zeros(1, width),)
    names = ["features"]
    if extras:
        inputs, names = (*inputs, torch.zeros(1, extras)), [*names, "extras"]
    out.parent.mkdir(parents=True, exist_ok=True)
    torch.onnx.export(
        Head().eval(), inputs, str(out), input_names=names, output_names=[output],
        dynamic_axes={**{n: {0: "batch"} for n in names}, output: {0: "batch"}},
        opset_version=17, dynamo=False,
    )  # fmt: skip
    model = onnx.load(str(out))
    for key, value in head_metadata(metadata, layers, side, backbone).items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.save(model, str(out))
    rng = np.random.default_rng(0)
    crops = rng.random((3, 3, side, side), dtype=np.float32)
    more = rng.random((3, extras), dtype=np.float32) if extras else None
    served = StageNet.load(out, 1, "stage head", backbone).run(crops, more)
    with torch.no_grad():
        feeds = [torch.from_numpy(crops)] + ([torch.from_numpy(more)] if more is not None else [])
        expected = net(*feeds).numpy()
    parity = float(np.abs(served - expected).max())
    if parity > 1e-3:
        out.unlink()
        raise TrainingError(
            f"the head on {backbone} differs from the net by {parity:.2e}: is it the export "
            "of the .pt the stage was trained on?"
        )
    return parity


def get_args_parser(add_help: bool = True) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0], add_help=add_help)
    parser.add_argument("--stage", type=Path, required=True, help="the whole stage's .onnx")
    parser.add_argument("--backbone", type=Path, required=True,
                        help="the served .onnx whose layers the stage was trained on")  # fmt: skip
    parser.add_argument("--out", type=Path, required=True, help="the head's .onnx to write")
    parser.add_argument("--layers", type=int, nargs="+", default=list(LAYERS),
                        help="the tapped layers, as the stage was trained")  # fmt: skip
    parser.add_argument("--photo", type=Path, nargs="*", default=[],
                        help="photos whose middle crops the parity check also runs on")  # fmt: skip
    return parser


def crops_for_check(side: int, photos: list[Path]) -> np.ndarray:
    import cv2

    rng = np.random.default_rng(0)
    crops = [rng.random((3, side, side), dtype=np.float32) for _ in range(3)]
    for photo in photos:
        image = cv2.imread(str(photo))
        if image is None:
            raise TrainingError(f"--photo {photo}: not a readable photo")
        rgb = cv2.cvtColor(cv2.resize(image, (side, side)), cv2.COLOR_BGR2RGB)
        crops.append(rgb.transpose(2, 0, 1).astype(np.float32) / 255.0)
    return np.stack(crops)


def main(args: argparse.Namespace) -> int:
    import onnx

    from inference.stage_net import StageNet

    for flag, path in (("--stage", args.stage), ("--backbone", args.backbone)):
        if not path.is_file():
            raise TrainingError(f"{flag} {path}: no such file")
    if args.out.suffix != ".onnx" or args.out.resolve() == args.stage.resolve():
        raise TrainingError(f"--out {args.out}: name a new .onnx file")
    layers = tuple(sorted(set(args.layers)))
    whole = StageNet.load(args.stage, 2, "stage", args.backbone)
    if whole.body is not None:
        raise TrainingError(f"--stage {args.stage}: already a head")
    stage = onnx.load(str(args.stage))
    head = head_of(stage, pooled_widths(args.backbone, layers))
    meta = head_metadata(
        {p.key: p.value for p in stage.metadata_props}, layers, whole.side, args.backbone
    )
    del head.metadata_props[:]
    for key, value in meta.items():
        entry = head.metadata_props.add()
        entry.key, entry.value = key, value
    args.out.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(head, str(args.out))
    net = StageNet.load(args.out, 2, "stage head", args.backbone)
    crops = crops_for_check(whole.side, args.photo)
    width = net.input_width("extras")
    extras = None if width is None else np.random.default_rng(1).random((len(crops), width))
    extras = None if extras is None else extras.astype(np.float32)
    parity = float(np.abs(net.run(crops, extras) - whole.run(crops, extras)).max())
    if parity > TOLERANCE:
        args.out.unlink()
        raise TrainingError(f"the head on {args.backbone} differs from the stage by {parity:.2e}")
    report = {"parity_max_abs": parity, "crops": len(crops), "bytes": args.out.stat().st_size,
              "whole_bytes": args.stage.stat().st_size, **meta}  # fmt: skip
    print(json.dumps(report, indent=1))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    run_script(main, get_args_parser())
