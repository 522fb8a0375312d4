"""Would a severity head on the damage model's own layers read severity better than the
hand-made features of the served stage (inference/severity.py)? Measured alone, on val.

Each labelled outline's crop, as serving crops a damage (`inference.crops.damage_crop`), is
pooled by the served damage model's layers at the verifier's taps, and a class-balanced
softmax head over the three severities (`training.part_family.fit_head`) is fitted on
damage-severity's train outlines (their labelled severities, from a converted data set) and
damaged-parts' train outlines at their photo's grade (`training.closeup.photo_grade`). Its
L2 is chosen on the mean of the two sets' val balanced accuracies; test is not read. With
`--hand-features` the head also reads the served stage's own features of each outline
(`inference.severity.severity_features`, which carry how much of the photo it covers); an
outline whose type the set does not name is then one example per panel type, as
`training.severity --graded` makes them.

    python -m training.convert --config datasets/damage.yaml --out runs/data/damage
    CDAT_DATA_ROOT=../shared/datasets .venv/bin/python bench/bench_severity_head.py
    CDAT_DATA_ROOT=../shared/datasets .venv/bin/python bench/bench_severity_head.py \
        --hand-features --output bench/results/severity_head_hand.json

    CDAT_DATA_ROOT=../shared/datasets .venv/bin/python bench/bench_severity_head.py \
        --combine-with runs/severity/graded-trainonly.json \
        --output bench/results/severity_head_combined.json

`--combine-with` mixes the crop head's log-probabilities with those of a hand-feature stage
fitted on train alone (`python -m training.severity --data runs/data/damage/data.yaml
--graded datasets/damaged-parts.yaml --graded-weights 1 --keep-balanced 0.747 --train-only
--out runs/severity/graded-trainonly.json`), the head's share chosen on val with its L2.

Prints a summary and writes bench/results/severity_head.json.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np

from cdat.findings import Box
from cdat.taxonomy import DamageType, Severity
from inference.severity import SEVERITIES, SeverityModel

RESULTS = Path(__file__).resolve().parent / "results" / "severity_head.json"
DAMAGED_PARTS = Path(__file__).resolve().parent.parent / "datasets" / "damaged-parts.yaml"


@dataclass(frozen=True)
class Outline:
    image: Path
    box: Box
    """Photo pixels."""
    severity: int
    """Index into SEVERITIES."""
    polygon: np.ndarray
    """(N, 2) photo pixels."""
    types: tuple[DamageType, ...]
    """Its labelled type, or each panel type the detector may call an untyped outline."""


def box_of(points: np.ndarray) -> Box:
    (x1, y1), (x2, y2) = points.min(0), points.max(0)
    return Box(float(x1), float(y1), float(x2), float(y2))


def converted_outlines(data_yaml: Path, split: str) -> list[Outline]:
    """damage-severity's labelled outlines with a severity, from a converted data set."""
    import cv2
    import yaml

    data = yaml.safe_load(data_yaml.read_text())
    names = [str(n) for n in data["names"].values()]
    images = Path(data["path"]) / data[split]
    out = []
    for image_path in sorted(images.iterdir()):
        if not image_path.name.startswith("damage-severity__"):
            continue
        label = images.parent.parent / "labels" / split / f"{image_path.stem}.txt"
        sidecar = images.parent.parent / "severity" / split / f"{image_path.stem}.txt"
        if not (label.exists() and sidecar.exists()):
            continue
        shape = cv2.imread(str(image_path)).shape
        height, width = shape[:2]
        rows, severities = label.read_text().splitlines(), sidecar.read_text().splitlines()
        for row, severity in zip(rows, severities, strict=True):
            if severity not in Severity._value2member_map_:
                continue
            kind = DamageType(names[int(row.split()[0])].rpartition("-")[2])
            points = np.array(row.split()[1:], np.float64).reshape(-1, 2) * [width, height]
            index = SEVERITIES.index(Severity(severity))
            out.append(Outline(image_path, box_of(points), index, points, (kind,)))
    return out


def graded_outlines(config: Path, split: str) -> list[Outline]:
    """A graded set's outlines (damaged-parts', car-parts-damage's), each at its photo's
    grade (`training.closeup.photo_grader`)."""
    import cv2

    from training.closeup import held_out_photos, photo_grader
    from training.dataconfig import load_dataset_config
    from training.severity_examples import PANEL_TYPES

    classes = load_dataset_config(config).classes
    grade_of = photo_grader(config)
    out = []
    for image_path, instances in held_out_photos(config, split, 0):
        grade = grade_of(image_path)
        if grade is None or not instances:
            continue
        height, width = cv2.imread(str(image_path)).shape[:2]
        for name, polygon in instances:
            points = np.asarray(polygon, np.float64).reshape(-1, 2) * [width, height]
            named = classes.get(name)
            kinds = (DamageType(named),) if named else PANEL_TYPES
            if len(points) >= 3:
                out.append(
                    Outline(image_path, box_of(points), SEVERITIES.index(grade), points, kinds)
                )
    return out


def features(net: Any, outlines: list[Outline], side: int) -> np.ndarray:
    """Pooled layers of each outline's crop, a batch at a time."""
    from inference.crops import damage_crop
    from training.part_family import pooled
    from training.vehicle_gate import read_photo

    batches = []
    cache: dict[Path, np.ndarray] = {}
    for start in range(0, len(outlines), 32):
        crops = []
        for item in outlines[start : start + 32]:
            if item.image not in cache:
                cache.clear()
                cache[item.image] = read_photo(item.image)
            crops.append(damage_crop(cache[item.image], item.box, side))
        batches.append(pooled(net, crops))
    return np.concatenate(batches)


def with_hand_features(
    outlines: list[Outline], pooled: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """One row per (outline, type): its pooled crop beside the served stage's features."""
    import cv2

    from inference.severity import severity_features
    from training.vehicle_gate import read_photo

    rows, labels = [], []
    photo, path = None, None
    for k, item in enumerate(outlines):
        if item.image != path:
            photo, path = read_photo(item.image), item.image
        assert photo is not None
        mask = np.zeros(photo.shape[:2], np.uint8)
        cv2.fillPoly(mask, [np.round(item.polygon).astype(np.int32)], 1)
        for kind in item.types:
            rows.append(np.concatenate([pooled[k], severity_features(photo, mask > 0, kind)]))
            labels.append(item.severity)
    return np.vstack(rows), np.asarray(labels)


def balanced(truth: np.ndarray, guess: np.ndarray) -> float:
    """Balanced accuracy as the severity stage is scored (`training.severity`)."""
    from training.severity import severity_scores

    return severity_scores(truth, guess)["balanced_accuracy"]


def get_args_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=Path("runs/data/damage/data.yaml"),
                        help="data.yaml of the converted datasets/damage.yaml")  # fmt: skip
    parser.add_argument("--damage", type=Path, default=None,
                        help="the damage model's .pt (default: the served one)")  # fmt: skip
    parser.add_argument("--side", type=int, default=160, help="crop side in pixels")
    parser.add_argument("--l2", type=float, nargs="+", default=[0.001, 0.01, 0.1],
                        help="L2 strengths to choose from on val")  # fmt: skip
    parser.add_argument("--hand-features", action="store_true",
                        help="the head also reads the served stage's own features")  # fmt: skip
    parser.add_argument("--combine-with", type=Path, default=None,
                        help="a hand-feature severity stage (.json, fitted on train alone: "
                        "training.severity --train-only) whose log-probabilities are mixed "
                        "with the crop head's")  # fmt: skip
    parser.add_argument("--alphas", type=float, nargs="+", default=[0.25, 0.5, 0.75],
                        help="with --combine-with: the crop head's shares to try")  # fmt: skip
    parser.add_argument("--graded", type=Path, action="append", default=[], metavar="CONFIG",
                        help="a graded set's config, repeated for more (default: "
                        "datasets/damaged-parts.yaml)")  # fmt: skip
    parser.add_argument("--output", type=Path, default=RESULTS, help="JSON written here")
    return parser


def main(args: argparse.Namespace) -> int:
    import torch

    from training.damage_verifier import DEFAULT_DAMAGE, VerifierHyperparameters
    from training.gate_net import load_gate_net
    from training.softmax_head import fit_head

    if not args.data.is_file():
        print(f"error: --data {args.data}: run training.convert first", file=sys.stderr)
        return 2
    if args.combine_with and not args.combine_with.is_file():
        print(f"error: --combine-with {args.combine_with}: no such stage", file=sys.stderr)
        return 2
    torch.set_num_threads(2)
    taps = VerifierHyperparameters().taps
    net = load_gate_net(args.damage or DEFAULT_DAMAGE, taps)
    sets = {
        "damage-severity": {s: converted_outlines(args.data, s) for s in ("train", "val")},
        **{
            config.stem: {s: graded_outlines(config, s) for s in ("train", "val")}
            for config in args.graded or [DAMAGED_PARTS]
        },
    }
    x = {name: {s: features(net, o, args.side) for s, o in split.items()}
         for name, split in sets.items()}  # fmt: skip
    y = {name: {s: np.array([o.severity for o in outlines]) for s, outlines in split.items()}
         for name, split in sets.items()}  # fmt: skip
    width = next(iter(x.values()))["train"].shape[1]
    if args.hand_features or args.combine_with:
        for name, split in sets.items():
            for s, outlines in split.items():
                x[name][s], y[name][s] = with_hand_features(outlines, x[name][s])
    stage_log_p: dict[str, np.ndarray] = {}
    if args.combine_with:  # the head reads the crop alone; the stage, the hand features
        stage = SeverityModel.load(args.combine_with)
        stage_log_p = {n: np.log(stage.probabilities(x[n]["val"][:, width:]) + 1e-9)
                       for n in sets}  # fmt: skip
        x = {n: {s: rows[:, :width] for s, rows in split.items()} for n, split in x.items()}
    x_train = np.vstack([x[n]["train"] for n in sets])
    y_train = np.hstack([y[n]["train"] for n in sets])
    trials = []
    for l2 in args.l2:
        head = fit_head(x_train, y_train, len(SEVERITIES), l2)
        head_log_p = {n: np.log(head.probabilities(x[n]["val"]) + 1e-9) for n in sets}
        for a in args.alphas if args.combine_with else [1.0]:
            mixed = {n: a * head_log_p[n] + (1 - a) * stage_log_p.get(n, 0.0) for n in sets}
            scores = {n: balanced(y[n]["val"], mixed[n].argmax(1)) for n in sets}
            trials.append({"l2": l2, "head_share": a, "val_balanced_accuracy": scores})
    best = max(trials, key=lambda t: float(np.mean(list(t["val_balanced_accuracy"].values()))))
    report = {
        "benchmark": "severity_head",
        "command": "python bench/bench_severity_head.py " + " ".join(sys.argv[1:]),
        "damage": str(args.damage or DEFAULT_DAMAGE),
        "taps": list(taps),
        "side": args.side,
        "hand_features": args.hand_features,
        "combine_with": str(args.combine_with) if args.combine_with else None,
        "outlines": {n: {s: len(o) for s, o in split.items()} for n, split in sets.items()},
        "chosen": best,
        "trials": trials,
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=1) + "\n")
    print(json.dumps({"outlines": report["outlines"], "chosen": best}, indent=1))
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(get_args_parser().parse_args()))
