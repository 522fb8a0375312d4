"""An evaluation report as Markdown, and both forms written beside each other."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from inference.registry import EXTRA_METRICS
from training.errors import TrainingError


def _fmt(value: Any) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def report_markdown(report: dict[str, Any], baseline: dict[str, Any] | None = None) -> str:
    lines = [
        f"# Evaluation: `{Path(report['model']).name}` on `{report['split']}`",
        "",
        f"{report['images']} images, {report['instances']} instances, imgsz {report['imgsz']}.",
        "",
        "| metric | value |" + (" promoted | delta |" if baseline else ""),
        "| --- | --- |" + (" --- | --- |" if baseline else ""),
    ]
    keys = ["box_map50", "box_map50_95", "mask_map50", "mask_map50_95", *EXTRA_METRICS]
    keys = [k for k in keys if k in report]
    for key in keys:
        row = f"| {key} | {_fmt(report.get(key))} |"
        if baseline:
            old, new = baseline.get(key), report.get(key)
            delta = None if old is None or new is None else new - old
            row += f" {_fmt(old)} | {_fmt(delta)} |"
        lines.append(row)
    lines += [
        "",
        "| class | instances | box mAP50 | box mAP50-95 | mask mAP50 | mask mAP50-95 |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for name, m in report["per_class"].items():
        lines.append(
            f"| {name} | {m['instances']} | {_fmt(m['box_map50'])} | {_fmt(m['box_map50_95'])} "
            f"| {_fmt(m['mask_map50'])} | {_fmt(m['mask_map50_95'])} |"
        )
    families = report.get("closeup_per_family", {})
    if families:
        refused = report["closeup_no_vehicle_refusals"]
        lines += ["", f"Close-up part test ({report['closeup_regions']} regions on "
                  f"{report['closeup_photos']} held-out photos; {refused} refused as showing "
                  "no vehicle):", "", "| family | regions | right | accuracy |",
                  "| --- | --- | --- | --- |"]  # fmt: skip
        lines += [f"| {f} | {m['regions']} | {m['correct']} | {_fmt(m['accuracy'])} |"
                  for f, m in families.items()]  # fmt: skip
    for source, figures in report.get("per_source", {}).items():
        maps = report.get("map50_per_source", {}).get(source, {})
        lines.append(
            f"- `{source}`: " + ", ".join(f"{k} {_fmt(v)}" for k, v in {**maps, **figures}.items())
        )
    for breakdown in ("recall_per_type", "recall_per_severity"):
        groups = report.get(breakdown, {})
        if groups:
            lines.append(
                f"- {breakdown}: "
                + ", ".join(
                    f"{name} {_fmt(g['damage_recall_iou30'])} of {g['instances']}"
                    for name, g in groups.items()
                )
            )
    if "claims" in report:
        from training.claim_eval import claims_markdown

        lines += claims_markdown(report["claims"])
    if "severity_confusion" in report:
        sev = report["severity_confusion"]
        lines += [
            "",
            f"Severity on {report['matched_instances']} matched instances "
            f"({report['match_rule']}); rows true, columns predicted:",
            "",
            "| true \\ pred | " + " | ".join(sev["labels"]) + " |",
            "| --- |" + " --- |" * len(sev["labels"]),
        ]
        for label, row in zip(sev["labels"], sev["matrix"], strict=True):
            lines.append(f"| {label} | " + " | ".join(str(v) for v in row) + " |")
    return "\n".join(lines) + "\n"


def write_report(report: dict[str, Any], out: Path, baseline: dict[str, Any] | None) -> None:
    body = dict(report, baseline=baseline)
    (out / "report.json").write_text(json.dumps(body, indent=1) + "\n")
    (out / "report.md").write_text(report_markdown(report, baseline))


def check_json_out(out: Path | None) -> None:
    """Refuse an `--out` a JSON file cannot be written to before minutes of work, not after."""
    if out is not None and out.is_dir():
        raise TrainingError(f"--out {out}: is a folder; give a JSON file's path")


def write_json(out: Path, body: Any) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(body, indent=1) + "\n")
