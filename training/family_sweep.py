"""`python -m training.family_sweep`: when the part-family stage overrules the part masks,
compared on one cached pass, measured as a claim is.

The pass of `training.claim_rules --pass` keeps each photo's damages and parts. For every
damage of the part-named sources (`car-parts-damage`, `damaged-parts`), the candidate stage
(`--stage`, made by `training.part_family`) gives its family probabilities once, on the
photo as serving decodes it; each `FamilyRule` then re-chooses every damage's part
through `inference.part_family` itself (the parts ranked from the cached polygons drawn on
the analysis grid), the served damage rule is applied, and `training.rule_sweep.score` gives
`claim_report`'s figures (rules: every `--thresholds` x `--masks-probabilities`). Choose on
val, never on test::

    python -m training.family_sweep --split val --cache runs/eval/claim-rules-val.pkl \\
        --stage runs/family/part-family.onnx --out runs/eval/family-sweep-val.json
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from cdat.findings import Box, PhotoAnalysis
from cdat.part_family import FamilyRule, choose_part
from inference.part_family import FamilyStage, moved, nearby_parts, side_seen
from training.assign_sweep import (
    GridMasks,
    grid_masks,
    priced_changes,
    promoted_damage_entry,
    promoted_model_file,
)
from training.claim_eval import PART_NAMED
from training.errors import TrainingError, run_script
from training.eval_report import check_json_out, write_json
from training.rule_sweep import PhotoRecord, Rule, pass_sweep_parser, score, with_whole_car

Table = dict[int, np.ndarray]
"""Record index -> (damages, families) probabilities."""


def probability_tables(stage: FamilyStage, records: Sequence[PhotoRecord]) -> Table:
    """The stage's answer for every damage of the part-named records, once."""
    from training.vehicle_gate import read_photo_scaled

    out: Table = {}
    for k, rec in enumerate(records):
        if rec.source not in PART_NAMED or not rec.analysis.damages:
            continue
        if rec.path is None:
            raise TrainingError(f"{rec.name}: the pass record names no photo file")
        image, (sx, sy) = read_photo_scaled(rec.path)
        boxes = [Box(d.box.x1 / sx, d.box.y1 / sy, d.box.x2 / sx, d.box.y2 / sy)
                 for d in rec.analysis.damages]  # fmt: skip
        out[k] = stage.probabilities(image, boxes)
    return out


def rechosen(
    analysis: PhotoAnalysis, masks: GridMasks, table: np.ndarray, stage: FamilyStage,
    rule: FamilyRule,
) -> PhotoAnalysis:  # fmt: skip
    """The analysis with each damage's part chosen again under `rule`; damages keep their
    order (the records' IoUs index them)."""
    damages = []
    for k, damage in enumerate(analysis.damages):
        probabilities = dict(zip(stage.families, map(float, table[k]), strict=True))
        near = nearby_parts(masks.damages[k], damage.box, analysis.parts, masks.parts)
        part = choose_part(
            damage.part, probabilities, near, rule, side_seen(damage.box, analysis.parts)
        )
        damages.append(
            damage if part is damage.part
            else moved(damage, part, analysis.parts, masks.parts, masks.damages[k])
        )  # fmt: skip
    return replace(analysis, damages=tuple(damages))


def sweep(
    records: Sequence[PhotoRecord], tables: Table, stage: FamilyStage,
    grid: Sequence[FamilyRule | None], served: Rule,
) -> list[dict[str, Any]]:  # fmt: skip
    """One row per rule; None is today's serving (the masks alone)."""
    masks = {k: grid_masks(records[k].analysis) for k in tables}
    rows = []
    for rule in grid:
        again = list(records)
        if rule is not None:
            for k, table in tables.items():
                rec = records[k]
                again[k] = replace(rec, analysis=rechosen(rec.analysis, masks[k], table, stage,
                                                          rule))  # fmt: skip
        figures = score(again, served)
        rows.append(
            {
                "rule": None if rule is None else rule.to_record(),
                "damage_recall_iou30": figures["damage_recall_iou30"],
                "part_family_accuracy": figures["part_family_accuracy"],
                "per_family": {s: figures["per_source"][s].get("per_family") for s in PART_NAMED},
                "priced": priced_changes(again, served),
            }
        )
    return rows


MIN_GAIN = 0.01
"""A rule must beat the masks alone by this much in mean: about one region of the 118
val close-ups either way is noise."""
MAX_SOURCE_DROP = 0.01


def mean_family(row: dict[str, Any]) -> float:
    values = [row["part_family_accuracy"][s] or 0.0 for s in PART_NAMED]
    return sum(values) / len(values)


def choose(rows: Sequence[dict[str, Any]]) -> dict[str, Any] | None:
    """The criterion, written down before the sweep was run: of the rules whose
    `part_family_accuracy` on neither part-named source is more than 0.01 below the masks
    alone, the one with the highest mean over `car-parts-damage` and `damaged-parts` val;
    ties (to 1e-6) to the rule that overrules least (higher `min_probability`, then lower
    `max_masks_probability`). It is served only if that mean beats the masks alone by at
    least `MIN_GAIN`; otherwise None."""
    base = next(r for r in rows if r["rule"] is None)
    fit = [
        r
        for r in rows
        if r["rule"] is not None
        and all(
            (r["part_family_accuracy"][s] or 0.0)
            >= (base["part_family_accuracy"][s] or 0.0) - MAX_SOURCE_DROP - 1e-9
            for s in PART_NAMED
        )
    ]
    if not fit:
        return None

    def key(row: dict[str, Any]) -> tuple[float, float, float]:
        rule = row["rule"]
        return round(mean_family(row), 6), rule["min_probability"], -rule["max_masks_probability"]

    best = max(fit, key=key)
    return best if mean_family(best) >= mean_family(base) + MIN_GAIN - 1e-9 else None


def get_args_parser(add_help: bool = True) -> argparse.ArgumentParser:
    parser = pass_sweep_parser(__doc__, add_help)
    parser.add_argument("--stage", type=Path, required=True,
                        help="the part-family stage's .onnx (training.part_family)")  # fmt: skip
    parser.add_argument("--backbone", type=Path, default=None,
                        help="the part model a stage stored as a head reads (default: the "
                        "served one)")  # fmt: skip
    parser.add_argument("--thresholds", type=float, nargs="+",
                        default=[0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95],
                        help="min_probability values to compare")  # fmt: skip
    parser.add_argument("--masks-probabilities", type=float, nargs="+",
                        default=[0.05, 0.1, 0.2, 1.0],
                        help="max_masks_probability values to compare")  # fmt: skip
    return parser


def main(args: argparse.Namespace) -> int:
    if args.split != "val":
        print("warning: choosing on test is not allowed; figures only", file=sys.stderr)
    from training.claim_rules import cached_records

    check_json_out(args.out)
    if not args.stage.is_file():
        raise TrainingError(f"--stage {args.stage}: no such file")
    try:
        grid: list[FamilyRule | None] = [
            None,
            *(FamilyRule(t, m) for t in args.thresholds for m in args.masks_probabilities),
        ]
    except ValueError as exc:
        raise TrainingError(f"--thresholds / --masks-probabilities: {exc}") from None
    backbone = args.backbone or promoted_model_file("parts")
    stage = FamilyStage.load(args.stage, FamilyRule(1.0), backbone=backbone)
    state, records, _ = cached_records(args.cache, args.split, args.seed, args.data_root)
    damage = promoted_damage_entry()
    # the model's threshold and rule, without a verifier's extra damage (the pass has none)
    served = with_whole_car(damage.base_conf, damage.served_whole_car_rule)
    rows = sweep(records, probability_tables(stage, records), stage, grid, served)
    out = {
        "split": args.split,
        "pass_conf": state["conf"],
        "stage": str(args.stage),
        "criterion": choose.__doc__,
        "masks_alone": rows[0],
        "chosen": choose(rows) if args.split == "val" else None,
        "candidates": rows,
    }
    print(json.dumps({k: out[k] for k in ("masks_alone", "chosen")}, indent=1))
    for row in rows:
        print(json.dumps({k: row[k] for k in ("rule", "part_family_accuracy")}))
    if args.out:
        write_json(args.out, out)
    return 0


if __name__ == "__main__":
    run_script(main, get_args_parser())
