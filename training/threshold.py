"""Choose a model's served confidence threshold on the val split, from one prediction pass.

Every candidate threshold is scored on the same predictions (made once at the lowest
candidate): for a damage model, damage found (`damage_recall_iou30`) against damage reported
(`damage_precision_iou30`) at mask IoU 0.3, any type, and the severity figures at each
threshold; for a part model, instances matched by class at mask IoU 0.5 (`served_recall`,
`served_precision`). The threshold with the best F1 of the two is chosen, the higher one on a
tie (fewer false reports for the same balance). The test split is refused: a threshold chosen
there would make the test figures that the promotion gate reads optimistic.

    python -m training.threshold --config datasets/damage.yaml --model runs/damage-new.onnx \
        --severity runs/severity/severity.json --out runs/threshold/damage-new
    python -m training.threshold --config datasets/parts.yaml --model runs/parts-new.onnx \
        --conf 0.1 0.15 0.2 0.25 0.3
    # then evaluate on test at the chosen threshold (its report records served_conf):
    python -m training.evaluate --config datasets/damage.yaml --model runs/damage-new.onnx \
        --split test --severity runs/severity/severity.json --conf <chosen>
"""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import yaml

from training.damage_eval import DamageTally
from training.errors import TrainingError, run_script
from training.matching import Instance, MatchStats

DEFAULT_CANDIDATES = (0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.4)


@dataclass(frozen=True)
class ThresholdRow:
    conf: float
    recall: float | None
    precision: float | None
    f1: float | None
    severity_matched: int | None = None
    severity_balanced_accuracy: float | None = None


def f1_score(recall: float | None, precision: float | None) -> float | None:
    """None without labelled instances; 0 where nothing was reported (nothing found)."""
    if recall is None:
        return None
    if precision is None or recall + precision == 0:
        return 0.0
    return 2 * recall * precision / (recall + precision)


def choose(rows: list[ThresholdRow]) -> ThresholdRow:
    """The best F1; the higher threshold on a tie."""
    scored = [r for r in rows if r.f1 is not None]
    if not scored:
        raise TrainingError("no threshold could be scored: the split has no labelled instances")
    best = max(scored, key=lambda r: (round(r.f1 or 0.0, 9), r.conf))
    if not best.f1:
        raise TrainingError(
            "the model finds no labelled instance at any candidate threshold: "
            "try lower --conf values"
        )
    return best


@dataclass
class _Sweep:
    """Tallies for every candidate threshold, fed one photo at a time."""

    candidates: tuple[float, ...]
    task: str
    names: list[str]
    severity: Any = None

    def __post_init__(self) -> None:
        if self.task == "damage":
            self.damage = {c: DamageTally(self.severity) for c in self.candidates}
        else:
            self.parts = {c: MatchStats(self.names, damage=False) for c in self.candidates}

    def add_image(
        self, path: Path, image: Any, preds: list[Instance], truths: list[Instance]
    ) -> None:
        for conf in self.candidates:
            kept = [p for p in preds if p.score >= conf]
            if self.task == "damage":
                self.damage[conf].add_image(path, image, kept, truths)
            else:
                self.parts[conf].add_image(kept, truths)

    def rows(self) -> list[ThresholdRow]:
        out = []
        for conf in self.candidates:
            if self.task == "damage":
                m = self.damage[conf].metrics()
                recall, precision = m["damage_recall_iou30"], m["damage_precision_iou30"]
                extra = {
                    "severity_matched": m["severity_matched"],
                    "severity_balanced_accuracy": m["severity_balanced_accuracy"],
                }
            else:
                stats = self.parts[conf]
                recall, precision, extra = stats.recall, stats.precision, {}
            out.append(ThresholdRow(conf, recall, precision, f1_score(recall, precision), **extra))
        return out


def sweep(
    model_path: Path,
    data_yaml: Path,
    split: str,
    imgsz: int,
    candidates: tuple[float, ...],
    severity_path: Path | None = None,
) -> list[ThresholdRow]:
    """One prediction pass over the split at the lowest candidate; a row per candidate."""
    from inference.severity import SeverityModel
    from training.dataconfig import DAMAGE_TYPE_NAMES
    from training.eval_split import predicted_instances, read_split, truth_instances
    from training.model_eval import task_of
    from training.ultra import load_ultralytics

    names = [str(n) for n in yaml.safe_load(data_yaml.read_text())["names"].values()]
    task = task_of(names)
    typed = task == "damage" and all(n in DAMAGE_TYPE_NAMES for n in names)
    severity = SeverityModel.load(severity_path) if severity_path and typed else None
    model = load_ultralytics().YOLO(str(model_path), task="segment")
    model_names = [str(model.names[k]) for k in sorted(model.names)]
    if model_names != names:
        raise TrainingError(f"{model_path} classes {model_names} differ from the data's {names}")
    tallies = _Sweep(candidates, task, names, severity)
    for image, label in read_split(data_yaml, split):
        result = model.predict(
            str(image), imgsz=imgsz, conf=min(candidates), retina_masks=True, rect=False,
            verbose=False,
        )[0]  # fmt: skip
        truths = truth_instances(label, names, result.orig_shape)
        tallies.add_image(image, result.orig_img, predicted_instances(result, names), truths)
    return tallies.rows()


def table(rows: list[ThresholdRow], chosen: ThresholdRow) -> str:
    def fmt(v: float | int | None) -> str:
        return "n/a" if v is None else (str(v) if isinstance(v, int) else f"{v:.3f}")

    lines = [
        "| conf | recall | precision | F1 | severity matched | severity balanced |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for r in rows:
        mark = " (chosen)" if r is chosen else ""
        lines.append(
            f"| {r.conf:g}{mark} | {fmt(r.recall)} | {fmt(r.precision)} | {fmt(r.f1)} "
            f"| {fmt(r.severity_matched)} | {fmt(r.severity_balanced_accuracy)} |"
        )
    return "\n".join(lines)


def candidates_of(values: list[float]) -> tuple[float, ...]:
    bad = [v for v in values if not 0.0 < v < 1.0]
    if bad:
        raise TrainingError(f"--conf values must lie in (0, 1): {bad}")
    return tuple(sorted(set(values)))


def get_args_parser(add_help: bool = True) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0], add_help=add_help)
    parser.add_argument("--config", type=Path, required=True, help="training config (datasets/)")
    parser.add_argument("--model", type=Path, required=True, help="candidate .pt or .onnx")
    parser.add_argument(
        "--split",
        default="val",
        choices=["train", "val"],
        help="where to choose (default: val); never test, whose figures the gate reads",
    )
    parser.add_argument(
        "--conf",
        type=float,
        nargs="+",
        default=list(DEFAULT_CANDIDATES),
        help=f"candidate thresholds (default: {' '.join(map(str, DEFAULT_CANDIDATES))})",
    )
    parser.add_argument("--imgsz", type=int, default=None, help="default: the model's")
    parser.add_argument(
        "--severity", type=Path, default=None, help="severity stage JSON, for its figures"
    )
    parser.add_argument("--out", type=Path, default=None, help="default: runs/threshold/<model>")
    parser.add_argument("--data-root", type=Path, default=None, help="default: $CDAT_DATA_ROOT")
    parser.add_argument("--seed", type=int, default=0, help="conversion seed (as trained)")
    parser.add_argument("--data-dir", type=Path, default=Path("runs/data"), help="conversions")
    return parser


def main(args: argparse.Namespace) -> int:
    from training.convert import ensure_dataset
    from training.dataconfig import load_training_config
    from training.eval_split import model_imgsz

    candidates = candidates_of(args.conf)
    if not args.model.is_file():
        raise TrainingError(f"no such model file: {args.model}")
    if args.severity is not None and not args.severity.is_file():
        raise TrainingError(f"no such severity model: {args.severity}")
    out = args.out or Path("runs/threshold") / args.model.stem
    if out.is_file():
        raise TrainingError(f"--out {out}: is a file; give a folder")
    cfg = load_training_config(args.config, args.data_root)
    data_yaml = ensure_dataset(cfg, args.data_dir / cfg.name, args.seed)
    imgsz = args.imgsz or model_imgsz(args.model)
    rows = sweep(args.model, data_yaml, args.split, imgsz, candidates, args.severity)
    chosen = choose(rows)
    written = write_choice(out, rows, chosen, {"model": str(args.model), "split": args.split,
                                               "imgsz": imgsz})  # fmt: skip
    print(table(rows, chosen))
    print(f"chosen: {chosen.conf:g} (best F1 on {args.split}); wrote {written}")
    return 0


def write_choice(
    out: Path, rows: list[ThresholdRow], chosen: ThresholdRow, facts: dict[str, Any]
) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    body = {
        **facts,
        "rule": "best F1 of recall and precision; the higher threshold on a tie",
        "chosen_conf": chosen.conf,
        "rows": [asdict(r) for r in rows],
    }
    path = out / "threshold.json"
    path.write_text(json.dumps(body, indent=1) + "\n")
    return path


if __name__ == "__main__":
    run_script(main, get_args_parser())
