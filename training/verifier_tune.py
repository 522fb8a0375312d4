"""Fine-tune the damage verifier end to end (inference/damage_verifier.py, a stage stored whole).

`training.damage_verifier` fits a perceptron on the damage model's pooled layers, which stay as
the detector learnt them: the same features that made a reflection look like a dent in the
first place. Three verifier shapes, a second look and an ensemble on those features all
landed within about 0.01 of each other on val (docs/model-experiments.md); the part-family
stage gained 5 points of val accuracy once its layers learnt too. Here the same is done for
the verifier: its examples are the train pass's detections (`training.train_pass`, labelled as
`training.damage_verifier.labels` labels them), each crop is pooled by the damage model's
layers, joined with `verifier_extras`, standardised, and a perceptron answers. First the
perceptron is fitted on the frozen layers (the served recipe: "epoch 0"), then layers from
`--trainable-from` on learn with it (binary cross entropy, AdamW, cosine decay, crops mirrored
at random; batch norm keeps the detector's statistics). A seeded share of the train photos is
held out, by photo, and the epoch kept is the one with the lowest log loss on their
detections (val is for choosing the rule afterwards: `python -m training.verifier_sweep
--verifier <out>`). The stage is exported whole (crop and extras in, probability out)::

    python -m training.verifier_tune --out runs/verifier/verifier-tuned.onnx
    python -m training.verifier_tune --out runs/verifier/t.onnx --epochs 2 --max-photos 200 \\
        --cache runs/verifier/train-pass-200.pkl
    python -m training.verifier_tune --out runs/verifier/c.onnx --intact-closeups \\
        --cache runs/verifier/train-pass-closeups.pkl
    python -m training.verifier_tune --out runs/verifier/z.onnx --intact-closeups --seed 1 \\
        --zoom-look-view-below 0.5 --cache runs/verifier/train-pass-zoom.pkl

`--zoom-look-view-below` teaches it the detections of the zoomed-out look too, taken where the
gate reads a photo under that whole-car view probability (inference/zoom_look.py), as a
damage entry naming the bar would serve them.
"""

from __future__ import annotations

import argparse
import copy
import json
import shlex
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from inference.cpu_features import read_cpu_features
from training.cpu_bf16 import CPU_BF16_HELP, check_cpu_bf16, cpu_autocast
from training.damage_verifier import (
    DEFAULT_DAMAGE,
    VerifierHyperparameters,
    _classes,
    fit_perceptron,
)
from training.errors import TrainingError, run_script
from training.eval_report import check_json_out
from training.intact_folds import add_fold_options, check_fold, split_fold
from training.train_pass import INTACT, OUTLINED, detector_of, train_pass, train_photos
from training.verifier_examples import (
    Examples,
    examples_of,
    frozen_features,
    held_out_photos,
    probabilities,
    scores,
)


@dataclass
class VerifierTuneHyperparameters:
    """The pass, crops, layers and perceptron default to the served verifier's recipe."""

    pass_conf: float = VerifierHyperparameters.pass_conf
    """Damage threshold of the train pass."""
    max_photos: int = VerifierHyperparameters.max_photos
    """Photos per outlined source."""
    side: int = VerifierHyperparameters.side
    """Crop side in pixels."""
    taps: tuple[int, ...] = VerifierHyperparameters.taps
    """Layers whose maps are pooled."""
    trainable_from: int = 6
    """Layers before this one keep the damage model's weights."""
    hidden: int = VerifierHyperparameters.hidden
    """Width of the perceptron's hidden layer."""
    dropout: float = VerifierHyperparameters.dropout
    """Dropout before the perceptron, while it learns."""
    perceptron_epochs: int = VerifierHyperparameters.epochs
    """Epochs of the perceptron alone on the frozen layers (epoch 0, the served recipe)."""
    epochs: int = 3
    """Passes over the crops with the layers learning."""
    batch: int = 32
    """Crops a step."""
    lr: float = 1e-4
    """AdamW learning rate of the damage model's layers (cosine decay to zero)."""
    head_lr: float = 1e-4
    """AdamW learning rate of the perceptron, fitted already (cosine decay to zero)."""
    weight_decay: float = VerifierHyperparameters.weight_decay
    """AdamW weight decay."""
    held_out: float = 0.1
    """Share of the train photos held out, by photo, to choose the epoch."""
    scale_floor: float = 0.05
    """No input of the perceptron is scaled by less than this share of the median input's
    spread (`fit_perceptron`)."""
    seed: int = 0
    """Seed of the photo sample, the held-out photos and training (not of the re-split:
    `training.train_pass.SPLIT_SEED`)."""
    intact_closeups: bool = False
    """Also learn from close-up windows of the intact train cars (every detection false)."""
    intact_fold: int | None = None
    """Learn from none of this fold's intact cars (`training.intact_folds`), to be measured
    on them."""
    intact_folds: int = 4
    """Folds the intact train cars are put in."""
    cpu_bf16: bool = False
    """Train in bf16 autocast (a CPU with native bf16 only: training.cpu_bf16)."""
    zoom_look_view_below: float | None = None
    """Where given, the pass also takes the zoomed-out look on photos the gate reads under
    this whole-car view probability (None: as the promoted entry serves it)."""

    def pass_hp(self) -> VerifierHyperparameters:
        """The train pass and labels as `training.damage_verifier` makes them."""
        return VerifierHyperparameters(pass_conf=self.pass_conf, max_photos=self.max_photos,
                                       side=self.side, seed=self.seed,
                                       intact_closeups=self.intact_closeups)  # fmt: skip


class VerifierTuner:
    """The damage model's layers, pooled, joined with the extras, standardised, a perceptron."""

    @staticmethod
    def build(damage: Path, hp: VerifierTuneHyperparameters, train: Examples) -> Any:
        import torch
        from torch import nn

        from training.gate_net import load_gate_net

        body = load_gate_net(damage, hp.taps)
        pooled = frozen_features(body, train.crops)
        fitted = fit_perceptron(
            np.hstack([pooled, train.extras]).astype(np.float64), train.labels,
            VerifierHyperparameters(hidden=hp.hidden, dropout=hp.dropout,
                                    weight_decay=hp.weight_decay,
                                    epochs=hp.perceptron_epochs, seed=hp.seed),
            hp.scale_floor,
        )  # fmt: skip
        mlp, mean, scale = fitted
        for k, layer in enumerate(body.layers):
            for p in layer.parameters():
                p.requires_grad_(k >= hp.trainable_from)

        class TunedVerifierNet(nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.body, self.mlp = body, mlp
                self.register_buffer("mean", torch.from_numpy(mean.astype(np.float32)))
                self.register_buffer("scale", torch.from_numpy(scale.astype(np.float32)))

            def logits(self, images: torch.Tensor, extras: torch.Tensor) -> torch.Tensor:
                joined = torch.cat([self.body.features(images), extras], dim=1)
                standard = (joined - self.get_buffer("mean")) / self.get_buffer("scale")
                return self.mlp(standard).squeeze(1)

            def forward(self, images: torch.Tensor, extras: torch.Tensor) -> torch.Tensor:
                return torch.sigmoid(self.logits(images, extras))

        return TunedVerifierNet().float().eval()


def train(net: Any, found: Examples, hp: VerifierTuneHyperparameters, on_epoch: Any) -> None:
    """Binary cross entropy, AdamW with a cosine decay, crops mirrored at random; batch norm
    kept in eval mode (the damage model's statistics). `on_epoch(epoch)` after each."""
    import torch

    rng = np.random.default_rng(hp.seed)
    body = [p for p in net.body.parameters() if p.requires_grad]
    optimiser = torch.optim.AdamW(
        [{"params": body, "lr": hp.lr}, {"params": net.mlp.parameters(), "lr": hp.head_lr}],
        weight_decay=hp.weight_decay,
    )
    steps = hp.epochs * max(1, -(-len(found.labels) // hp.batch))
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimiser, steps)
    for epoch in range(hp.epochs):
        net.eval()
        net.mlp.train()  # its dropout, while batch norm keeps the detector's statistics
        order = rng.permutation(len(found.labels))
        for start in range(0, len(order), hp.batch):
            index = order[start : start + hp.batch]
            batch = found.crops[index].astype(np.float32) / 255.0
            flip = rng.random(len(index)) < 0.5
            batch[flip] = batch[flip][:, :, :, ::-1]
            with cpu_autocast(hp.cpu_bf16):
                logits = net.logits(torch.from_numpy(np.ascontiguousarray(batch)),
                                    torch.from_numpy(found.extras[index]))  # fmt: skip
            loss = torch.nn.functional.binary_cross_entropy_with_logits(
                logits.float(), torch.from_numpy(found.labels[index].astype(np.float32))
            )
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            schedule.step()
        net.eval()
        on_epoch(epoch + 1)


def get_args_parser(add_help: bool = True) -> argparse.ArgumentParser:
    hp = VerifierTuneHyperparameters()
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0], add_help=add_help)
    parser.add_argument("--out", type=Path, required=True, help="the verifier's .onnx to write")
    parser.add_argument("--damage", type=Path, default=DEFAULT_DAMAGE,
                        help="the damage model's Ultralytics .pt to start from")  # fmt: skip
    parser.add_argument("--detector", type=Path, default=None,
                        help="the damage model whose detections are the examples (default: "
                        "the promoted model)")  # fmt: skip
    parser.add_argument("--cache", type=Path, default=Path("runs/verifier/train-pass.pkl"),
                        help="the train pass's analyses, kept for the next run")  # fmt: skip
    parser.add_argument("--pass-conf", type=float, default=hp.pass_conf,
                        help="damage threshold of the train pass")  # fmt: skip
    parser.add_argument("--max-photos", type=int, default=hp.max_photos,
                        help="photos per outlined source")  # fmt: skip
    parser.add_argument("--side", type=int, default=hp.side, help="crop side in pixels")
    parser.add_argument("--trainable-from", type=int, default=hp.trainable_from,
                        help="first layer that learns (earlier ones stay as the damage "
                        "model's)")  # fmt: skip
    parser.add_argument("--hidden", type=int, default=hp.hidden, help="hidden layer width")
    parser.add_argument("--perceptron-epochs", type=int, default=hp.perceptron_epochs,
                        help="epochs of the perceptron alone on the frozen layers")  # fmt: skip
    parser.add_argument("--epochs", type=int, default=hp.epochs,
                        help="passes over the crops with the layers learning")  # fmt: skip
    parser.add_argument("--batch", type=int, default=hp.batch, help="crops a step")
    parser.add_argument("--lr", type=float, default=hp.lr,
                        help="learning rate of the damage model's layers")  # fmt: skip
    parser.add_argument("--head-lr", type=float, default=hp.head_lr,
                        help="learning rate of the perceptron")  # fmt: skip
    parser.add_argument("--held-out", type=float, default=hp.held_out,
                        help="share of the train photos held out to choose the epoch")  # fmt: skip
    parser.add_argument("--intact-closeups", action="store_true",
                        help="also learn from close-up windows of the intact train cars (give "
                        "the pass a --cache of its own)")  # fmt: skip
    add_fold_options(parser, hp.intact_folds)
    parser.add_argument("--seed", type=int, default=hp.seed,
                        help="seed of the photo sample and training (the photos are always "
                        "the converted re-split's train photos)")  # fmt: skip
    parser.add_argument("--zoom-look-view-below", type=float, default=None,
                        help="the pass also looks from further away at photos the gate reads "
                        "under this whole-car view probability (default: as the promoted "
                        "entry serves it)")  # fmt: skip
    parser.add_argument("--cpu-bf16", action="store_true", help=CPU_BF16_HELP)
    parser.add_argument("--threads", type=int, default=2, help="CPU threads")
    parser.add_argument("--data-root", type=Path, default=None,
                        help="data sets folder (default: $CDAT_DATA_ROOT)")  # fmt: skip
    return parser


def hyperparameters(args: argparse.Namespace) -> VerifierTuneHyperparameters:
    """The run's hyperparameters; a bad value is a TrainingError before any work."""
    if args.out.suffix != ".onnx":
        raise TrainingError(f"--out {args.out}: name an .onnx file")
    check_json_out(args.out.with_suffix(".report.json"))
    if not args.damage.is_file():
        raise TrainingError(f"--damage {args.damage}: no such checkpoint")
    if args.detector is not None and not args.detector.is_file():
        raise TrainingError(f"--detector {args.detector}: no such file")
    if not 0.0 < args.pass_conf < 1.0:
        raise TrainingError(f"--pass-conf {args.pass_conf}: need 0 < conf < 1")
    if not 32 <= args.side <= 640 or args.side % 32:
        raise TrainingError(f"--side {args.side}: a multiple of 32 from 32 to 640")
    for name in ("max_photos", "hidden", "perceptron_epochs", "epochs", "batch"):
        if getattr(args, name) < 1:
            raise TrainingError(f"--{name.replace('_', '-')} {getattr(args, name)}: at least 1")
    for name in ("lr", "head_lr"):
        if not getattr(args, name) > 0:
            raise TrainingError(f"--{name.replace('_', '-')} {getattr(args, name)}: above 0")
    if not 0 < args.held_out < 1:
        raise TrainingError(f"--held-out {args.held_out}: a share between 0 and 1")
    check_fold(args.intact_fold, args.intact_folds)
    if args.trainable_from < 0:
        raise TrainingError(f"--trainable-from {args.trainable_from}: a layer index, 0 or more")
    bar = args.zoom_look_view_below
    if bar is not None and not 0.0 < bar <= 1.0:
        raise TrainingError(f"--zoom-look-view-below {bar}: a probability above 0, at most 1")
    if args.cpu_bf16:
        check_cpu_bf16("cpu", read_cpu_features())
    return VerifierTuneHyperparameters(
        pass_conf=args.pass_conf, max_photos=args.max_photos, side=args.side,
        trainable_from=args.trainable_from, hidden=args.hidden,
        perceptron_epochs=args.perceptron_epochs, epochs=args.epochs, batch=args.batch,
        lr=args.lr, head_lr=args.head_lr, held_out=args.held_out, seed=args.seed,
        intact_closeups=args.intact_closeups, intact_fold=args.intact_fold,
        intact_folds=args.intact_folds, zoom_look_view_below=bar, cpu_bf16=args.cpu_bf16,
    )  # fmt: skip


def main(args: argparse.Namespace) -> int:
    import torch

    from inference.damage_verifier import TYPE_NAMES, extra_names
    from training.gate_net import export_onnx, onnx_parity

    hp = hyperparameters(args)
    classes = _classes(args.damage)
    if not set(classes) <= TYPE_NAMES:
        raise TrainingError(
            f"--damage {args.damage}: its classes ({', '.join(classes)}) are not all damage "
            "types; the verifier's type one-hot needs a model that names plain types"
        )
    torch.set_num_threads(max(1, args.threads))
    torch.manual_seed(hp.seed)
    started = time.perf_counter()
    photos = train_photos(hp.pass_hp(), args.data_root, args.cache.parent / "intact-closeups")
    detector = detector_of(args.detector, hp.pass_conf, hp.zoom_look_view_below)
    analyses = train_pass(photos, hp.pass_conf, args.cache, detector)
    if hp.intact_fold is not None:
        photos, _ = split_fold(photos, hp.intact_fold, hp.intact_folds)
    found, owners = examples_of(photos, analyses, classes, hp)
    held = held_out_photos(len(photos), hp.held_out, hp.seed)[owners]
    train_set, check = found.take(~held), found.take(held)
    if len(set(check.labels.tolist())) < 2:
        raise TrainingError("the held-out photos have no real or no false damage: hold out more")
    net = VerifierTuner.build(args.damage, hp, train_set)
    history: list[dict[str, Any]] = []
    best: dict[str, Any] = {}

    def on_epoch(epoch: int) -> None:
        measured = scores(probabilities(net, check), check.labels)
        history.append({"epoch": epoch, **measured})
        print(json.dumps(history[-1]), flush=True)
        if not best or measured["log_loss"] < best["log_loss"]:
            best.update(epoch=epoch, state=copy.deepcopy(net.state_dict()), **measured)

    on_epoch(0)
    train(net, train_set, hp, on_epoch)
    net.load_state_dict(best["state"])
    names = extra_names(classes)
    metadata = {"classes": ",".join(classes), "extras": ",".join(names), "side": str(hp.side),
                "description": f"CDAT damage verifier: {args.damage.name} layers "
                f"{hp.trainable_from}-{max(hp.taps)} fine-tuned, pooled at {list(hp.taps)} "
                f"with {len(names)} extras, perceptron"}  # fmt: skip
    export_onnx(net, args.out, hp.side, metadata, output="damage", extras=len(names))
    parity = onnx_parity(args.out, net, hp.side, extras=len(names))
    counts = {s: {"real": int(((found.sources == s) & (found.labels == 1)).sum()),
                  "not_damage": int(((found.sources == s) & (found.labels == 0)).sum())}
              for s in (*OUTLINED, *INTACT)}  # fmt: skip
    report = {
        "hyperparameters": asdict(hp),
        "damage": str(args.damage),
        "classes": list(classes),
        "examples": counts,
        "held_out_examples": int(held.sum()),
        "detector": "promoted" if detector.file is None else str(detector.file),
        "second_looks": list(detector.second_looks),
        "epoch": best["epoch"],
        "held_out": {"log_loss": best["log_loss"], "roc_auc": best["roc_auc"]},
        "history": history,
        "onnx_parity_max_abs": parity,
        "seconds": round(time.perf_counter() - started, 1),
        "command": "python -m training.verifier_tune " + " ".join(map(shlex.quote, sys.argv[1:])),
    }
    args.out.with_suffix(".report.json").write_text(json.dumps(report, indent=1) + "\n")
    print(json.dumps({k: report[k] for k in ("examples", "epoch", "held_out", "seconds")}))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    run_script(main, get_args_parser())
