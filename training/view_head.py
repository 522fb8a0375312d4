"""Teach the vehicle gate to read a photo's view: the whole car, or a close-up.

The whole-car rule (cdat/whole_car.py) holds damage on a whole-car view to a higher bar
and sends each view to its own damage verifier. Counting parts decides the view badly: a
third of intact whole cars show six or seven parts, and a close-up of a door, a wheel and a
mirror shows as many. This fits a second logistic head on the served gate's own pooled
features (the same frozen layers, taps and side: training/vehicle_gate.py) with the labels
the sources give: the `car-parts` photos are whole cars; their close-up windows
(training/intact_closeups.py) and the `damaged-parts` and `car-parts-damage` photos are
close-ups (`damage-severity` mixes both, unlabelled: only read on val). It writes the gate
again with two outputs, `vehicle` (the served gate's head, carried over and checked against
the served file's own answers) and `whole_car_view`: the view costs no second pass and no
second file (inference/vehicle_gate.py reads both).

    python -m training.view_head --gate inference/models/vehicle-gate-20261206.onnx \\
        --out runs/view/gate-view-l2-0.01.onnx --l2 0.01
    cdat gate view --gate inference/models/vehicle-gate-20261206.onnx --out runs/view/g.onnx

`--gate` may be a gate that already reads the view (the shipped one): its vehicle head is
kept and its view head made again.

The L2 strength is chosen on val by what serving by view does to a claim, not by the head's
own loss: a val pass with the candidate (`python -m training.claim_rules --split val --pass
--conf 0.02 --gate <onnx> --cache <pkl>`) read by `bench/bench_verifier_by_view.py` with a
whole-car rule naming `view_probability`. The report beside the file gives the head's val
reading per source. Features are shared with the gate's cache (`--cache`).
"""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from training.errors import TrainingError, run_script
from training.gate_data import GatePhoto, vehicle_photos
from training.gate_fit import Examples, LinearHead, fit_head, log_loss, probabilities
from training.intact_closeups import IntactCloseup
from training.vehicle_gate import (
    DEFAULT_CACHE,
    FeatureCache,
    GateHyperparameters,
    decode_photo_scaled,
    extract,
    source_counts,
    write_gate_run,
)

WHOLE_CARS = "car-parts"
WINDOWS = "car-parts-windows"
"""Close-up windows of the `car-parts` photos: the same cars, framed close."""
CLOSEUPS = ("damaged-parts", "car-parts-damage")
UNLABELLED = ("damage-severity",)
"""Whole cars and close-ups mixed, unlabelled: read on val, never fitted."""
VIEW_OUTPUT = "whole_car_view"


@dataclass
class ViewHeadHyperparameters:
    side: int = 256
    """Input side in pixels: the served gate's."""
    taps: tuple[int, ...] = (2, 4, 6, 8, 10)
    """Layers whose pooled maps the head reads: the served gate's."""
    l2: float = 0.01
    """L2 penalty on the standardised weights (chosen on val by the claim read)."""
    bar: float = 0.5
    """Probability from which the report counts a photo as read whole (the rule's own bar
    is the damage entry's `view_probability`)."""
    seed: int = 0
    """Re-split seed of the car sets, as converted (never another)."""


def view_photos(split: str, root: Path, seed: int) -> list[GatePhoto]:
    """The split's photos with a view label (`vehicle` holds it: True = whole car), then on
    val the unlabelled mixed source."""
    sources = (WHOLE_CARS, *CLOSEUPS, *(UNLABELLED if split == "val" else ()))
    return [
        GatePhoto(p.path, p.source, split, p.source == WHOLE_CARS)
        for source in sources
        for p in vehicle_photos(source, split, root, seed)
    ]


def whole_car_windows(split: str, root: Path, seed: int) -> list[IntactCloseup]:
    from training.claim_eval import DATASETS, typed_photos
    from training.intact_closeups import intact_closeups

    return intact_closeups(typed_photos(DATASETS / "car-parts.yaml", split, seed, root))


def window_features(
    net: Any, windows: list[IntactCloseup], hp: GateHyperparameters, cache: FeatureCache
) -> np.ndarray:
    """Pooled features of each close-up window, decoded as serving decodes a photo."""
    import torch

    from inference.vehicle_gate import gate_input

    keys = [f"window|{w.name}" for w in windows]
    todo = [(k, w) for k, w in zip(keys, windows, strict=True) if k not in cache.rows]
    for start in range(0, len(todo), 32):
        batch = todo[start : start + 32]
        inputs = [gate_input(decode_photo_scaled(w.jpeg, w.name)[0], hp.side) for _, w in batch]
        with torch.no_grad():
            feats = net.features(torch.from_numpy(np.stack(inputs))).numpy()
        cache.rows.update(zip([k for k, _ in batch], feats, strict=True))
    if todo:
        cache.save()
    if not keys:
        return np.zeros((0, net.columns(hp.taps, hp.side).size))
    return np.stack([cache.rows[k] for k in keys]).astype(np.float64)


def view_examples(
    net: Any, split: str, hp: GateHyperparameters, cache: FeatureCache, root: Path
) -> Examples:
    """A split's rows: its labelled photos, the unlabelled ones on val, and the windows."""
    photos = extract(net, view_photos(split, root, hp.seed), 1, hp, cache)
    windows = window_features(net, whole_car_windows(split, root, hp.seed), hp, cache)
    return Examples(
        np.vstack([photos.features, windows]),
        np.concatenate([photos.vehicle, np.zeros(len(windows), bool)]),
        np.concatenate([photos.sources, np.full(len(windows), WINDOWS)]),
    )


def labelled(examples: Examples) -> Examples:
    keep = ~np.isin(examples.sources, UNLABELLED)
    return Examples(examples.features[keep], examples.vehicle[keep], examples.sources[keep])


def read_whole(p: np.ndarray, examples: Examples, bar: float) -> dict[str, float]:
    """Per source: the share of its photos read as whole cars."""
    return {
        str(s): round(float((p[examples.sources == s] >= bar).mean()), 4)
        for s in np.unique(examples.sources)
    }


def served_vehicle_head(gate: Path) -> LinearHead:
    """The vehicle head of a gate file made by training/vehicle_gate.py: its last linear
    layer, read from the graph (weights on the raw pooled features)."""
    import onnx
    from onnx import numpy_helper

    try:
        graph = onnx.load(str(gate)).graph
    except Exception as exc:  # onnx raises several types for a damaged file
        raise TrainingError(f"--gate {gate}: not an ONNX file ({exc})") from exc
    made_by = {out: node for node in graph.node for out in node.output}
    sigmoid = made_by.get("vehicle")
    linear = made_by.get(sigmoid.input[0]) if sigmoid is not None else None
    if (
        sigmoid is None
        or sigmoid.op_type != "Sigmoid"
        or linear is None
        or linear.op_type != "Gemm"
    ):
        raise TrainingError(f"--gate {gate}: no linear vehicle head (Gemm, Sigmoid) to carry over")
    values = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
    weights = values[linear.input[1]].astype(np.float64).reshape(-1)
    bias = float(values[linear.input[2]].reshape(-1)[0])
    ones = np.ones_like(weights)
    return LinearHead(np.zeros_like(weights), ones, weights, bias)


def get_args_parser(add_help: bool = True) -> argparse.ArgumentParser:
    from training.init_weights import default_init

    hp = ViewHeadHyperparameters()
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0], add_help=add_help)
    parser.add_argument("--gate", type=Path, required=True,
                        help="the served gate's .onnx, whose vehicle head is kept")  # fmt: skip
    parser.add_argument("--out", type=Path, required=True, help="the gate's .onnx file to write")
    parser.add_argument(
        "--init",
        type=Path,
        default=Path(default_init()),
        help="the checkpoint the gate was cut from",
    )
    parser.add_argument("--taps", type=int, nargs="+", default=list(hp.taps),
                        help="layers whose pooled maps are read (the gate's)")  # fmt: skip
    parser.add_argument("--side", type=int, default=hp.side, help="input side (the gate's)")
    parser.add_argument("--l2", type=float, default=hp.l2, help="L2 strength of the view head")
    parser.add_argument(
        "--bar", type=float, default=hp.bar, help="probability the report reads as whole"
    )
    parser.add_argument("--seed", type=int, default=hp.seed, help="re-split seed (as converted)")
    parser.add_argument(
        "--data-root", type=Path, default=None, help="default: CDAT_DATA_ROOT or ../shared/datasets"
    )
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE, help="feature cache folder")
    parser.add_argument("--threads", type=int, default=2, help="torch threads for extraction")
    return parser


def hyperparameters(args: argparse.Namespace) -> ViewHeadHyperparameters:
    if args.out.suffix != ".onnx":
        raise TrainingError(f"--out {args.out}: give a .onnx file path")
    if not args.gate.is_file():
        raise TrainingError(f"--gate {args.gate}: no such file")
    if args.l2 <= 0:
        raise TrainingError(f"--l2 {args.l2}: give a positive strength")
    if not 0.0 < args.bar < 1.0:
        raise TrainingError(f"--bar {args.bar}: need 0 < bar < 1")
    if not 32 <= args.side <= 1024 or args.side % 32:
        raise TrainingError(f"--side {args.side}: a multiple of 32 from 32 to 1024")
    taps = tuple(sorted(set(args.taps)))
    return ViewHeadHyperparameters(args.side, taps, args.l2, args.bar, args.seed)


def main(args: argparse.Namespace) -> int:
    import torch

    from inference.registry import sha256_of
    from training.dataconfig import default_data_root
    from training.gate_net import export_onnx, load_gate_net
    from training.init_weights import resolve_init

    hp = hyperparameters(args)
    init = resolve_init(str(args.init))
    if init.path == "none":
        raise TrainingError("--init none: name the checkpoint the gate was cut from")
    torch.set_num_threads(max(1, args.threads))
    vehicle = served_vehicle_head(args.gate)
    net = load_gate_net(Path(init.path), hp.taps)
    width = net.columns(hp.taps, hp.side).size
    if width != vehicle.weights.size:  # before minutes of extraction
        raise TrainingError(
            f"--gate {args.gate} reads {vehicle.weights.size} features; --taps "
            f"{list(hp.taps)} give {width}: give the gate's own --taps"
        )
    gate_hp = GateHyperparameters(side=hp.side, taps=hp.taps, seed=hp.seed)
    cache = FeatureCache.open(args.cache, Path(init.path), gate_hp)
    root = args.data_root or default_data_root()
    train = view_examples(net, "train", gate_hp, cache, root)
    val = view_examples(net, "val", gate_hp, cache, root)
    head = fit_head(labelled(train), hp.l2)
    p_val = probabilities(head, val.features)
    both = load_gate_net(Path(init.path), hp.taps, vehicle, view=head)
    export_onnx(both, args.out, hp.side, _metadata(args.gate, hp), more_outputs=(VIEW_OUTPUT,))
    parity = _parity(args.gate, args.out, head, net, hp)
    report = {
        "hyperparameters": asdict(hp),
        "init": init.as_dict(),
        "gate": {"file": str(args.gate), "sha256": sha256_of(args.gate)},
        "train_rows": source_counts(train),
        "val_rows": source_counts(val),
        "val_read_whole": read_whole(p_val, val, hp.bar),
        "val_log_loss": log_loss(*_labelled_p(p_val, val)),
        **parity,
        "onnx_bytes": args.out.stat().st_size,
    }
    args.out.with_suffix(".report.json").write_text(json.dumps(report, indent=1) + "\n")
    write_gate_run("training.view_head", args.out, hp, init.as_dict(), args.data_root)
    print(json.dumps({k: report[k] for k in ("val_read_whole", "val_log_loss")}, indent=1))
    print(f"wrote {args.out} ({report['onnx_bytes'] / 1e6:.1f} MB)")
    return 0


def _labelled_p(p: np.ndarray, examples: Examples) -> tuple[np.ndarray, np.ndarray]:
    keep = ~np.isin(examples.sources, UNLABELLED)
    return p[keep], examples.vehicle[keep]


def _metadata(gate: Path, hp: ViewHeadHyperparameters) -> dict[str, str]:
    """The served gate's metadata (its threshold, its class), the view output named."""
    import onnx

    served = {p.key: p.value for p in onnx.load(str(gate)).metadata_props}
    description = served.get("description", "CDAT vehicle gate")
    return {
        **served,
        "view_output": VIEW_OUTPUT,
        "description": f"{description}; a second logistic head on the same features reads "
        f"the whole-car view ({VIEW_OUTPUT}, L2 {hp.l2:g})",
    }


def _parity(
    gate: Path, out: Path, head: LinearHead, net: Any, hp: ViewHeadHyperparameters
) -> dict[str, float]:
    """On generated inputs: the new file's `vehicle` against the served file's (the head is
    carried over, so they must agree), its view against the numpy head on the features."""
    import onnxruntime as ort
    import torch

    inputs = np.random.default_rng(0).random((4, 3, hp.side, hp.side), dtype=np.float32)
    served = ort.InferenceSession(str(gate), providers=["CPUExecutionProvider"])
    new = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    vehicle_then = served.run(None, {"images": inputs})[0].reshape(-1)
    vehicle_now, view_now = (o.reshape(-1) for o in new.run(None, {"images": inputs}))
    with torch.no_grad():
        feats = net.features(torch.from_numpy(inputs)).numpy().astype(np.float64)
    found = {
        "vehicle_parity_max_abs": float(np.abs(vehicle_now - vehicle_then).max()),
        "view_parity_max_abs": float(np.abs(view_now - probabilities(head, feats)).max()),
    }
    if found["vehicle_parity_max_abs"] > 1e-4 or found["view_parity_max_abs"] > 1e-3:
        raise TrainingError(f"{out}: does not reproduce {gate} and its view head ({found})")
    return found


if __name__ == "__main__":
    run_script(main, get_args_parser())
