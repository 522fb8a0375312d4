"""Fit the close-up severity head on the damage model's own layers (inference/layer_severity.py).

Every labelled damage of the converted damage set (its severity sidecar) and every outline of
each graded set (`--graded`: a photo's grade on each of its outlines, once per panel type the
detector may call an untyped one, as `training.severity --graded` makes them) gives one
example: the damage model's tapped layers averaged under its box, from one run of the model
on its photo. A class-balanced softmax head is fitted on train for each L2 given; the one
with the best mean balanced accuracy over the graded sets' val outlines is kept (the stage
reads close-ups only), refitted on train and val unless `--train-only`, and saved as JSON
with the checksum of the damage model it reads::

    python -m training.convert --config datasets/damage.yaml --out runs/data/damage
    python -m training.severity_head --data runs/data/damage/data.yaml \
        --graded datasets/damaged-parts.yaml --graded datasets/car-parts-damage.yaml \
        --train-only --out runs/severity/closeup-layer-head.json

Register it as a damage entry's close-up stage (`cdat models register --closeup-severity`).
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from cdat.findings import Box
from cdat.taxonomy import DamageType, Severity
from inference.layer_severity import (
    DEFAULT_TAPS,
    LayerSeverityHead,
    TappedRuntime,
    pooled_under,
)
from inference.registry import sha256_of
from inference.severity import SEVERITIES, severity_features
from training.errors import TrainingError, run_script
from training.severity_examples import LabelledDamage, graded_damages, labelled_damages

DEFAULT_DAMAGE = Path(__file__).resolve().parent.parent / (
    "inference/models/damage-claims-seg-n-20261201.onnx"
)


@dataclass
class SeverityHeadHyperparameters:
    taps: tuple[int, ...] = DEFAULT_TAPS
    """The damage model's layers read under each box (its neck's three scales)."""
    l2_strengths: tuple[float, ...] = (0.001,)
    """Candidate L2 penalties, chosen on the graded sets' val outlines."""


@dataclass(frozen=True)
class Trial:
    l2: float
    val_balanced_accuracy: dict[str, float]
    graded_mean: float
    """The mean over the graded sets' val: what the L2 is chosen by."""


@dataclass(frozen=True)
class LayerExamples:
    features: np.ndarray
    labels: np.ndarray
    """Index into SEVERITIES."""


def box_of(mask: np.ndarray) -> Box:
    rows, cols = np.nonzero(mask)
    return Box(float(cols.min()), float(rows.min()), float(cols.max() + 1), float(rows.max() + 1))


def layer_examples(
    runtime: TappedRuntime, damages: Iterable[LabelledDamage], hand_features: bool = False
) -> LayerExamples:
    """The layers under each damage's box (with `hand_features`, then the severity stage's
    own features of its mask), the model run once per photo (the generators yield one
    photo's damages one after another, on the same array)."""
    rows, labels = [], []
    last: np.ndarray | None = None  # held, so a new photo cannot reuse its address
    layers = None
    for image, mask, type_name, severity in damages:
        if image is not last:
            (raw,) = runtime.infer([image])
            last, layers = image, raw.layers
        if layers is None or not mask.any():
            continue
        row = pooled_under(layers, box_of(mask))
        if hand_features:
            row = np.concatenate([row, severity_features(image, mask, DamageType(type_name))])
        rows.append(row)
        labels.append(SEVERITIES.index(Severity(severity)))
    if not rows:
        raise TrainingError("no labelled damage to learn severity from")
    return LayerExamples(np.vstack(rows), np.asarray(labels))


def joined(sets: list[LayerExamples]) -> LayerExamples:
    return LayerExamples(np.vstack([s.features for s in sets]), np.hstack([s.labels for s in sets]))


def balanced_accuracy(head: LayerSeverityHead, examples: LayerExamples) -> float:
    from training.severity import severity_scores

    guessed = head.probabilities(examples.features).argmax(1)
    return float(severity_scores(examples.labels, guessed)["balanced_accuracy"])


def fitted(
    examples: LayerExamples,
    l2: float,
    taps: tuple[int, ...],
    backbone: str,
    source: str,
    hand_features: bool = False,
) -> LayerSeverityHead:
    from training.softmax_head import fit_head

    head = fit_head(examples.features, examples.labels, len(SEVERITIES), l2)
    weights = np.vstack([head.weights, head.bias[None]])
    return LayerSeverityHead(
        taps, head.mean.tolist(), head.scale.tolist(), weights.tolist(), backbone, source,
        hand_features,
    )  # fmt: skip


def get_args_parser(add_help: bool = True) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description="Fit the close-up severity head on the damage model's layers",
        add_help=add_help,
    )
    parser.add_argument("--data", type=Path, required=True,
                        help="data.yaml of a converted damage set with a severity sidecar "
                        "(python -m training.convert --config datasets/damage.yaml)")  # fmt: skip
    parser.add_argument("--graded", type=Path, action="append", default=[], metavar="CONFIG",
                        help="a data set config whose photos carry a grade "
                        "(datasets/damaged-parts.yaml); repeat for more; at least one")  # fmt: skip
    parser.add_argument("--damage", type=Path, default=DEFAULT_DAMAGE,
                        help="the damage model (.onnx) whose layers the head reads")  # fmt: skip
    parser.add_argument("--taps", type=int, nargs="+", default=list(DEFAULT_TAPS),
                        help="the model's layers read under each box")  # fmt: skip
    parser.add_argument("--l2", type=float, nargs="+", default=None,
                        help="candidate L2 penalties, chosen on the graded sets' val "
                        f"(default {SeverityHeadHyperparameters.l2_strengths})")  # fmt: skip
    parser.add_argument("--hand-features", action="store_true",
                        help="the head also reads the severity stage's own features of each "
                        "damage's mask (inference/severity.py)")  # fmt: skip
    parser.add_argument("--train-only", action="store_true",
                        help="save the head fitted on train alone (default: refitted on "
                        "train and val once chosen)")  # fmt: skip
    parser.add_argument("--out", type=Path, required=True, help="the head's JSON")
    return parser


def main(args: argparse.Namespace) -> int:
    if not args.graded:
        raise TrainingError("--graded: name at least one graded set (the head reads close-ups)")
    for config in [args.data, args.damage, *args.graded]:
        if not config.is_file():
            raise TrainingError(f"no such file: {config}")
    hp = SeverityHeadHyperparameters(taps=tuple(args.taps))
    if args.l2:
        if min(args.l2) <= 0:
            raise TrainingError("--l2: each penalty must be above 0")
        hp.l2_strengths = tuple(args.l2)
    runtime = TappedRuntime.of(args.damage, hp.taps, None, threads=2)
    hand = bool(args.hand_features)
    splits = {
        split: {
            "data": layer_examples(runtime, labelled_damages(args.data, split), hand),
            **{
                str(c): layer_examples(runtime, graded_damages(c, split), hand) for c in args.graded
            },
        }
        for split in ("train", "val")
    }
    backbone = sha256_of(args.damage)
    source = " + ".join([str(args.data), *map(str, args.graded)])
    train = joined(list(splits["train"].values()))
    trials: list[Trial] = []
    for l2 in hp.l2_strengths:
        head = fitted(train, l2, hp.taps, backbone, source, hand)
        scores = {name: balanced_accuracy(head, ex) for name, ex in splits["val"].items()}
        graded_mean = float(np.mean([scores[str(c)] for c in args.graded]))
        trials.append(Trial(l2, scores, graded_mean))
    chosen = max(trials, key=lambda t: t.graded_mean)
    final = train if args.train_only else joined([train, *splits["val"].values()])
    head = fitted(final, chosen.l2, hp.taps, backbone, source, hand)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    head.save(args.out)
    report = {
        "examples": {s: {n: len(e.labels) for n, e in sets.items()} for s, sets in splits.items()},
        "taps": list(hp.taps),
        "trials": [asdict(t) for t in trials],
        "chosen": asdict(chosen),
        "train_only": args.train_only,
    }
    args.out.with_suffix(".report.json").write_text(json.dumps(report, indent=1) + "\n")
    chosen_scores = ", ".join(f"{n} {v:.3f}" for n, v in chosen.val_balanced_accuracy.items())
    print(f"severity head on layers {list(hp.taps)}: chosen L2 {chosen.l2}; val {chosen_scores}")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    run_script(main, get_args_parser())
