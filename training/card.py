"""Write a model card (Markdown) from a training run, an evaluation report and the data cards.

    python -m training.card --run runs/train/damage --report runs/eval/damage/report.json \
        --model inference/models/damage-seg-n-20261125.onnx --notes notes.md
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from training.dataconfig import load_training_config
from training.errors import TrainingError, run_script
from training.eval_report import report_markdown

GOALS = {
    "damage": {
        "type_box_map50": 0.50,
        "type_mask_map50": 0.45,
        "damage_recall_iou30": 0.80,
        "severity_accuracy": 0.80,
        "severity_balanced_accuracy": 0.60,
        "severity_matched": 100,
    },
    "parts": {"mask_map50": 0.85, "closeup_part_accuracy": 0.70},
}
"""Held-out test goals the project set for a shippable model."""


def _data_section(config: Path) -> list[str]:
    cfg = load_training_config(config)
    lines = ["## Data and licence", ""]
    for ds in cfg.datasets:
        card = f" (data card: `datasets/{ds.card}`)" if ds.card else ""
        lines += [
            f"- **{ds.name}**{card}",
            f"  - licence: {ds.licence}",
            f"  - attribution: {ds.attribution}",
        ]
    return [*lines, ""]


def _goals(task: str, report: dict[str, Any]) -> list[str]:
    lines = [f"## Against the project's goals (`{report['split']}` split)", ""]
    lines += ["| metric | goal | reached | met |", "| --- | --- | --- | --- |"]
    for metric, goal in GOALS[task].items():
        value = report.get(metric)
        shown = "n/a" if value is None else f"{value:.3f}".rstrip("0").rstrip(".")
        met = "yes" if value is not None and value >= goal else "**no**"
        lines.append(f"| {metric} | {goal:g} | {shown} | {met} |")
    return [*lines, ""]


def _init_section(run: dict[str, Any]) -> list[str]:
    init = run.get("init") or {"path": "none", "origin": "from scratch", "licence": "none"}
    lines = ["## Initial weights", ""]
    if init["path"] == "none":
        return [*lines, "Trained from random weights (no pretrained start).", ""]
    return [
        *lines,
        f"- file: `{Path(init['path']).name}` (sha256 `{init.get('sha256', '')[:16]}...`)",
        f"- origin: {init['origin']}",
        f"- licence: {init['licence']}",
        "",
    ]


def _effective(hp: dict[str, Any], run: dict[str, Any]) -> dict[str, Any]:
    """The run's hyperparameters with per-task defaults (None in the record) resolved."""
    from training.train import Hyperparameters

    resolved = Hyperparameters(**hp).ultralytics_args(run["task"])
    return {k: resolved.get(k, v) if v is None else v for k, v in hp.items()}


def render_card(model: Path, run: dict[str, Any], report: dict[str, Any], notes: str) -> str:
    hp = run["hyperparameters"]
    lines = [
        f"# Model card: `{model.name}`",
        "",
        f"Task: **{run['task']}** instance segmentation ({len(run['classes'])} classes). "
        f"Architecture: `{hp['model']}`, "
        + (
            "fine-tuned from pretrained weights (below), "
            if run.get("init", {}).get("path", "none") != "none"
            else "trained from scratch, "
        )
        + f"input {report['imgsz']}x{report['imgsz']}, exported to ONNX (opset 17, dynamic batch).",
        "",
        "Classes, in output order: " + ", ".join(f"`{c}`" for c in run["classes"]) + ".",
        "",
        "## The command that made it",
        "",
        "```",
        run["command"],
        "```",
        "",
        "Hyperparameters: " + ", ".join(f"{k}={v}" for k, v in _effective(hp, run).items()) + ".",
        "",
        *_init_section(run),
        *_data_section(Path(run["config"])),
        *_goals(run["task"], report),
        f"## Metrics on the `{report['split']}` split (this ONNX file)",
        "",
        report_markdown(report).split("\n", 2)[2],
        notes.strip(),
        "",
    ]
    return "\n".join(lines)


def get_args_parser(add_help: bool = True) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0], add_help=add_help)
    parser.add_argument("--run", type=Path, required=True, help="training run folder")
    parser.add_argument("--report", type=Path, required=True, help="report.json of the model")
    parser.add_argument("--model", type=Path, required=True, help="the model file described")
    parser.add_argument("--notes", type=Path, default=None, help="Markdown appended (limits...)")
    parser.add_argument("--out", type=Path, default=None, help="default: <model>.md")
    return parser


def main(args: argparse.Namespace) -> int:
    for path in (args.run / "cdat_run.json", args.report):
        if not path.is_file():
            raise TrainingError(f"not found: {path}")
    run = json.loads((args.run / "cdat_run.json").read_text())
    report = json.loads(args.report.read_text())
    notes = args.notes.read_text() if args.notes else ""
    out = args.out or args.model.with_suffix(".md")
    out.write_text(render_card(args.model, run, report, notes))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    run_script(main, get_args_parser())
