"""Train the severity stage (inference/severity.py) on a converted damage data set.

Every labelled damage whose severity is known (the converter's `severity/` sidecar) gives
one example: features of its polygon on its photo, and its severity. A multinomial
logistic regression is fitted on the train split; its class weighting and L2 strength are
chosen on the val split only (never on test), then it is refitted and saved as JSON.

    python -m training.convert --config datasets/damage.yaml --out runs/data/damage
    python -m training.severity --data runs/data/damage/data.yaml --out runs/severity/severity.json

With `--graded CONFIG` (`datasets/damaged-parts.yaml`), the outlines of a set that grades
whole photos (`training.closeup.photo_grade`) are examples too, each taking its photo's grade:
close-ups, where a damage fills the frame whatever its grade. An outline whose type the set
does not name (a panel) is an example for each panel type the detector may call it (dent,
scratch, broken part). Each set's own val split is then scored, and the class weighting and
L2 are chosen by the mean of their balanced accuracies::

    python -m training.severity --data runs/data/damage/data.yaml \
        --graded datasets/damaged-parts.yaml --out runs/severity/severity-graded.json

With `--closeup-views`, each train damage is also learnt as a close-up shows it (a crop of
its photo that the damage fills 0.3-0.9 of), with its own labelled severity::

    python -m training.severity --data runs/data/damage/data.yaml --closeup-views \
        --train-only --out runs/severity/closeup-views.json

The stage alone, on every labelled outline of a split (the detector's misses do not shrink
the count, so this is the figure on all of test's damages, not only the ones it finds)::

    python -m training.severity --data runs/data/damage/data.yaml --split test \
        --evaluate inference/models/damage-type-seg-n-20261127.severity.json \
        --out runs/severity/test-outlines.json
"""

from __future__ import annotations

import argparse
import itertools
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from inference.severity import SEVERITIES, SeverityModel
from training.errors import TrainingError, run_script
from training.severity_examples import (
    Examples,
    collect,
    collect_graded,
    joined,
)


@dataclass
class SeverityHyperparameters:
    class_weight_powers: tuple[float, ...] = (0.0, 0.25, 0.5, 0.75)
    """Candidate powers p for class weights (1 / frequency) ** p, chosen on val."""
    l2_strengths: tuple[float, ...] = (1e-3, 1e-2, 1e-1)
    """Candidate L2 penalties, chosen on val."""
    steps: int = 1500
    learning_rate: float = 0.5
    graded_weights: tuple[float, ...] = ()
    """Candidate weights of all graded examples together, as a multiple of the --data
    train examples' count (--graded-weights), chosen on val; none: each graded example
    weighs as much as one of --data's."""


def fit(
    examples: Examples, power: float, l2: float, hp: SeverityHyperparameters, source: str = ""
) -> SeverityModel:
    x, y = examples.features, examples.labels
    mean, scale = x.mean(0), x.std(0)
    scale[scale < 1e-9] = 1.0
    xs = np.hstack([(x - mean) / scale, np.ones((len(x), 1))])
    w = examples.example_weights
    counts = np.bincount(y, weights=w, minlength=len(SEVERITIES)).astype(float)
    class_weight = np.where(counts > 0, (counts.sum() / np.maximum(counts, 1e-9)) ** power, 0.0)
    sample_weight = class_weight[y] * w
    sample_weight = sample_weight / sample_weight.mean()
    onehot = np.eye(len(SEVERITIES))[y]
    weights = np.zeros((xs.shape[1], len(SEVERITIES)))
    for _ in range(hp.steps):
        logits = xs @ weights
        logits -= logits.max(1, keepdims=True)
        p = np.exp(logits)
        p /= p.sum(1, keepdims=True)
        grad = xs.T @ ((p - onehot) * sample_weight[:, None]) / len(xs)
        grad[:-1] += l2 * weights[:-1]
        weights -= hp.learning_rate * grad
    return SeverityModel(mean.tolist(), scale.tolist(), weights.tolist(), trained_on=source)


def scores(model: SeverityModel, examples: Examples) -> dict[str, float]:
    predicted = model.probabilities(examples.features).argmax(1)
    return severity_scores(examples.labels, predicted)


def severity_scores(truth: np.ndarray, predicted: np.ndarray) -> dict[str, float]:
    """Accuracy, balanced accuracy (mean recall over the severities present) and count."""
    recalls = [float((predicted[truth == k] == k).mean()) for k in np.unique(truth)]
    return {
        "accuracy": float((predicted == truth).mean()) if len(truth) else 0.0,
        "balanced_accuracy": float(np.mean(recalls)) if recalls else 0.0,
        "count": float(len(truth)),
    }


def outline_report(model: SeverityModel, examples: Examples) -> dict[str, Any]:
    """Scores, each severity's recall with its count, and the confusion (rows: labelled)."""
    predicted = model.probabilities(examples.features).argmax(1)
    per_severity = {
        severity.value: {
            "labelled": int((examples.labels == k).sum()),
            "recall": float((predicted[examples.labels == k] == k).mean())
            if (examples.labels == k).any()
            else None,
        }
        for k, severity in enumerate(SEVERITIES)
    }
    confusion = np.zeros((len(SEVERITIES), len(SEVERITIES)), int)
    np.add.at(confusion, (examples.labels, predicted), 1)
    return {
        **severity_scores(examples.labels, predicted),
        "per_severity": per_severity,
        "confusion": confusion.tolist(),
        "order": [s.value for s in SEVERITIES],
    }


@dataclass(frozen=True)
class Graded:
    """The graded sets' examples (`--graded`), by config, in train and val."""

    train: dict[str, Examples]
    val: dict[str, Examples]
    keep_balanced: float | None = None
    """Only fits whose --data val balanced accuracy is at least this are chosen from."""


def with_graded(
    data: Examples, graded: Examples | None, weight: float | None
) -> Examples:  # fmt: skip
    """`data` and the `graded` examples, these weighing `weight` times `data`'s count
    together (None: one each, as much as one of `data`'s)."""
    if graded is None:
        return data
    share = graded if weight is None else graded.weighted(weight * len(data))
    return joined([data, share])


def select_and_fit(
    train: Examples, val: Examples, hp: SeverityHyperparameters, source: str,
    graded: Graded | None = None, refit: bool = True,
) -> tuple[SeverityModel, dict]:  # fmt: skip
    """The (power, l2) whose val accuracy + balanced accuracy is best, refitted on train+val.
    With `graded` sets, also their weight (`hp.graded_weights`), and the fit whose balanced
    accuracies, val's and each graded set's, have the best mean; with `keep_balanced`, of
    the fits that keep val's balanced accuracy to it, the best graded sets' mean. Without
    `refit`, the chosen fit itself (train alone), to be measured on val by another stage."""
    graded_train = joined(list(graded.train.values())) if graded else None
    weights: tuple[float | None, ...] = (hp.graded_weights or (None,)) if graded else (None,)
    trials = []
    for weight, power, l2 in itertools.product(weights, hp.class_weight_powers, hp.l2_strengths):
        model = fit(with_graded(train, graded_train, weight), power, l2, hp)
        trial: dict[str, Any] = {"power": power, "l2": l2, **scores(model, val)}
        if graded:
            trial["graded_weight"] = weight
            trial |= {name: scores(model, examples) for name, examples in graded.val.items()}
        trials.append(trial)
    eligible = [t for t in trials if eligible_trial(t, graded)]
    if not eligible:  # only a --keep-balanced bound leaves none
        bound = graded.keep_balanced if graded else None
        raise TrainingError(f"no fit keeps the val balanced accuracy at {bound}")
    best = max(eligible, key=lambda t: choice_score(t, graded))
    weight = best.get("graded_weight")
    if not refit:
        examples = with_graded(train, graded_train, weight)
        model = fit(examples, best["power"], best["l2"], hp, source + " (train alone)")
        return model, {"chosen": best, "trials": trials}
    graded_all = joined([*graded.train.values(), *graded.val.values()]) if graded else None
    examples = with_graded(joined([train, val]), graded_all, weight)
    return fit(examples, best["power"], best["l2"], hp, source), {"chosen": best, "trials": trials}


def eligible_trial(trial: dict[str, Any], graded: Graded | None) -> bool:
    if graded is None or graded.keep_balanced is None:
        return True
    return bool(trial["balanced_accuracy"] >= graded.keep_balanced)


def choice_score(trial: dict[str, Any], graded: Graded | None) -> float:
    if graded is None:
        return float(trial["accuracy"] + trial["balanced_accuracy"])
    on_graded = [trial[n]["balanced_accuracy"] for n in graded.val]
    if graded.keep_balanced is not None:
        return float(np.mean(on_graded))
    return float(np.mean([trial["balanced_accuracy"], *on_graded]))


def get_args_parser(add_help: bool = True) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0], add_help=add_help)
    parser.add_argument(
        "--data", type=Path, required=True, help="data.yaml of a converted damage data set"
    )
    parser.add_argument(
        "--out",
        type=Path,
        required=True,
        help="where to write the model JSON (with --evaluate: the report JSON)",
    )
    parser.add_argument(
        "--evaluate",
        type=Path,
        default=None,
        help="score this severity model JSON on --split's labelled outlines; trains nothing",
    )
    parser.add_argument(
        "--split",
        choices=("train", "val", "test"),
        default=None,
        help="the split --evaluate scores (default: test)",
    )
    parser.add_argument(
        "--steps", type=int, default=SeverityHyperparameters.steps, help="gradient steps per fit"
    )
    parser.add_argument(
        "--graded",
        type=Path,
        action="append",
        default=[],
        metavar="CONFIG",
        help="a data set config whose photos carry a grade (datasets/damaged-parts.yaml): its "
        "train outlines are examples at their photo's grade, its val split is scored too "
        "(and with --evaluate); repeat for more",
    )
    parser.add_argument(
        "--graded-weights",
        type=float,
        nargs="+",
        default=None,
        help="with --graded: what all graded train examples together weigh, as a multiple "
        "of --data's train examples, each candidate fitted and chosen on val (default: each "
        "graded example weighs as much as one of --data's)",
    )
    parser.add_argument(
        "--train-only",
        action="store_true",
        help="save the chosen fit on train alone, not refitted on train and val (so another "
        "measurement on val is out of sample)",
    )
    parser.add_argument(
        "--keep-balanced",
        type=float,
        default=None,
        help="with --graded: choose only among fits whose --data val balanced accuracy is at "
        "least this, the one best on the graded sets' val (default: the best mean of all)",
    )
    parser.add_argument(
        "--closeup-views",
        action="store_true",
        help="also learn each --data train damage as a close-up shows it: a crop of its photo "
        "the damage takes 0.3-0.9 of (training.severity_examples.closeup_view); val as is",
    )
    return parser


def main(args: argparse.Namespace) -> int:
    if args.steps < 1:
        raise TrainingError("--steps must be at least 1")
    if (args.graded_weights or args.keep_balanced is not None) and not args.graded:
        raise TrainingError("--graded-weights and --keep-balanced need --graded")
    if args.graded_weights and min(args.graded_weights) <= 0:
        raise TrainingError("--graded-weights: each weight must be above 0")
    if args.evaluate is not None:
        if args.closeup_views:
            raise TrainingError("--closeup-views is for training; --evaluate scores outlines as is")
        return evaluate(args)
    if args.split is not None:
        raise TrainingError("--split chooses what --evaluate scores; training reads train and val")
    hp = SeverityHyperparameters(steps=args.steps)
    check_graded(args.graded)
    if args.graded_weights:
        hp.graded_weights = tuple(args.graded_weights)
    train, val = collect(args.data, "train", args.closeup_views), collect(args.data, "val")
    graded = None
    if args.graded:
        graded = Graded(
            {str(c): collect_graded(c, "train") for c in args.graded},
            {str(c): collect_graded(c, "val") for c in args.graded},
            args.keep_balanced,
        )
    views = " (and its damages seen close up)" if args.closeup_views else ""
    source = " + ".join([f"{args.data}{views}", *map(str, args.graded)])
    model, selection = select_and_fit(train, val, hp, source, graded, not args.train_only)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    model.save(args.out)
    report = {"train": len(train), "val": len(val), **selection}
    if graded:
        report["graded"] = {n: [len(graded.train[n]), len(graded.val[n])] for n in graded.train}
    args.out.with_suffix(".report.json").write_text(json.dumps(report, indent=1) + "\n")
    chosen = selection["chosen"]
    print(
        f"severity stage: {len(train)} train / {len(val)} val damages; chosen power "
        f"{chosen['power']}, l2 {chosen['l2']}: val accuracy {chosen['accuracy']:.3f}, "
        f"balanced {chosen['balanced_accuracy']:.3f}"
    )
    if graded is not None:
        for name in graded.val:
            print(
                f"  {name}: {len(graded.train[name])} train / {len(graded.val[name])} val graded "
                f"examples, weight {chosen['graded_weight']}; val balanced "
                f"{chosen[name]['balanced_accuracy']:.3f}"
            )
    print(f"wrote {args.out}")
    return 0


def evaluate(args: argparse.Namespace) -> int:
    model = SeverityModel.load(args.evaluate)
    split = args.split or "test"
    check_graded(args.graded)
    report = {
        "model": str(args.evaluate),
        "split": split,
        **outline_report(model, collect(args.data, split)),
        "graded": {str(c): outline_report(model, collect_graded(c, split)) for c in args.graded},
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1) + "\n")
    print(
        f"severity stage on {int(report['count'])} labelled {split} outlines: accuracy "
        f"{report['accuracy']:.3f}, balanced {report['balanced_accuracy']:.3f}"
    )
    for name, graded in report["graded"].items():
        print(
            f"  {name}, {int(graded['count'])} graded {split} outlines: accuracy "
            f"{graded['accuracy']:.3f}, balanced {graded['balanced_accuracy']:.3f}"
        )
    print(f"wrote {args.out}")
    return 0


def check_graded(configs: list[Path]) -> None:
    for config in configs:
        if not config.is_file():
            raise TrainingError(f"--graded {config}: no such data set config")


if __name__ == "__main__":
    run_script(main, get_args_parser())
