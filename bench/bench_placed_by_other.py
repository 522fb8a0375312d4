"""Would the served damage land on the right part if another damage model placed it?

The damage model taught intact close-ups (docs/model-experiments.md, "The close-up-taught
model again") puts the damage it finds on the right part family far more often than the
served model, from the same part masks, but fails the intact-car bound. This keeps the served
model's detections, verifier and rule, and gives each detection the part that the other
model's detection with the highest box IoU on the same photo was assigned, where that IoU is
at least a bound; each row is measured from the masks alone and again with the served
part-family stage re-choosing the part after it (as serving runs it). Val only (never test);
both passes are `training.claim_rules --pass` outputs on the same split:

    python -m training.claim_rules --split val --pass --conf 0.02 \\
        --cache runs/eval/claim-rules-val-002.pkl
    python -m training.claim_rules --split val --pass --conf 0.02 --damage runs/cand/dcc3.onnx \\
        --severity inference/models/damage-type-seg-n-20261127.severity.json \\
        --cache runs/eval/claim-rules-val-dcc3.pkl
    CDAT_DATA_ROOT=../shared/datasets .venv/bin/python bench/bench_placed_by_other.py \\
        --served-pass runs/eval/claim-rules-val-002.pkl \\
        --other-pass runs/eval/claim-rules-val-dcc3.pkl

Prints damage found, part family and intact figures per bound and writes
bench/results/placed_by_other.json (about three minutes on the 2-core CPU).
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from cdat.findings import PhotoAnalysis  # noqa: E402
from cdat.settings import Settings  # noqa: E402
from cdat.verified import VerifierRule  # noqa: E402
from inference.damage_verifier import DamageVerifier  # noqa: E402
from inference.errors import ModelUnavailable  # noqa: E402
from inference.part_family import FamilyStage, load_family_stage  # noqa: E402
from inference.registry import Registry, RegistryError  # noqa: E402
from training.assign_sweep import grid_masks, promoted_damage_entry, promoted_model_file  # noqa: E402
from training.claim_eval import PART_NAMED  # noqa: E402
from training.claim_rules import cached_records  # noqa: E402
from training.errors import TrainingError  # noqa: E402
from training.family_sweep import probability_tables, rechosen  # noqa: E402
from training.rule_sweep import PhotoRecord, mean_recall, score  # noqa: E402
from training.verifier_sweep import floor_tables, verified_rule  # noqa: E402


def placed_by(
    analysis: PhotoAnalysis, other: PhotoAnalysis | None, min_iou: float
) -> PhotoAnalysis:
    """`analysis` with each damage on the part of `other`'s best-overlapping damage."""
    if other is None or not other.damages or not analysis.damages:
        return analysis
    damages = []
    for damage in analysis.damages:
        best = max(other.damages, key=lambda d: damage.box.iou(d.box))
        keep = damage.box.iou(best.box) < min_iou
        damages.append(damage if keep else replace(damage, part=best.part))
    return replace(analysis, damages=tuple(damages))


def served_family_stage() -> FamilyStage:
    """The promoted part model's part-family stage, with its served rule."""
    registry = Registry.load(Settings().model_dir)
    parts = registry.promoted_entry("parts")
    record = parts.served_family_stage
    if record is None:
        raise TrainingError("the promoted part model is served without a part-family stage")
    return load_family_stage(registry.model_dir, record, registry.path_of(parts))


def with_family(
    records: list[PhotoRecord], stage: FamilyStage, tables: dict[int, Any]
) -> list[PhotoRecord]:
    """The records with each damage's part re-chosen by the stage (`tables`: its answers per
    record index, for the same damages in the same order)."""
    out = list(records)
    for k, table in tables.items():
        analysis = records[k].analysis
        again = rechosen(analysis, grid_masks(analysis), table, stage, stage.rule)
        out[k] = replace(records[k], analysis=again)
    return out


def figures(
    records: list[PhotoRecord], table: dict[int, Any], rule: VerifierRule
) -> dict[str, Any]:
    """The served figures, and part family per labelled family on each part-named source."""
    served = promoted_damage_entry()
    scored = score(records, verified_rule(table, served.served_conf, rule,
                                          served.served_whole_car_rule))  # fmt: skip
    shown = ("damage_recall_iou30", "part_family_accuracy", "intact_photos_with_damage",
             "intact_closeups_with_damage")  # fmt: skip
    per_family = {s: scored["per_source"][s].get("per_family") for s in PART_NAMED}
    return (
        {"mean_damage_recall_iou30": round(mean_recall(scored), 4)}
        | {k: scored[k] for k in shown}
        | {"per_family": per_family}
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--served-pass", type=Path, required=True,
                        help="the served model's val pass (claim_rules --pass)")  # fmt: skip
    parser.add_argument("--other-pass", type=Path, required=True,
                        help="the placing model's val pass, same split")  # fmt: skip
    parser.add_argument("--min-ious", type=float, nargs="+", default=[0.3, 0.5, 0.7],
                        help="box IoU the other model's detection needs to place")  # fmt: skip
    parser.add_argument("--out", type=Path, default=REPO / "bench/results/placed_by_other.json",
                        help="where to write the figures as JSON")  # fmt: skip
    args = parser.parse_args()
    option = "the promoted damage model"
    try:
        served_entry = promoted_damage_entry()
        record = served_entry.served_verifier
        if record is None:
            raise TrainingError("the promoted damage model is served without a verifier")
        rule, backbone = record.rule, promoted_model_file("damage")
        verifier = DamageVerifier.load(backbone.parent / record.file, rule, backbone=backbone)
        stage = served_family_stage()
        option = "--served-pass"
        _, served, _ = cached_records(args.served_pass, "val", 0, None)
        option = "--other-pass"
        _, other, _ = cached_records(args.other_pass, "val", 0, None)
    except (TrainingError, RegistryError, ModelUnavailable) as exc:
        print(f"error: {option}: {exc}", file=sys.stderr)
        return 2
    by_photo = {(r.source, r.name): r.analysis for r in other}
    table = floor_tables(verifier, served, [served_entry.served_conf])[served_entry.served_conf]
    # the stage reads the crop around each box, which placement does not move: asked once
    family_tables = probability_tables(stage, served)

    def measured(name: str, records: list[PhotoRecord], verifier_table: dict[int, Any]) -> None:
        results[name] = figures(records, verifier_table, rule)
        print(name, json.dumps({k: v for k, v in results[name].items() if k != "per_family"}))
        staged = with_family(records, stage, family_tables)
        pairs = zip(records, staged, strict=True)
        again = {id(s.analysis): verifier_table[id(r.analysis)]
                 for r, s in pairs if id(r.analysis) in verifier_table}  # fmt: skip
        results[f"{name}_with_family_stage"] = figures(staged, again, rule)
        staged_figures = results[f"{name}_with_family_stage"]
        print(f"{name}_with_family_stage", json.dumps(staged_figures["per_family"]))

    results: dict[str, Any] = {}
    measured("served", served, table)
    for bound in args.min_ious:
        records, placed_table = [], {}
        for rec in served:
            analysis = placed_by(rec.analysis, by_photo.get((rec.source, rec.name)), bound)
            if id(rec.analysis) in table:
                placed_table[id(analysis)] = table[id(rec.analysis)]
            records.append(replace(rec, analysis=analysis))
        measured(f"placed_iou_{bound}", records, placed_table)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=1) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
