"""Train the severity stage (inference/severity.py) on a converted damage data set.

Every labelled damage whose severity is known (the converter's `severity/` sidecar) gives
one example: features of its polygon on its photo, and its severity. A multinomial
logistic regression is fitted on the train split; its class weighting and L2 strength are
chosen on the val split only (never on test), then it is refitted and saved as JSON.

    python -m training.convert --config datasets/damage.yaml --out runs/data/damage
    python -m training.severity --data runs/data/damage/data.yaml --out runs/severity/severity.json

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
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from cdat.taxonomy import DamageType, Severity
from inference.severity import SEVERITIES, SeverityModel, severity_features
from training.dataconfig import DAMAGE_TYPE_NAMES
from training.errors import TrainingError, run_script


@dataclass
class SeverityHyperparameters:
    class_weight_powers: tuple[float, ...] = (0.0, 0.25, 0.5, 0.75)
    """Candidate powers p for class weights (1 / frequency) ** p, chosen on val."""
    l2_strengths: tuple[float, ...] = (1e-3, 1e-2, 1e-1)
    """Candidate L2 penalties, chosen on val."""
    steps: int = 1500
    learning_rate: float = 0.5


@dataclass(frozen=True)
class Examples:
    features: np.ndarray
    labels: np.ndarray
    """Index into SEVERITIES."""

    def __len__(self) -> int:
        return len(self.labels)


LabelledDamage = tuple[np.ndarray, np.ndarray, str, str]


def labelled_damages(data_yaml: Path, split: str) -> Iterator[LabelledDamage]:
    """(photo BGR, mask, damage type, severity) of every labelled damage with a severity."""
    import cv2

    if not data_yaml.is_file():
        raise TrainingError(f"--data {data_yaml}: no such data.yaml (cdat convert writes one)")
    data = yaml.safe_load(data_yaml.read_text())
    names = [str(n) for n in data["names"].values()]
    images = Path(data["path"]) / data[split]
    if not images.is_dir():
        raise TrainingError(f"{data_yaml}: split '{split}' has no images folder {images}")
    for image_path in sorted(images.iterdir()):
        label = images.parent.parent / "labels" / split / f"{image_path.stem}.txt"
        sidecar = images.parent.parent / "severity" / split / f"{image_path.stem}.txt"
        if not (label.exists() and sidecar.exists()):
            continue
        rows, severities = label.read_text().splitlines(), sidecar.read_text().splitlines()
        if not any(s in Severity._value2member_map_ for s in severities):
            continue
        image = cv2.imread(str(image_path))
        if image is None:
            raise TrainingError(f"cannot read {image_path}")
        height, width = image.shape[:2]
        for row, severity in zip(rows, severities, strict=True):
            if severity not in Severity._value2member_map_:
                continue
            values = row.split()
            points = np.array(values[1:], np.float64).reshape(-1, 2) * [width, height]
            mask = np.zeros((height, width), np.uint8)
            cv2.fillPoly(mask, [np.round(points).astype(np.int32)], 1)
            yield image, mask.astype(bool), names[int(values[0])].rpartition("-")[2], severity


def collect(data_yaml: Path, split: str) -> Examples:
    rows, labels = [], []
    for image, mask, type_name, severity in labelled_damages(data_yaml, split):
        if type_name not in DAMAGE_TYPE_NAMES:
            raise TrainingError(f"{data_yaml}: unknown damage type {type_name!r}")
        rows.append(severity_features(image, mask, DamageType(type_name)))
        labels.append(SEVERITIES.index(Severity(severity)))
    if not rows:
        raise TrainingError(f"{data_yaml}: no labelled severities in split '{split}'")
    return Examples(np.vstack(rows), np.asarray(labels))


def fit(
    examples: Examples, power: float, l2: float, hp: SeverityHyperparameters, source: str = ""
) -> SeverityModel:
    x, y = examples.features, examples.labels
    mean, scale = x.mean(0), x.std(0)
    scale[scale < 1e-9] = 1.0
    xs = np.hstack([(x - mean) / scale, np.ones((len(x), 1))])
    counts = np.bincount(y, minlength=len(SEVERITIES)).astype(float)
    class_weight = np.where(counts > 0, (counts.sum() / np.maximum(counts, 1)) ** power, 0.0)
    sample_weight = class_weight[y] / class_weight[y].mean()
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


def select_and_fit(
    train: Examples, val: Examples, hp: SeverityHyperparameters, source: str
) -> tuple[SeverityModel, dict]:
    """The (power, l2) whose val accuracy + balanced accuracy is best, refitted on train+val."""
    trials = []
    for power, l2 in itertools.product(hp.class_weight_powers, hp.l2_strengths):
        result = scores(fit(train, power, l2, hp), val)
        trials.append({"power": power, "l2": l2, **result})
    best = max(trials, key=lambda t: t["accuracy"] + t["balanced_accuracy"])
    both = Examples(
        np.vstack([train.features, val.features]), np.hstack([train.labels, val.labels])
    )
    return fit(both, best["power"], best["l2"], hp, source), {"chosen": best, "trials": trials}


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
    return parser


def main(args: argparse.Namespace) -> int:
    if args.steps < 1:
        raise TrainingError("--steps must be at least 1")
    if args.evaluate is not None:
        return evaluate(args)
    if args.split is not None:
        raise TrainingError("--split chooses what --evaluate scores; training reads train and val")
    hp = SeverityHyperparameters(steps=args.steps)
    train, val = collect(args.data, "train"), collect(args.data, "val")
    model, selection = select_and_fit(train, val, hp, str(args.data))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    model.save(args.out)
    report = {"train": len(train), "val": len(val), **selection}
    args.out.with_suffix(".report.json").write_text(json.dumps(report, indent=1) + "\n")
    chosen = selection["chosen"]
    print(
        f"severity stage: {len(train)} train / {len(val)} val damages; chosen power "
        f"{chosen['power']}, l2 {chosen['l2']}: val accuracy {chosen['accuracy']:.3f}, "
        f"balanced {chosen['balanced_accuracy']:.3f}"
    )
    print(f"wrote {args.out}")
    return 0


def evaluate(args: argparse.Namespace) -> int:
    model = SeverityModel.load(args.evaluate)
    split = args.split or "test"
    report = {
        "model": str(args.evaluate),
        "split": split,
        **outline_report(model, collect(args.data, split)),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1) + "\n")
    print(
        f"severity stage on {int(report['count'])} labelled {split} outlines: accuracy "
        f"{report['accuracy']:.3f}, balanced {report['balanced_accuracy']:.3f}"
    )
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    run_script(main, get_args_parser())
