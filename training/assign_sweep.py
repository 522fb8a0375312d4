"""`python -m training.assign_sweep`: the damage -> part thresholds (`inference.assign`)
compared on one cached pass, measured as a claim is.

The pass of `training.claim_rules --pass` keeps each photo's `PhotoAnalysis`: damage and part
polygons, not the grid masks serving assigned from. Each polygon is drawn back onto the
photo's analysis grid (`inference.postprocess.grid_shape`) once, and each candidate
`AssignRule` re-assigns every damage through `inference.assign.assign_parts` itself; the
served damage rule (threshold, whole-car rule) is then applied and `training.rule_sweep.score`
gives `claim_report`'s figures. Drawn polygons are not the served masks (largest contour,
simplified), so the sweep first reports how often the served rule, recomputed, gives the part
serving gave (`served_agreement`). Choose on val, never on test::

    python -m training.assign_sweep --split val --cache runs/eval/claim-rules-val.pkl \\
        --out runs/eval/assign-sweep-val.json
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from cdat.findings import PhotoAnalysis
from inference.assign import SERVED, AssignRule, assign_parts
from inference.part_family import placed_by_type
from inference.postprocess import grid_shape
from training.claim_eval import PART_NAMED, _polygon_mask
from training.errors import run_script
from training.eval_report import check_json_out, write_json
from training.outline_tally import RECALL_IOU
from training.rule_sweep import PhotoRecord, Rule, pass_sweep_parser, score, with_whole_car


@dataclass(frozen=True)
class GridMasks:
    """One photo's damage and part polygons drawn on its analysis grid, (N, gh, gw) bool."""

    damages: np.ndarray
    parts: np.ndarray


def grid_masks(analysis: PhotoAnalysis) -> GridMasks:
    gh, gw = grid_shape(analysis.width, analysis.height)
    # Polygons are in photo pixels; the grid is the photo scaled down.
    scale = np.array([gw / max(analysis.width, 1), gh / max(analysis.height, 1)])

    def draw(polygons: list[Any]) -> np.ndarray:
        masks = [
            _polygon_mask(np.asarray(p, np.float64).reshape(-1, 2) * scale, (gh, gw), False)
            for p in polygons
        ]
        return np.stack(masks) if masks else np.zeros((0, gh, gw), bool)

    return GridMasks(
        draw([d.polygon for d in analysis.damages]), draw([p.polygon for p in analysis.parts])
    )


def reassign(analysis: PhotoAnalysis, masks: GridMasks, rule: AssignRule) -> PhotoAnalysis:
    """The analysis with each damage's part chosen again by `rule` (and, as served, placed by
    its type where the masks give none); damages keep their order (the records' IoUs index
    them)."""
    damages = assign_parts(analysis.damages, masks.damages, analysis.parts, masks.parts, rule)
    damages = placed_by_type(damages, masks.damages, analysis.parts, masks.parts)
    return replace(analysis, damages=damages)


def served_agreement(records: Sequence[PhotoRecord], masks: Sequence[GridMasks]) -> float | None:
    """Share of damages whose part, recomputed from the polygons with the served rule, is the
    part serving gave: how far the offline sweep can be trusted."""
    same = total = 0
    for rec, m in zip(records, masks, strict=True):
        again = reassign(rec.analysis, m, SERVED).damages
        total += len(again)
        same += sum(a.part is d.part for a, d in zip(again, rec.analysis.damages, strict=True))
    return same / total if total else None


def priced_changes(records: Sequence[PhotoRecord], served: Rule) -> dict[str, Any]:
    """Per part-named source, what the assignment changes in an estimate: the share of the
    damages reported that are unlisted (unpriced: the claim goes to an adjuster), and of
    the regions found whose label names a listed part, the share called unlisted (wrong)."""
    out: dict[str, Any] = {}
    for source in PART_NAMED:
        kept = unlisted = listed_found = listed_as_unlisted = 0
        for rec in (r for r in records if r.source == source):
            analysis = served(rec.analysis)
            kept += len(analysis.damages)
            unlisted += sum(d.part is None for d in analysis.damages)
            ids = {id(d) for d in analysis.damages}
            index = [i for i, d in enumerate(rec.analysis.damages) if id(d) in ids]
            assert rec.ious is not None
            for outline, ious in zip(rec.outlines, rec.ious, strict=True):
                if outline.family is None or not outline.family.segmented or not index:
                    continue
                if ious[index].max() < RECALL_IOU:
                    continue
                listed_found += 1
                best = rec.analysis.damages[index[int(np.argmax(ious[index]))]]
                listed_as_unlisted += best.part is None
        out[source] = {
            "unlisted_damage_share": unlisted / kept if kept else None,
            "listed_found_called_unlisted": (
                listed_as_unlisted / listed_found if listed_found else None
            ),
        }
    return out


def rule_grid(
    min_overlaps: Sequence[float], min_engulfeds: Sequence[float], wheels: Sequence[float]
) -> list[AssignRule]:
    """Every combination; `min_engulfed` above 1 never engulfs (no fallback to a part)."""
    grid = itertools.product(min_overlaps, wheels, min_engulfeds)
    return [AssignRule(o, w, e) for o, w, e in grid]


def sweep(
    records: Sequence[PhotoRecord],
    masks: Sequence[GridMasks],
    grid: Sequence[AssignRule],
    served: Rule,
) -> list[dict[str, Any]]:
    rows = []
    for rule in grid:
        moved = [
            replace(rec, analysis=reassign(rec.analysis, m, rule))
            for rec, m in zip(records, masks, strict=True)
        ]
        figures = score(moved, served)
        rows.append(
            {
                "rule": asdict(rule),
                "damage_recall_iou30": figures["damage_recall_iou30"],
                "part_family_accuracy": figures["part_family_accuracy"],
                "per_family": {s: figures["per_source"][s].get("per_family") for s in PART_NAMED},
                "priced": priced_changes(moved, served),
            }
        )
    return rows


MIN_GAIN = 0.01
"""A candidate must beat the served rule's mean by this much: about one region of the 118
val close-ups either way is noise, not a better rule."""
MAX_DAMAGED_PARTS_DROP = 0.01


def mean_family(row: dict[str, Any]) -> float:
    values = [row["part_family_accuracy"][s] or 0.0 for s in PART_NAMED]
    return sum(values) / len(values)


def distance(rule: dict[str, float]) -> float:
    served = asdict(SERVED)
    return sum(abs(rule[k] - served[k]) for k in served)


def choose(rows: Sequence[dict[str, Any]]) -> dict[str, Any] | None:
    """The criterion, written down before the sweep was run: of the rules with the served
    rule's `damage_recall_iou30` on every source (assignment must not change what is found)
    and `damaged-parts` `part_family_accuracy` no lower than served by more than 0.01, the
    one with the highest mean `part_family_accuracy` over `car-parts-damage` and
    `damaged-parts` val; ties (to 1e-6) to the rule closest to the served one (sum of
    absolute differences). It replaces the served rule only if that mean beats the served
    rule's by at least `MIN_GAIN`; otherwise None (keep serving what is served)."""
    base = next(r for r in rows if r["rule"] == asdict(SERVED))
    floor = (base["part_family_accuracy"]["damaged-parts"] or 0.0) - MAX_DAMAGED_PARTS_DROP
    fit = [
        r
        for r in rows
        if r["damage_recall_iou30"] == base["damage_recall_iou30"]
        and (r["part_family_accuracy"]["damaged-parts"] or 0.0) >= floor - 1e-9
    ]
    best = max(fit, key=lambda r: (round(mean_family(r), 6), -distance(r["rule"])))
    if mean_family(best) < mean_family(base) + MIN_GAIN - 1e-9:
        return None
    return best


def get_args_parser(add_help: bool = True) -> argparse.ArgumentParser:
    parser = pass_sweep_parser(__doc__, add_help)
    parser.add_argument(
        "--served-conf",
        type=float,
        default=None,
        help="the damage model's served threshold (default: the promoted model's)",
    )
    parser.add_argument(
        "--min-overlap", type=float, nargs="+", default=[0.0, 0.1, 0.2, 0.3, 0.4, 0.5]
    )
    parser.add_argument(
        "--min-engulfed",
        type=float,
        nargs="+",
        default=[0.1, 0.2, 0.3, 0.5, 0.7, 1.01],
        help="1.01: no fallback to the part a wide damage engulfs",
    )
    parser.add_argument("--min-wheel-overlap", type=float, nargs="+", default=[0.4, 0.6, 0.8])
    return parser


def promoted_damage_entry() -> Any:
    """The served damage model's registry entry: its threshold and whole-car rule."""
    from cdat.settings import Settings
    from inference.registry import Registry

    return Registry.load(Settings().model_dir).promoted_entry("damage")


def promoted_model_file(task: str) -> Path:
    """The served model's file of a task: the layers a stage stored as a head reads."""
    from cdat.settings import Settings
    from inference.registry import Registry

    registry = Registry.load(Settings().model_dir)
    return registry.path_of(registry.promoted_entry(task))  # type: ignore[arg-type]


def main(args: argparse.Namespace) -> int:
    if args.split != "val":
        print("warning: choosing on test is not allowed; figures only", file=sys.stderr)
    from training.claim_rules import cached_records

    check_json_out(args.out)

    state, records, _ = cached_records(args.cache, args.split, args.seed, args.data_root)
    masks = [grid_masks(rec.analysis) for rec in records]
    damage = promoted_damage_entry()
    # the model's threshold and rule, without a verifier's extra damage (the pass has none)
    served_conf = args.served_conf or damage.base_conf
    served = with_whole_car(served_conf, damage.served_whole_car_rule)
    grid = rule_grid(args.min_overlap, args.min_engulfed, args.min_wheel_overlap)
    if SERVED not in grid:
        grid.append(SERVED)
    rows = sweep(records, masks, grid, served)
    chosen = choose(rows) if args.split == "val" else None
    out = {
        "split": args.split,
        "pass_conf": state["conf"],
        "served_conf": served_conf,
        "served_agreement": served_agreement(records, masks),
        # The cached parts as serving gave them (grid masks, not drawn polygons).
        "as_served": {k: v for k, v in score(records, served).items() if k != "per_source"},
        "criterion": choose.__doc__,
        "served": next(r for r in rows if r["rule"] == asdict(SERVED)),
        "chosen": chosen,
        "candidates": rows,
    }
    shown = ("served_agreement", "as_served", "served", "chosen")
    print(json.dumps({k: out[k] for k in shown}, indent=1))
    if args.out:
        write_json(args.out, out)
    return 0


if __name__ == "__main__":
    run_script(main, get_args_parser())
