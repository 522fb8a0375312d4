"""What lies below the served threshold: could a second stage recover missed damage?

The damage detector misses most small scratches and dents. Before building a rescoring
stage (keep a low-confidence candidate when a second model vouches for it), this measures
on the val split (never test) what such a stage could win:

- the recall ceiling: damage found (mask IoU >= 0.3, any type) with every candidate down to
  `--floor`, against the served threshold;
- per predicted type, how many candidates in each confidence band overlap a labelled damage:
  a per-type threshold only pays where a band below the served one is mostly right;
- whether the detector's confidence plus the severity stage's crop features (size, contrast,
  edges, texture against the panel around it) rank candidates better than the confidence
  alone: ROC AUC and average precision of a logistic regression, cross-validated in folds
  of whole photos, against the confidence's own.

    CDAT_DATA_ROOT=../shared/datasets .venv/bin/python bench/bench_low_conf.py

Prints a summary and writes bench/results/low_conf.json.
"""

from __future__ import annotations

import argparse
import itertools
import json
import platform
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np

from cdat.errors import CdatError
from cdat.taxonomy import DamageType
from inference.registry import Registry
from inference.severity import severity_features

RESULTS = Path(__file__).resolve().parent / "results" / "low_conf.json"
BANDS = (0.03, 0.05, 0.1, 0.15, 0.25, 1.0001)
RECALL_IOU = 0.3


def roc_auc(truth: np.ndarray, score: np.ndarray) -> float:
    """Mann-Whitney form; ties in `score` are broken by order, which is fine for floats."""
    ranks = np.empty(len(score))
    ranks[np.argsort(score, kind="stable")] = np.arange(1, len(score) + 1)
    positives = int(truth.sum())
    negatives = len(truth) - positives
    return float((ranks[truth].sum() - positives * (positives + 1) / 2) / (positives * negatives))


def average_precision(truth: np.ndarray, score: np.ndarray) -> float:
    ordered = truth[np.argsort(-score, kind="stable")]
    hits = np.cumsum(ordered)
    return float((hits / np.arange(1, len(ordered) + 1))[ordered].sum() / ordered.sum())


def fit_logistic(x: np.ndarray, y: np.ndarray, l2: float, steps: int = 3000) -> np.ndarray:
    design = np.hstack([x, np.ones((len(x), 1))])
    weights = np.zeros(design.shape[1])
    for _ in range(steps):
        p = 1 / (1 + np.exp(-design @ weights))
        grad = design.T @ (p - y) / len(y)
        grad[:-1] += l2 * weights[:-1] / len(y)
        weights -= 1.0 * grad
    return weights


def cross_validated_scores(
    x: np.ndarray, y: np.ndarray, photo: np.ndarray, l2: float, folds: int = 5
) -> np.ndarray:
    """Out-of-fold probabilities; a photo's candidates stay in one fold."""
    out = np.zeros(len(y))
    fold_of = photo % folds
    for fold in range(folds):
        train, held = fold_of != fold, fold_of == fold
        mean, scale = x[train].mean(0), x[train].std(0) + 1e-9
        weights = fit_logistic((x[train] - mean) / scale, y[train].astype(float), l2)
        design = np.hstack([(x[held] - mean) / scale, np.ones((int(held.sum()), 1))])
        out[held] = 1 / (1 + np.exp(-design @ weights))
    return out


def collect(model_path: Path, data_yaml: Path, split: str, imgsz: int, floor: float) -> dict:
    """Every candidate down to `floor`: type, confidence, features, whether it is right."""
    import yaml

    from training.eval_split import predicted_instances, read_split, truth_instances
    from training.matching import mask_iou
    from training.ultra import load_ultralytics

    names = [str(n) for n in yaml.safe_load(data_yaml.read_text())["names"].values()]
    model = load_ultralytics().YOLO(str(model_path), task="segment")
    rows: dict[str, list[Any]] = {k: [] for k in ("type", "conf", "features", "right", "photo")}
    best_conf: list[float] = []  # per labelled damage: best conf overlapping it
    for k, (image, label) in enumerate(read_split(data_yaml, split)):
        result = model.predict(
            str(image), imgsz=imgsz, conf=floor, retina_masks=True, rect=False, verbose=False
        )[0]
        preds = predicted_instances(result, names)
        truths = truth_instances(label, names, result.orig_shape)
        shape = (len(preds), len(truths))
        overlap = mask_iou(preds, truths) >= RECALL_IOU if all(shape) else np.zeros(shape, bool)
        scores = np.array([p.score for p in preds])
        for t in range(len(truths)):
            hits = scores[overlap[:, t]] if len(preds) else np.array([])
            best_conf.append(float(hits.max()) if len(hits) else 0.0)
        for i, pred in enumerate(preds):
            if not pred.mask.any():
                continue
            rows["type"].append(pred.class_name)
            rows["conf"].append(pred.score)
            rows["features"].append(
                severity_features(result.orig_img, pred.mask, DamageType(pred.class_name))
            )
            rows["right"].append(bool(overlap[i].any()))
            rows["photo"].append(k)
    return {**rows, "truth_best_conf": best_conf}


def summarise(found: dict, served_conf: float, floor: float) -> dict[str, Any]:
    conf, right = np.array(found["conf"]), np.array(found["right"], bool)
    types, photo = np.array(found["type"]), np.array(found["photo"])
    best = np.array(found["truth_best_conf"])
    bands: dict[str, list[dict[str, Any]]] = {}
    for name in sorted(set(types)):
        bands[name] = []
        for lo, hi in itertools.pairwise(BANDS):
            inside = (types == name) & (conf >= lo) & (conf < hi)
            bands[name].append(
                {
                    "from": lo,
                    "to": min(hi, 1.0),
                    "candidates": int(inside.sum()),
                    "right": int(right[inside].sum()),
                }
            )
    features = np.hstack([np.vstack(found["features"]), np.log(conf)[:, None]])
    rescoring = {}
    for l2 in (1.0, 10.0, 100.0):
        scores = cross_validated_scores(features, right, photo, l2)
        rescoring[f"l2_{l2:g}"] = {
            "roc_auc": roc_auc(right, scores),
            "average_precision": average_precision(right, scores),
        }
    return {
        "labelled_damages": len(best),
        "recall_at_served_conf": float((best >= served_conf).mean()),
        "recall_at_floor": float((best >= floor).mean()),
        "candidates": len(conf),
        "right_candidates": int(right.sum()),
        "bands_per_predicted_type": bands,
        "confidence_alone": {
            "roc_auc": roc_auc(right, conf),
            "average_precision": average_precision(right, conf),
        },
        "confidence_plus_crop_features": rescoring,
    }


def get_args_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--config", type=Path, default=Path("datasets/damage.yaml"), help="damage training config"
    )
    parser.add_argument(
        "--split",
        default="val",
        choices=["train", "val"],
        help="never test, whose figures the gate reads",
    )
    parser.add_argument("--floor", type=float, default=0.03, help="lowest confidence kept")
    parser.add_argument(
        "--model-dir",
        type=Path,
        default=Path("inference/models"),
        help="registry folder; its promoted damage model is measured",
    )
    parser.add_argument("--output", type=Path, default=RESULTS, help="JSON written here")
    return parser


def main(args: argparse.Namespace) -> int:
    from training.convert import ensure_dataset
    from training.dataconfig import load_training_config

    registry = Registry.load(args.model_dir)
    entry = registry.promoted_entry("damage")
    if not 0.0 < args.floor < entry.served_conf:
        sys.exit(f"error: --floor must lie between 0 and the served {entry.served_conf:g}")
    cfg = load_training_config(args.config, None)
    data_yaml = ensure_dataset(cfg, Path("runs/data") / cfg.name, 0)
    found = collect(registry.path_of(entry), data_yaml, args.split, entry.imgsz, args.floor)
    if len(set(found["right"])) < 2:
        sys.exit(f"error: {args.split}: candidates must include right and wrong ones to rank")
    summary = summarise(found, entry.served_conf, args.floor)
    body = {
        "benchmark": "low_conf",
        "command": "python bench/bench_low_conf.py " + " ".join(sys.argv[1:]),
        "model": entry.id,
        "split": args.split,
        "served_conf": entry.served_conf,
        "floor": args.floor,
        "python": platform.python_version(),
        **summary,
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(body, indent=1) + "\n")
    print(
        f"{entry.id} on {args.split}: {summary['labelled_damages']} labelled damages; recall "
        f"{summary['recall_at_served_conf']:.3f} at {entry.served_conf:g}, "
        f"{summary['recall_at_floor']:.3f} with every candidate down to {args.floor:g}"
    )
    for name, rows in summary["bands_per_predicted_type"].items():
        cells = ", ".join(
            f"[{r['from']:g}, {r['to']:g}) {r['right']}/{r['candidates']}" for r in rows
        )
        print(f"  {name}: right/candidates per band: {cells}")
    alone = summary["confidence_alone"]
    print(
        f"ranking candidates: confidence alone AUC {alone['roc_auc']:.3f}, "
        f"AP {alone['average_precision']:.3f}"
    )
    for key, value in summary["confidence_plus_crop_features"].items():
        print(
            f"  + crop features ({key}, 5-fold by photo): AUC {value['roc_auc']:.3f}, "
            f"AP {value['average_precision']:.3f}"
        )
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main(get_args_parser().parse_args()))
    except CdatError as exc:  # a missing config, data or promoted model: say which
        print(f"error: {exc.message}", file=sys.stderr)
        sys.exit(2)
