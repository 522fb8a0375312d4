"""A segmentation model's own figures on a split (`training.evaluate` is its command line).

Box and mask mAP50 / mAP50-95 per class (Ultralytics' validator), then instance matching
by mask IoU >= 0.5 for a class confusion matrix and, for damage, a severity confusion
matrix and accuracy on matched instances, with offline plots.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from inference.severity import SeverityModel
from training.damage_eval import DamageTally, source_of
from training.dataconfig import DAMAGE_TYPE_NAMES
from training.errors import TrainingError
from training.eval_split import predicted_instances, read_split, truth_instances
from training.matching import SEVERITIES, MatchStats


def _per_class(metrics: Any, names: list[str], counts: dict[str, int]) -> dict[str, dict]:
    out = {}
    for k, cls in enumerate(metrics.ap_class_index):
        out[names[int(cls)]] = {
            "instances": counts.get(names[int(cls)], 0),
            "box_map50": float(metrics.box.ap50[k]),
            "box_map50_95": float(metrics.box.ap[k]),
            "mask_map50": float(metrics.seg.ap50[k]),
            "mask_map50_95": float(metrics.seg.ap[k]),
        }
    return out


def _instance_counts(pairs: list[tuple[Path, Path]], names: list[str]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for _, label in pairs:
        if label.exists():
            for line in label.read_text().splitlines():
                if line.strip():
                    name = names[int(line.split()[0])]
                    counts[name] = counts.get(name, 0) + 1
    return counts


def task_of(names: list[str]) -> str:
    damage = set(DAMAGE_TYPE_NAMES)
    return "damage" if all(n in damage or "-" in n for n in names) else "parts"


def _validate(model: Any, data: Path, split: str, imgsz: int, out: Path, name: str) -> Any:
    """Ultralytics' validator (mAP per class), one photo at a time, plots off (offline)."""
    return model.val(
        data=str(data), split=split, imgsz=imgsz, batch=1, rect=False, plots=False,
        verbose=False, project=str(out), name=name, exist_ok=True,
    )  # fmt: skip


def _source_maps(
    model: Any, data_yaml: Path, split: str, pairs: list[tuple[Path, Path]], imgsz: int, out: Path
) -> dict[str, dict[str, float]]:
    """Box and mask mAP50 on each source data set's share of the split."""
    by_source: dict[str, list[str]] = {}
    for image, _ in pairs:
        by_source.setdefault(source_of(image), []).append(str(image))
    if len(by_source) < 2:
        return {}
    data = yaml.safe_load(data_yaml.read_text())
    out_maps = {}
    for source, images in sorted(by_source.items()):
        listing = out / f"{source}.{split}.txt"
        listing.write_text("\n".join(images) + "\n")
        subset = out / f"{source}.{split}.yaml"
        subset.write_text(yaml.safe_dump({**data, split: str(listing.resolve())}))
        m = _validate(model, subset, split, imgsz, out, f"val-{source}")
        out_maps[source] = {"box_map50": float(m.box.map50), "mask_map50": float(m.seg.map50)}
    return out_maps


def evaluate(
    model_path: Path,
    data_yaml: Path,
    split: str,
    imgsz: int,
    out: Path,
    conf: float = 0.25,
    samples: int = 4,
    severity_path: Path | None = None,
) -> dict[str, Any]:
    from training.plots import plot_confusion, plot_pr_curves, save_overlay
    from training.ultra import load_ultralytics

    ultralytics = load_ultralytics()
    out.mkdir(parents=True, exist_ok=True)
    names = [str(n) for n in yaml.safe_load(data_yaml.read_text())["names"].values()]
    task = task_of(names)
    typed = task == "damage" and all(n in DAMAGE_TYPE_NAMES for n in names)
    severity = SeverityModel.load(severity_path) if severity_path and typed else None
    model = ultralytics.YOLO(str(model_path), task="segment")
    model_names = [str(model.names[k]) for k in sorted(model.names)]
    if model_names != names:
        raise TrainingError(f"{model_path} classes {model_names} differ from the data's {names}")
    metrics = _validate(model, data_yaml, split, imgsz, out, "val")
    pairs = read_split(data_yaml, split)
    stats = MatchStats(names, damage=task == "damage" and not typed)
    tally = DamageTally(severity)
    for k, (image, label) in enumerate(pairs):
        result = model.predict(
            str(image), imgsz=imgsz, conf=conf, retina_masks=True, rect=False, verbose=False
        )[0]
        preds = predicted_instances(result, names)
        truths = truth_instances(label, names, result.orig_shape)
        stats.add_image(preds, truths)
        if task == "damage":
            tally.add_image(image, result.orig_img, preds, truths)
        if k < samples:
            save_overlay(
                result.orig_img,
                [p.mask for p in preds],
                [p.class_name for p in preds],
                out / f"sample_{k}.jpg",
            )
    counts = _instance_counts(pairs, names)
    report: dict[str, Any] = {
        "model": str(model_path),
        "data": str(data_yaml),
        "split": split,
        "imgsz": imgsz,
        "task": task,
        "images": len(pairs),
        "instances": sum(counts.values()),
        "box_map50": float(metrics.box.map50),
        "box_map50_95": float(metrics.box.map),
        "mask_map50": float(metrics.seg.map50),
        "mask_map50_95": float(metrics.seg.map),
        "per_class": _per_class(metrics, names, counts),
        "matched_instances": stats.matched,
        "match_rule": f"mask IoU >= {stats.iou_threshold}, class-agnostic, conf >= {conf}",
        "served_conf": conf,
        "served_precision": stats.precision,
        "served_recall": stats.recall,
        "class_confusion": {
            "labels": stats.classes_cm.labels,
            "matrix": stats.classes_cm.matrix.tolist(),
        },
    }
    if typed:
        report["type_box_map50"] = report["box_map50"]
        report["type_mask_map50"] = report["mask_map50"]
    if task == "damage":
        report.update(tally.metrics())
        report["map50_per_source"] = _source_maps(model, data_yaml, split, pairs, imgsz, out)
    if task == "damage" and not typed:
        report["severity_accuracy"] = stats.severity_cm.accuracy
        report["severity_confusion"] = {
            "labels": SEVERITIES,
            "matrix": stats.severity_cm.matrix.tolist(),
        }
        plot_confusion(
            stats.severity_cm.matrix,
            SEVERITIES,
            out / "severity_confusion.png",
            "severity on matched instances",
        )
    plot_confusion(
        stats.classes_cm.matrix,
        stats.classes_cm.labels,
        out / "class_confusion.png",
        "classes (mask IoU >= 0.5)",
    )
    px, prec = metrics.seg.curves_results[0][:2]
    curves = {names[int(c)]: (px, prec[k]) for k, c in enumerate(metrics.ap_class_index)}
    plot_pr_curves(curves, out / "pr_curves.png")
    return report
