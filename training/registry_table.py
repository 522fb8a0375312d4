"""`cdat models list`: each task's entries beside the figures its promotion gate compares.

Damage entries that share one ONNX file differ only in the stages and rules served with
it, so their mAP is the same to the last digit; what tells them apart, and what `cdat
models promote` judges them on, is the task's gate metrics (`inference.promotion_gate`):
the list shows exactly those, so a data scientist reads the choice the gate will make.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from inference.promotion_gate import GATE_METRICS, LOWER_IS_BETTER, metric_at

SOURCES = {"car-parts-damage": "cpd", "damaged-parts": "dp", "damage-severity": "ds"}
"""Short names of the test sources, for column headings (spelt out under the table)."""

HEADINGS = {
    "claims.intact_photos_with_damage": "intact cars",
    "claims.intact_closeups_with_damage": "intact close-ups",
    "severity_balanced_accuracy": "severity bal. acc",
    "mask_map50": "mask mAP50",
    "closeup_part_accuracy": "close-up part acc",
    "non_vehicle_refused": "no vehicle refused",
    "closeups_refused": "close-ups refused",
    "vehicle_photos_refused": "vehicles refused",
}
PER_SOURCE = {"damage_recall_iou30": "found", "part_family_accuracy": "family"}


def heading(metric: str) -> str:
    """A gate metric's column heading: `claims.damage_recall_iou30.damaged-parts` is
    `found dp`; a metric named nowhere here keeps its own name."""
    if metric in HEADINGS:
        return HEADINGS[metric]
    *path, last = metric.split(".")
    if path and path[-1] in PER_SOURCE:
        return f"{PER_SOURCE[path[-1]]} {SOURCES.get(last, last)}"
    return metric


def task_table(task: str, entries: Sequence[Any], promoted: str | None) -> list[str]:
    """The lines of one task's table: one row per entry, in registration order."""
    metrics = GATE_METRICS.get(task, ())
    headings = [heading(m) for m in metrics]
    widths = [max(len(h), 5) for h in headings]
    id_width = max([len("id"), *(len(e.id) for e in entries)])
    cells = "  ".join(f"{h:>{w}}" for h, w in zip(headings, widths, strict=True))
    lines = [_title(task, metrics), f"  {'id':{id_width}}  {'split':5}  {cells}  file"]
    for entry in entries:
        mark = "* " if entry.id == promoted else "  "
        values = (_num(metric_at(entry.metrics, m)) for m in metrics)
        row = "  ".join(f"{v:>{w}}" for v, w in zip(values, widths, strict=True))
        split = str(entry.metrics.get("split") or "-")
        lines.append(f"{mark}{entry.id:{id_width}}  {split:5}  {row}  {entry.file}")
    return lines


def _title(task: str, metrics: Sequence[str]) -> str:
    lower = [heading(m) for m in metrics if m in LOWER_IS_BETTER]
    tail = f"; lower is better: {', '.join(lower)}" if lower else ""
    return f"{task}: what `cdat models promote` compares{tail}"


def legend(shown_tasks: Sequence[str]) -> str:
    """What the short source names in the headings stand for, and the promoted mark."""
    used = [
        f"{short} {source}"
        for source, short in SOURCES.items()
        if any(f"{short}" in heading(m).split() for t in shown_tasks for m in GATE_METRICS[t])
    ]
    return "; ".join([*used, "* promoted", "- not measured"])


def _num(value: Any) -> str:
    if value is None or isinstance(value, dict | list):
        return "-"
    return f"{float(value):.3f}"
