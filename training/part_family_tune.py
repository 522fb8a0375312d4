"""Fine-tune the part-family stage end to end (inference/part_family.py, a stage stored whole).

`training.part_family` fits a softmax head on the part model's pooled layers, which stay as
the part model learnt them on whole cars. On close-ups those layers and the part masks fail
together (a hood close-up read as neither by either: docs/model-experiments.md, "The damage
placer"), so a second opinion on the same features cannot overrule them where it matters.
Here the later layers learn too: the part model's layers up to the last tap, the pooled
taps standardised, a linear layer and a softmax, trained together with class-balanced cross
entropy on the labelled regions of the part-named sets' train splits (each cropped as serving
crops a damage, `inference.crops.damage_crop`, and once more from a box moved and resized as
a detection's often is; mirrored at random). Batch-norm statistics stay the part model's.
The epoch kept is the one with the best mean crop accuracy over the two sources' val
regions; the rule it overrules the masks by is chosen afterwards on a claim pass
(`python -m training.family_sweep --stage <out>`). The stage is exported whole (crop in,
families out), so it serves without the part model's file::

    python -m training.part_family_tune --out runs/family/part-family-tuned.onnx
    python -m training.part_family_tune --out runs/family/t.onnx --epochs 2 --trainable-from 10
    python -m training.part_family_tune --out runs/family/f.onnx \\
        --with-data datasets/cdat-feedback-families.yaml
    python -m training.part_family_tune --out runs/family/d.onnx --side 160 --detections
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

from cdat.findings import Box
from cdat.taxonomy import PartFamily
from inference.cpu_features import read_cpu_features
from training.cpu_bf16 import CPU_BF16_HELP, check_cpu_bf16, cpu_autocast
from training.errors import TrainingError, run_script
from training.eval_report import check_json_out
from training.part_family import (
    DEFAULT_PARTS,
    Region,
    add_detection_options,
    add_more_data_option,
    check_detection_options,
    check_more_data,
    crop_accuracy,
    detection_regions,
    mean_accuracy,
    regions,
    regions_per_source,
)


@dataclass
class TuneHyperparameters:
    side: int = 224
    """Crop side in pixels (the linear stage's)."""
    taps: tuple[int, ...] = (4, 6, 10, 13, 16, 19, 22)
    """Layers whose maps are pooled (the linear stage's)."""
    trainable_from: int = 6
    """Layers before this one keep the part model's weights."""
    epochs: int = 4
    """Passes over the train crops."""
    batch: int = 32
    """Crops a step."""
    lr: float = 3e-4
    """AdamW learning rate of the part model's layers (cosine decay to zero)."""
    head_lr: float = 3e-3
    """AdamW learning rate of the linear layer, which starts at zero."""
    weight_decay: float = 1e-4
    """AdamW weight decay."""
    jitter: float = 0.25
    """How far the second crop's box is moved and resized (a share of its side)."""
    seed: int = 0
    """Seed of the sets' re-split (as converted), the jitter and the batches."""
    detections: bool = False
    """Also learn from the damage model's own boxes over a labelled region: serving crops a
    detection, which is often much larger than the outline a labeller drew."""
    detection_iou: float = 0.3
    """Mask IoU a detection needs with a labelled region to be named by its family."""
    cpu_bf16: bool = False
    """Train in bf16 autocast (a CPU with native bf16 only: training.cpu_bf16)."""


def jittered(box: Box, rng: np.random.Generator, amount: float) -> Box:
    """`box` (normalised to its photo) moved and resized by up to `amount` of its side,
    clipped to the photo; never empty."""
    w, h = box.x2 - box.x1, box.y2 - box.y1
    cx = (box.x1 + box.x2) / 2 + rng.uniform(-amount, amount) * w
    cy = (box.y1 + box.y2) / 2 + rng.uniform(-amount, amount) * h
    grow = float(np.exp(rng.uniform(-amount, amount)))
    half_w, half_h = max(w * grow / 2, 1e-3), max(h * grow / 2, 1e-3)
    x1, y1 = min(max(cx - half_w, 0.0), 1.0 - 2e-3), min(max(cy - half_h, 0.0), 1.0 - 2e-3)
    return Box(x1, y1, max(min(cx + half_w, 1.0), x1 + 1e-3), max(min(cy + half_h, 1.0), y1 + 1e-3))


def crops_of(items: Sequence[Region], side: int) -> np.ndarray:
    """(N, 3, side, side) uint8 RGB crops of each region, as `damage_crop` makes them (the
    photos are 8-bit, so nothing is lost before the division by 255)."""
    from inference.crops import damage_crop
    from training.vehicle_gate import read_photo

    out = np.zeros((len(items), 3, side, side), np.uint8)
    photo, path = None, None
    for k, item in enumerate(items):
        if item.image != path:
            photo, path = read_photo(item.image), item.image
        assert photo is not None
        h, w = photo.shape[:2]
        b = item.box
        crop = damage_crop(photo, Box(b.x1 * w, b.y1 * h, b.x2 * w, b.y2 * h), side)
        out[k] = np.rint(crop * 255.0).astype(np.uint8)
    return out


class FamilyTuner:
    """The part model's layers, their pooled taps standardised, a linear layer: logits."""

    @staticmethod
    def build(parts: Path, hp: TuneHyperparameters, families: int, sample: np.ndarray) -> Any:
        import torch
        from torch import nn

        from training.gate_net import load_gate_net

        body = load_gate_net(parts, hp.taps)
        with torch.no_grad():
            pooled = body.features(torch.from_numpy(sample.astype(np.float32) / 255.0))
        mean, scale = pooled.mean(0), pooled.std(0) + 1e-6
        for k, layer in enumerate(body.layers):
            for p in layer.parameters():
                p.requires_grad_(k >= hp.trainable_from)

        class FamilyNet(nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.body = body
                self.register_buffer("mean", mean)
                self.register_buffer("scale", scale)
                self.linear = nn.Linear(len(mean), families)
                nn.init.zeros_(self.linear.weight)
                nn.init.zeros_(self.linear.bias)

            def logits(self, x: torch.Tensor) -> torch.Tensor:
                pooled = self.body.features(x)
                return self.linear((pooled - self.get_buffer("mean")) / self.get_buffer("scale"))

            def forward(self, x: torch.Tensor) -> torch.Tensor:
                return torch.softmax(self.logits(x), dim=1)

        return FamilyNet().float().eval()


def predicted(net: Any, crops: np.ndarray, batch: int = 64) -> np.ndarray:
    """The most likely family index of each uint8 crop."""
    import torch

    out = []
    with torch.no_grad():
        for start in range(0, len(crops), batch):
            x = torch.from_numpy(crops[start : start + batch].astype(np.float32) / 255.0)
            out.append(net.logits(x).argmax(1).numpy())
    return np.concatenate(out) if out else np.zeros(0, np.int64)


def train(
    net: Any,
    crops: np.ndarray,
    labels: np.ndarray,
    hp: TuneHyperparameters,
    on_epoch: Any,
) -> None:
    """Class-balanced cross entropy, AdamW with a cosine decay, crops mirrored at random;
    batch norm kept in eval mode (the part model's statistics). `on_epoch(epoch)` after each."""
    import torch

    rng = np.random.default_rng(hp.seed)
    classes = int(net.linear.out_features)
    counts = np.maximum(np.bincount(labels, minlength=classes), 1)
    weight = torch.from_numpy(len(labels) / (classes * counts)).float()
    body = [p for p in net.body.parameters() if p.requires_grad]
    optimiser = torch.optim.AdamW(
        [{"params": body, "lr": hp.lr}, {"params": net.linear.parameters(), "lr": hp.head_lr}],
        weight_decay=hp.weight_decay,
    )
    steps = hp.epochs * max(1, -(-len(labels) // hp.batch))
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimiser, steps)
    net.eval()
    for epoch in range(hp.epochs):
        order = rng.permutation(len(labels))
        for start in range(0, len(order), hp.batch):
            index = order[start : start + hp.batch]
            batch = crops[index].astype(np.float32) / 255.0
            flip = rng.random(len(index)) < 0.5
            batch[flip] = batch[flip][:, :, :, ::-1]
            with cpu_autocast(hp.cpu_bf16):
                logits = net.logits(torch.from_numpy(np.ascontiguousarray(batch)))
            loss = torch.nn.functional.cross_entropy(
                logits.float(), torch.from_numpy(labels[index]), weight=weight
            )
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            schedule.step()
        on_epoch(epoch)


def get_args_parser(add_help: bool = True) -> argparse.ArgumentParser:
    hp = TuneHyperparameters()
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0], add_help=add_help)
    parser.add_argument("--out", type=Path, required=True, help="the stage's .onnx file to write")
    parser.add_argument("--parts", type=Path, default=DEFAULT_PARTS,
                        help="the part model's Ultralytics .pt to start from")  # fmt: skip
    parser.add_argument("--side", type=int, default=hp.side, help="crop side in pixels")
    parser.add_argument("--trainable-from", type=int, default=hp.trainable_from,
                        help="first layer that learns (earlier ones stay as the part "
                        "model's)")  # fmt: skip
    parser.add_argument("--epochs", type=int, default=hp.epochs, help="passes over the crops")
    parser.add_argument("--batch", type=int, default=hp.batch, help="crops a step")
    parser.add_argument("--lr", type=float, default=hp.lr,
                        help="learning rate of the part model's layers")  # fmt: skip
    parser.add_argument("--head-lr", type=float, default=hp.head_lr,
                        help="learning rate of the linear layer")  # fmt: skip
    parser.add_argument("--jitter", type=float, default=hp.jitter,
                        help="how far the second crop's box moves and grows (share of its "
                        "side; 0: no second crop)")  # fmt: skip
    parser.add_argument("--max-regions", type=int, default=None,
                        help="use at most this many train regions (a quick trial)")  # fmt: skip
    parser.add_argument("--seed", type=int, default=hp.seed, help="re-split, jitter and batch seed")
    parser.add_argument("--cpu-bf16", action="store_true", help=CPU_BF16_HELP)
    parser.add_argument("--threads", type=int, default=2, help="CPU threads")
    add_detection_options(parser)
    add_more_data_option(parser)
    parser.add_argument("--data-root", type=Path, default=None,
                        help="data sets folder (default: $CDAT_DATA_ROOT)")  # fmt: skip
    return parser


def hyperparameters(args: argparse.Namespace) -> TuneHyperparameters:
    """The run's hyperparameters; a bad value is a TrainingError before any work."""
    if args.out.suffix != ".onnx":
        raise TrainingError(f"--out {args.out}: name an .onnx file")
    check_json_out(args.out.with_suffix(".report.json"))
    if not args.parts.is_file():
        raise TrainingError(f"--parts {args.parts}: no such checkpoint")
    if not 32 <= args.side <= 640 or args.side % 32:
        raise TrainingError(f"--side {args.side}: a multiple of 32 from 32 to 640")
    for name in ("epochs", "batch"):
        if getattr(args, name) < 1:
            raise TrainingError(f"--{name} {getattr(args, name)}: at least 1")
    if args.max_regions is not None and args.max_regions < 1:
        raise TrainingError(f"--max-regions {args.max_regions}: at least 1")
    for name in ("lr", "head_lr"):
        if not getattr(args, name) > 0:
            raise TrainingError(f"--{name.replace('_', '-')} {getattr(args, name)}: above 0")
    if not 0 <= args.jitter < 1:
        raise TrainingError(f"--jitter {args.jitter}: from 0 up to (not including) 1")
    if args.trainable_from < 0:
        raise TrainingError(f"--trainable-from {args.trainable_from}: a layer index, 0 or more")
    check_detection_options(args)
    if args.cpu_bf16:
        check_cpu_bf16("cpu", read_cpu_features())
    return TuneHyperparameters(side=args.side, trainable_from=args.trainable_from,
                               epochs=args.epochs, batch=args.batch, lr=args.lr,
                               head_lr=args.head_lr, jitter=args.jitter,
                               seed=args.seed, detections=args.detections,
                               cpu_bf16=args.cpu_bf16)  # fmt: skip


def main(args: argparse.Namespace) -> int:
    import copy

    import torch

    from training.gate_net import export_onnx, onnx_parity

    hp = hyperparameters(args)
    torch.set_num_threads(max(1, args.threads))
    torch.manual_seed(hp.seed)
    started = time.perf_counter()
    check_more_data(args.with_data)
    train_regions = regions("train", hp.seed, args.data_root, args.with_data)
    val = regions("val", hp.seed, args.data_root, args.with_data)
    if not train_regions or not val:
        raise TrainingError("no labelled regions: is $CDAT_DATA_ROOT set to the shared data sets?")
    rng = np.random.default_rng(hp.seed)
    if args.max_regions is not None and args.max_regions < len(train_regions):
        keep = sorted(rng.choice(len(train_regions), args.max_regions, replace=False))
        train_regions = [train_regions[k] for k in keep]
    families = [f for f in PartFamily if any(r.family is f for r in train_regions)]
    examples = list(train_regions)
    if hp.jitter > 0:
        examples += [
            Region(r.image, jittered(r.box, rng, hp.jitter), r.family, r.source)
            for r in train_regions
        ]
    detected = []
    if hp.detections:
        detected = detection_regions(hp.seed, args.data_root, args.cache, hp.detection_iou)
        examples += detected
    crops = crops_of(examples, hp.side)
    labels = np.array([families.index(r.family) for r in examples], np.int64)
    val_crops = crops_of(val, hp.side)
    val_truth = np.array([families.index(r.family) if r.family in families else -1 for r in val])
    val_sources = np.array([r.source for r in val])
    sample = crops[rng.choice(len(crops), min(256, len(crops)), replace=False)]
    net = FamilyTuner.build(args.parts, hp, len(families), sample)
    history: list[dict[str, Any]] = []
    best: dict[str, Any] = {}

    def on_epoch(epoch: int) -> None:
        report = crop_accuracy(predicted(net, val_crops), val_truth, val_sources, families)
        history.append({"epoch": epoch + 1, "val": report})
        print(json.dumps({"epoch": epoch + 1, "mean": mean_accuracy(report), "val": report}))
        if not best or mean_accuracy(report) > mean_accuracy(best["val"]):
            best.update(epoch=epoch + 1, val=report, state=copy.deepcopy(net.state_dict()))

    train(net, crops, labels, hp, on_epoch)
    net.load_state_dict(best["state"])
    metadata = {"families": ",".join(f.value for f in families), "side": str(hp.side),
                "description": f"CDAT part-family stage: {args.parts.name} layers "
                f"{hp.trainable_from}-{max(hp.taps)} fine-tuned, pooled at {list(hp.taps)}, "
                "softmax head"}  # fmt: skip
    export_onnx(net, args.out, hp.side, metadata, output="families")
    parity = onnx_parity(args.out, net, hp.side)
    report = {
        "hyperparameters": asdict(hp),
        "parts": str(args.parts),
        "families": [f.value for f in families],
        "train_regions": regions_per_source(train_regions),
        "train_detections": regions_per_source(detected),
        "epoch": best["epoch"],
        "val": best["val"],
        "history": history,
        "onnx_parity_max_abs": parity,
        "seconds": round(time.perf_counter() - started, 1),
        "command": "python -m training.part_family_tune "
        + " ".join(map(shlex.quote, sys.argv[1:])),
    }
    args.out.with_suffix(".report.json").write_text(json.dumps(report, indent=1) + "\n")
    print(json.dumps({"epoch": best["epoch"], "val": best["val"]}, indent=1))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    run_script(main, get_args_parser())
