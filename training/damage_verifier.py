"""Train the damage verifier (inference/damage_verifier.py): is a detected damage real?

The served analyzer runs over the **train** splits at a low damage threshold (`--pass-conf`;
up to `--max-photos` photos of each outlined source, and the intact `car-parts` train photos,
less those in `datasets/car-parts-damaged.txt`), with the damage model the verifier is for in
the damage model's place (`--detector`, default `--backbone`: a candidate's verifier learns
from the candidate's own detections); its analyses are kept under `--cache`, so a second run
with other head settings and the same detector analyses nothing. Each detection is an
example: real where it overlaps a labelled region at mask IoU >= 0.3 (the claim figures'
bar), not where it overlaps none at 0.1 (in between: left out), never on an intact car. Its
crop (`inference.crops.damage_crop`) is pooled by the damage model's own frozen layers (`--damage`,
its .pt) and joined with `verifier_extras` (with `--cluster`, also with `cluster_extras`: how
many of the photo's detections cover the same place; with `--context`, also with the whole
photo's pooled layers); a small multilayer perceptron learns from both.
What the verifier keeps is chosen afterwards on val (`python -m training.verifier_sweep`).
The result is the perceptron as an ONNX head (inference/stage_net.py: served on the pooled
layers of `--backbone`, the damage model's own .onnx) and a report beside it::

    python -m training.damage_verifier --out runs/verifier/damage-verifier.onnx
    python -m training.damage_verifier --out runs/verifier/b.onnx --hidden 128 --epochs 20
    python -m training.damage_verifier --out runs/verifier/c.onnx --context
    python -m training.damage_verifier --out runs/verifier/d.onnx --cluster
    python -m training.damage_verifier --out runs/verifier/e.onnx --intact-closeups \\
        --cache runs/verifier/train-pass-closeups.pkl
    python -m training.damage_verifier --out runs/verifier/f.onnx \\
        --detector runs/spend/damage-claims-512.onnx --cache runs/verifier/train-pass-512.pkl
    python -m training.damage_verifier --out runs/verifier/fold-0.onnx --intact-fold 0
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from cdat.findings import Box, PhotoAnalysis
from training.claim_eval import DATASETS, PART_NAMED, outlines_of
from training.dataconfig import REPO_ROOT
from training.errors import TrainingError, run_script
from training.eval_report import check_json_out
from training.intact_folds import add_fold_options, check_fold, split_fold
from training.outline_tally import damage_masks, mask_iou
from training.train_pass import INTACT, OUTLINED, TrainPhoto, detector_of, train_pass, train_photos

DEFAULT_DAMAGE = REPO_ROOT / "inference" / "models" / "damage-claims-seg-n-20261201.pt"


@dataclass
class VerifierHyperparameters:
    pass_conf: float = 0.02
    """Damage threshold of the train pass: the lowest the verifier is meant to serve from."""
    max_photos: int = 1000
    """Photos per outlined source (a seeded sample where a split has more)."""
    side: int = 160
    """Crop side in pixels."""
    taps: tuple[int, ...] = (4, 6, 10, 13, 16, 19, 22)
    """Layers of the damage model whose maps are pooled."""
    hidden: int = 64
    """Width of the perceptron's hidden layer (a linear head found less on val)."""
    dropout: float = 0.2
    weight_decay: float = 0.05
    epochs: int = 30
    lr: float = 1e-3
    positive_iou: float = 0.3
    negative_iou: float = 0.1
    seed: int = 0
    """Seed of the photo sample and of training (not of the re-split:
    `training.train_pass.SPLIT_SEED`)."""
    context: bool = False
    """The perceptron also reads the whole photo's pooled layers."""
    cluster: bool = False
    """The perceptron also reads how many detections cover the same place, and the surest."""
    intact_closeups: bool = False
    """Also learn from close-up windows of the intact train cars (every detection false)."""
    intact_fold: int | None = None
    """Learn from none of this fold's intact cars (`training.intact_folds`), to be measured
    on them."""
    intact_folds: int = 4
    """Folds the intact train cars are put in."""


def labels(photo: TrainPhoto, analysis: PhotoAnalysis, hp: VerifierHyperparameters) -> np.ndarray:
    """1 real, 0 not damage, -1 left out, per detection."""
    from training.closeup import part_families

    if photo.source in INTACT:
        return np.zeros(len(analysis.damages), int)
    families = (
        part_families(DATASETS / f"{photo.source}.yaml") if photo.source in PART_NAMED else None
    )
    outlines = outlines_of(photo.instances, (analysis.height, analysis.width), families)
    best = np.array(
        [max((mask_iou(m, o.mask) for o in outlines), default=0.0) for m in damage_masks(analysis)]
    )
    return np.where(best >= hp.positive_iou, 1, np.where(best < hp.negative_iou, 0, -1))


def features(
    net: Any,
    photo: Path,
    analysis: PhotoAnalysis,
    classes: Sequence[str],
    side: int,
    context: bool = False,
    cluster: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """(pooled crop features, extras) of each detection of one photo, as the served verifier
    joins them: with `cluster` the named extras end with `cluster_extras` (against every
    detection of the pass: the pass is made at the threshold the verifier serves from); with
    `context` the whole photo's pooled layers come after them."""
    import torch

    from inference.crops import damage_crop, photo_crop
    from inference.damage_verifier import cluster_extras, verifier_extras
    from training.vehicle_gate import read_photo_scaled

    image, (sx, sy) = read_photo_scaled(photo)
    boxes = [Box(d.box.x1 / sx, d.box.y1 / sy, d.box.x2 / sx, d.box.y2 / sy)
             for d in analysis.damages]  # fmt: skip
    crops = np.stack([damage_crop(image, b, side) for b in boxes])
    if context:
        crops = np.concatenate([photo_crop(image, side)[None], crops])
    with torch.no_grad():
        pooled = net.features(torch.from_numpy(crops)).numpy()
    size = (analysis.width, analysis.height)
    found = analysis.damages
    extras = np.array(
        [
            verifier_extras(d, analysis.parts, *size, classes)
            + (cluster_extras(d, found) if cluster else [])
            for d in found
        ],
        np.float32,
    )
    if context:
        extras = np.hstack([extras, np.repeat(pooled[:1], len(boxes), 0)])
        pooled = pooled[1:]
    return pooled, extras


def fit_perceptron(
    x: np.ndarray, y: np.ndarray, hp: VerifierHyperparameters, scale_floor: float = 0.0
) -> Any:
    """Standardised inputs -> hidden layer -> logit; returns (module, mean, scale). No
    column's scale is below `scale_floor` times the median column's: a fine-tuned verifier's
    layers move the features, and one that barely varied would be blown up."""
    import torch
    from torch import nn

    torch.manual_seed(hp.seed)
    spread = x.std(0)
    mean, scale = x.mean(0), np.maximum(spread, scale_floor * np.median(spread)) + 1e-6
    inputs = torch.from_numpy(((x - mean) / scale).astype(np.float32))
    target = torch.from_numpy(y.astype(np.float32))
    mlp = nn.Sequential(nn.Dropout(hp.dropout), nn.Linear(x.shape[1], hp.hidden), nn.ReLU(),
                        nn.Linear(hp.hidden, 1))  # fmt: skip
    optimiser = torch.optim.AdamW(mlp.parameters(), hp.lr, weight_decay=hp.weight_decay)
    for _ in range(hp.epochs):
        order = torch.randperm(len(inputs))
        for start in range(0, len(inputs), 256):
            batch = order[start : start + 256]
            optimiser.zero_grad()
            logits = mlp(inputs[batch]).squeeze(1)
            loss = nn.functional.binary_cross_entropy_with_logits(logits, target[batch])
            loss.backward()
            optimiser.step()
    return mlp.eval(), mean, scale


def verifier_net(damage: Path, taps: tuple[int, ...], fitted: Any) -> Any:
    """The exported net: pooled crop features and extras, standardised, the perceptron."""
    import torch
    from torch import nn

    from training.gate_net import load_gate_net

    body = load_gate_net(damage, taps)
    mlp, mean, scale = fitted

    class VerifierNet(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.body, self.mlp = body, mlp
            self.mean = nn.Parameter(torch.from_numpy(mean.astype(np.float32)), False)
            self.scale = nn.Parameter(torch.from_numpy(scale.astype(np.float32)), False)

        def head(self, features: torch.Tensor, extras: torch.Tensor) -> torch.Tensor:
            joined = torch.cat([features, extras], dim=1)
            return torch.sigmoid(self.mlp((joined - self.mean) / self.scale)).squeeze(1)

        def forward(self, images: torch.Tensor, extras: torch.Tensor) -> torch.Tensor:
            return self.head(self.body.features(images), extras)

    return VerifierNet().float().eval()


def get_args_parser(add_help: bool = True) -> argparse.ArgumentParser:
    hp = VerifierHyperparameters()
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0], add_help=add_help)
    parser.add_argument("--out", type=Path, required=True, help="the verifier's .onnx to write")
    parser.add_argument("--damage", type=Path, default=DEFAULT_DAMAGE,
                        help="the damage model's .pt whose layers are used")  # fmt: skip
    parser.add_argument("--backbone", type=Path, default=None,
                        help="that model's served .onnx, which the verifier's head reads "
                        "(default: the .onnx beside --damage)")  # fmt: skip
    parser.add_argument("--detector", type=Path, default=None,
                        help="the damage model's .onnx whose detections on the train photos are "
                        "the examples, e.g. the same weights exported at another input size "
                        "(default: --backbone; the promoted model as registered where it is "
                        "that file)")  # fmt: skip
    parser.add_argument("--cache", type=Path, default=Path("runs/verifier/train-pass.pkl"),
                        help="where the train pass is kept (.pkl)")  # fmt: skip
    parser.add_argument("--pass-conf", type=float, default=hp.pass_conf,
                        help="damage threshold of the train pass")  # fmt: skip
    parser.add_argument("--max-photos", type=int, default=hp.max_photos,
                        help="photos per outlined source")  # fmt: skip
    parser.add_argument("--side", type=int, default=hp.side, help="crop side in pixels")
    parser.add_argument("--hidden", type=int, default=hp.hidden, help="hidden layer width")
    parser.add_argument("--epochs", type=int, default=hp.epochs, help="training epochs")
    parser.add_argument("--weight-decay", type=float, default=hp.weight_decay,
                        help="AdamW weight decay")  # fmt: skip
    parser.add_argument("--cluster", action="store_true",
                        help="also read how many of the photo's detections cover the same "
                        "place and the surest of their scores")  # fmt: skip
    parser.add_argument("--context", action="store_true",
                        help="the perceptron also reads the whole photo's layers")  # fmt: skip
    parser.add_argument("--intact-closeups", action="store_true",
                        help="also learn from close-up windows of the intact train cars "
                        "(training/intact_closeups.py), every detection on them false")  # fmt: skip
    add_fold_options(parser, hp.intact_folds)
    parser.add_argument("--seed", type=int, default=hp.seed,
                        help="seed of the photo sample and training (the photos are always "
                        "the converted re-split's train photos)")  # fmt: skip
    parser.add_argument("--threads", type=int, default=2, help="CPU threads")
    parser.add_argument("--data-root", type=Path, default=None,
                        help="data sets folder (default: $CDAT_DATA_ROOT)")  # fmt: skip
    return parser


def hyperparameters(args: argparse.Namespace) -> VerifierHyperparameters:
    if args.out.suffix != ".onnx":
        raise TrainingError(f"--out {args.out}: name an .onnx file")
    if not args.damage.is_file():
        raise TrainingError(f"--damage {args.damage}: no such checkpoint")
    if not backbone_of(args).is_file():
        raise TrainingError(f"--backbone {backbone_of(args)}: no such file (the served .onnx)")
    if args.detector is not None and not args.detector.is_file():
        raise TrainingError(f"--detector {args.detector}: no such file")
    if not 0.0 < args.pass_conf < 1.0:
        raise TrainingError(f"--pass-conf {args.pass_conf}: need 0 < conf < 1")
    if not 32 <= args.side <= 640 or args.side % 32:
        raise TrainingError(f"--side {args.side}: a multiple of 32 from 32 to 640")
    if min(args.max_photos, args.hidden, args.epochs) < 1 or args.weight_decay < 0:
        raise TrainingError("--max-photos, --hidden, --epochs: at least 1; --weight-decay >= 0")
    check_fold(args.intact_fold, args.intact_folds)
    return VerifierHyperparameters(
        pass_conf=args.pass_conf, max_photos=args.max_photos, side=args.side,
        hidden=args.hidden, weight_decay=args.weight_decay, epochs=args.epochs, seed=args.seed,
        context=args.context, cluster=args.cluster, intact_closeups=args.intact_closeups,
        intact_fold=args.intact_fold, intact_folds=args.intact_folds,
    )  # fmt: skip


def backbone_of(args: argparse.Namespace) -> Path:
    return Path(args.backbone or args.damage.with_suffix(".onnx"))


def main(args: argparse.Namespace) -> int:
    import torch

    from inference.damage_verifier import TYPE_NAMES, extra_names
    from training.gate_net import load_gate_net
    from training.stage_head import export_head

    hp = hyperparameters(args)
    check_json_out(args.out.with_suffix(".report.json"))
    classes = _classes(args.damage)
    if not set(classes) <= TYPE_NAMES:
        raise TrainingError(
            f"--damage {args.damage}: its classes ({', '.join(classes)}) are not all damage "
            "types; the verifier's type one-hot needs a model that names plain types"
        )
    torch.set_num_threads(max(1, args.threads))
    started = time.perf_counter()
    photos = train_photos(hp, args.data_root, args.cache.parent / "intact-closeups")
    detector = detector_of(args.detector or backbone_of(args), hp.pass_conf)
    analyses = train_pass(photos, hp.pass_conf, args.cache, detector)
    if hp.intact_fold is not None:
        photos, _ = split_fold(photos, hp.intact_fold, hp.intact_folds)
    net = load_gate_net(args.damage, hp.taps)
    rows, extras, ys, counts = [], [], [], {s: [0, 0] for s in (*OUTLINED, *INTACT)}
    for photo in photos:
        analysis = analyses[str(photo.path)]
        if not analysis.damages:
            continue
        y = labels(photo, analysis, hp)
        pooled, more = features(net, photo.path, analysis, classes, hp.side, hp.context, hp.cluster)
        keep = y >= 0
        rows.append(pooled[keep])
        extras.append(more[keep])
        ys.append(y[keep])
        counts[photo.source][0] += int((y == 1).sum())
        counts[photo.source][1] += int((y == 0).sum())
    if not ys or len(set(np.concatenate(ys).tolist())) < 2:
        raise TrainingError("the train pass found no real and no false damage to learn from")
    x = np.hstack([np.vstack(rows), np.vstack(extras)]).astype(np.float64)
    fitted = fit_perceptron(x, np.concatenate(ys), hp)
    model = verifier_net(args.damage, hp.taps, fitted)
    names = extra_names(classes, hp.cluster)
    metadata = {"classes": ",".join(classes), "extras": ",".join(names), "side": str(hp.side),
                "description": f"CDAT damage verifier: {args.damage.name} layers pooled at "
                f"{list(hp.taps)} with {len(names)} extras, perceptron"}  # fmt: skip
    if hp.context:
        metadata["context"] = "photo_features"
        metadata["description"] += ", also reading the whole photo"
    width = extras[0].shape[1]
    parity = export_head(model, args.out, backbone_of(args), metadata, "damage", width)
    report = {
        "hyperparameters": asdict(hp),
        "damage": str(args.damage),
        "classes": list(classes),
        "examples": {s: {"real": r, "not_damage": n} for s, (r, n) in counts.items()},
        "backbone": str(backbone_of(args)),
        "detector": "promoted" if detector.file is None else str(detector.file),
        "onnx_parity_max_abs": parity,
        "seconds": round(time.perf_counter() - started, 1),
        "command": "python -m training.damage_verifier " + " ".join(map(shlex.quote, sys.argv[1:])),
    }
    args.out.with_suffix(".report.json").write_text(json.dumps(report, indent=1) + "\n")
    print(json.dumps({k: report[k] for k in ("examples", "seconds")}, indent=1))
    print(f"wrote {args.out}")
    return 0


def _classes(damage: Path) -> tuple[str, ...]:
    """The damage model's class names, in its output order; a TrainingError where the file
    is no Ultralytics checkpoint."""
    import pickle

    import torch

    from training.gate_net import checkpoint_network

    try:
        checkpoint = torch.load(damage, map_location="cpu", weights_only=False)
        names = checkpoint_network(checkpoint).names
        return tuple(names[k] for k in sorted(names))
    except (pickle.UnpicklingError, EOFError, RuntimeError, KeyError, TypeError,
            AttributeError) as exc:  # fmt: skip
        problem = f"--damage {damage}: not a PyTorch checkpoint of a damage model ({exc})"
        raise TrainingError(problem) from exc


if __name__ == "__main__":
    run_script(main, get_args_parser())
