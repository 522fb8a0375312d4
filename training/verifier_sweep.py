"""`python -m training.verifier_sweep`: what the damage verifier keeps, chosen on one cached
pass and measured as a claim is.

The pass of `training.claim_rules --pass` at a low threshold (0.02) keeps every photo's
detections. The candidate verifier (`--verifier`, made by `training.damage_verifier`) answers
once for every detection of every photo that was not refused; each `VerifierRule` then keeps
what `cdat.verified.verified` keeps, its base being the promoted damage model's served
threshold and whole-car rule (`--whole-car-rule`: a candidate model's own), from a floor
(`--floors`: the threshold the model would be served at). `training.rule_sweep.score`
gives `claim_report`'s figures and `training.rule_sweep.choose_served` chooses, by the
criterion written for a threshold and rule chosen together (2026-12-02), against the served
threshold alone, over the rules that drop no overlapping damage; then, for that rule,
`choose_overlap` picks how much an added damage may overlap a surer one (`--max-overlaps`).
`--whole-car-probabilities` sweeps the bar for damage added on a whole-car view, and
`--criterion strict-intact` chooses by `choose_strict_intact` (2026-12-03). Choose on val::

    python -m training.claim_rules --split val --pass --conf 0.02 \\
        --cache runs/eval/claim-rules-val-002.pkl
    python -m training.verifier_sweep --split val --cache runs/eval/claim-rules-val-002.pkl \\
        --verifier runs/verifier/damage-verifier.onnx --out runs/eval/verifier-sweep-val.json
    python -m training.verifier_sweep --split val --cache runs/eval/claim-rules-val-002.pkl \\
        --verifier inference/models/damage-verifier-20261202-head.onnx \\
        --whole-car-probabilities 0 0.8 0.9 0.95 0.99 --criterion strict-intact
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from cdat.findings import PhotoAnalysis
from cdat.verified import VerifierRule, verified
from cdat.whole_car import WholeCarRule, is_whole_car_view
from inference.damage_verifier import DamageVerifier
from training.assign_sweep import promoted_damage_entry, promoted_model_file
from training.claims import whole_car_rule_arg
from training.errors import TrainingError, run_script
from training.eval_report import check_json_out, write_json
from training.intact_folds import figures_for, read_measured, summary, within_bounds
from training.rule_sweep import (
    OUTLINED,
    PhotoRecord,
    Rule,
    choose_served,
    choose_strict_intact,
    pass_sweep_parser,
    score,
    with_whole_car,
)

Table = dict[int, np.ndarray]
"""id(analysis) -> the verifier's probability for each of its detections."""


def probability_table(
    verifier: DamageVerifier, records: Sequence[PhotoRecord], floor: float = 0.0
) -> Table:
    """The verifier's answer for every detection at or above `floor` (NaN below it), the
    photo's detections from `floor` being those a `cluster` verifier counts, as serving at
    that threshold would."""
    from training.vehicle_gate import decode_photo_scaled

    out: Table = {}
    for rec in records:
        analysis = rec.analysis
        if not analysis.damages or analysis.refused_no_vehicle:
            continue
        image, scale = decode_photo_scaled(rec.photo_bytes(), rec.name)
        size = (analysis.width, analysis.height)
        index = [k for k, d in enumerate(analysis.damages) if d.confidence >= floor]
        found = [analysis.damages[k] for k in index]
        p = np.full(len(analysis.damages), np.nan, np.float32)
        p[index] = verifier.probabilities(image, scale, found, analysis.parts, *size)
        out[id(analysis)] = p
    return out


def floor_tables(
    verifier: DamageVerifier, records: Sequence[PhotoRecord], floors: Sequence[float]
) -> dict[float, Table]:
    """One table for every floor; a verifier that counts the photo's detections answers
    differently from each floor, any other once for all."""
    if not verifier.cluster:
        table = probability_table(verifier, records)
        return dict.fromkeys(floors, table)
    return {floor: probability_table(verifier, records, floor) for floor in floors}


def verified_rule(
    table: Table, floor: float, rule: VerifierRule, whole_car: WholeCarRule | None
) -> Rule:
    """Serving with the verifier, from a pass made at or under `floor`."""
    base = with_whole_car(rule.base_conf, whole_car)

    def apply(analysis: PhotoAnalysis) -> PhotoAnalysis:
        found = tuple(d for d in analysis.damages if d.confidence >= floor)
        p = table.get(id(analysis))
        if p is None or not found:
            return base(analysis)
        index = [k for k, d in enumerate(analysis.damages) if d.confidence >= floor]
        kept_by_base = {id(d) for d in base(analysis).damages}
        base_kept = [id(d) in kept_by_base for d in found]
        size = (analysis.width, analysis.height)
        view = whole_car is not None and is_whole_car_view(
            analysis.parts, *size, whole_car, analysis.whole_car_view_probability
        )
        kept = verified(found, p[index].tolist(), base_kept, rule, view)
        return replace(analysis, damages=kept)

    return apply


def row(records: Sequence[PhotoRecord], rule: Rule, **described: Any) -> dict[str, Any]:
    """The figures `choose_served` reads, beside what the candidate is."""
    figures = score(records, rule)
    sources = [figures["per_source"][s] for s in OUTLINED]
    photos = sum(f["photos"] for f in sources)
    reported = sum(f["photos"] * (f["damages_per_photo"] or 0.0) for f in sources)
    return {
        **described,
        "damages_per_damage_photo": round(reported / max(photos, 1), 4),
        **{k: v for k, v in figures.items() if k != "per_source"},
        "severe_damage_recall_iou30": {
            s: figures["per_source"][s].get("severe_damage_recall_iou30")
            for s in ("damaged-parts", "damage-severity")
        },
        "damage_precision_iou30": {
            s: figures["per_source"][s]["damage_precision_iou30"] for s in OUTLINED
        },
    }


def rule_grid(
    conf: float,
    floors: Sequence[float],
    min_probabilities: Sequence[float],
    min_base_probabilities: Sequence[float],
    max_overlaps: Sequence[float] = (1.0,),
    whole_car_probabilities: Sequence[float] = (0.0,),
) -> list[tuple[float, VerifierRule]]:
    """Every (floor, rule) of the grid, stricter first, the threshold being `conf`."""
    grid = itertools.product(
        sorted(floors, reverse=True),
        sorted(min_probabilities, reverse=True),
        sorted(min_base_probabilities, reverse=True),
        sorted(max_overlaps, reverse=True),
        sorted(whole_car_probabilities, reverse=True),
    )
    return [(floor, VerifierRule(conf, p, base_p, overlap, whole_car_p))
            for floor, p, base_p, overlap, whole_car_p in grid]  # fmt: skip


def sweep(
    records: Sequence[PhotoRecord],
    tables: Mapping[float, Table],
    floors: Sequence[float],
    min_probabilities: Sequence[float],
    min_base_probabilities: Sequence[float],
    max_overlaps: Sequence[float] = (1.0,),
    whole_car: WholeCarRule | None = None,
    whole_car_probabilities: Sequence[float] = (0.0,),
) -> list[dict[str, Any]]:
    """The served threshold alone (the criterion's base), the served rule, then every
    candidate; stricter candidates first, so that equal ones resolve to the stricter.
    `tables` gives the verifier's answers from each floor (`floor_tables`); `whole_car`, a
    candidate model's own whole-car rule, replaces the promoted model's in every row;
    `whole_car_probabilities`, the verifier's bars for damage added on a whole-car view."""
    damage = promoted_damage_entry()
    conf = damage.base_conf
    whole_car = whole_car or damage.served_whole_car_rule
    record = None if whole_car is None else whole_car.to_record()
    rows = [
        row(records, with_whole_car(conf, None), conf=conf, whole_car=None, verifier=None),
        row(records, with_whole_car(conf, whole_car), conf=conf, whole_car=record, verifier=None),
    ]
    grid = rule_grid(conf, floors, min_probabilities, min_base_probabilities, max_overlaps,
                     whole_car_probabilities)  # fmt: skip
    for floor, rule in grid:
        rows.append(
            row(records, verified_rule(tables[floor], floor, rule, whole_car),
                conf=floor, whole_car=record, verifier=rule.to_record())
        )  # fmt: skip
    return rows


def choose_overlap(rows: Sequence[dict[str, Any]], chosen: dict[str, Any]) -> dict[str, Any]:
    """The criterion for `max_overlap`, written before its first sweep was run (2026-12-02):
    of the candidates that differ from `chosen` (a rule that drops no overlapping damage) only
    in `max_overlap`, the lowest whose val `damage_recall_iou30` on every damage source and
    severe recall on `damaged-parts` are each at most `MAX_OVERLAP_LOSS` below `chosen`'s:
    fewer names for the same damage, for (almost) the same damage found."""

    def same_but_overlap(row: dict[str, Any]) -> bool:
        if row["verifier"] is None or row["conf"] != chosen["conf"]:
            return False
        if row["whole_car"] != chosen["whole_car"]:
            return False
        return {**row["verifier"], "max_overlap": 1.0} == chosen["verifier"]

    def holds(row: dict[str, Any]) -> bool:
        pairs = [
            (row["damage_recall_iou30"][s], chosen["damage_recall_iou30"][s]) for s in OUTLINED
        ]
        severe = ("severe_damage_recall_iou30", "damaged-parts")
        pairs.append((row[severe[0]][severe[1]] or 0.0, chosen[severe[0]][severe[1]] or 0.0))
        return all(new >= old - MAX_OVERLAP_LOSS for new, old in pairs)

    fit = [r for r in rows if same_but_overlap(r) and holds(r)]
    return min(fit, key=lambda r: r["verifier"]["max_overlap"], default=chosen)


MAX_OVERLAP_LOSS = 0.01


def final_choice(
    rows: Sequence[dict[str, Any]], chosen: dict[str, Any], measured: Mapping[str, Any] | None
) -> dict[str, Any]:
    """`choose_overlap`'s pick for `chosen`, with its out-of-fold figures where the sweep was
    chosen within them (`--out-of-fold`)."""
    final = choose_overlap(rows, chosen)
    if measured is None or final["verifier"] is None:
        return final
    return {**final, "out_of_fold": figures_for(final, measured)}


CRITERIA = {"served": choose_served, "strict-intact": choose_strict_intact}


def served_rule_row(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The row of the promoted model's own verifier rule, from its own floor (with the
    verifier swept: the served rule, if that is the served verifier)."""
    damage = promoted_damage_entry()
    stage = damage.served_verifier
    record = None if stage is None else stage.rule.to_record()
    found = [r for r in rows if r["conf"] == damage.served_conf and r["verifier"] == record]
    if stage is None or not found:
        raise TrainingError(
            "the served verifier rule is not among the candidates: sweep its floor "
            f"({damage.served_conf}) and bars ({record})"
        )
    return found[0]


def get_args_parser(add_help: bool = True) -> argparse.ArgumentParser:
    parser = pass_sweep_parser(__doc__, add_help)
    parser.add_argument("--verifier", type=Path, required=True,
                        help="the verifier's .onnx (training.damage_verifier)")  # fmt: skip
    parser.add_argument("--backbone", type=Path, default=None,
                        help="the damage model a verifier stored as a head reads (default: "
                        "the served one)")  # fmt: skip
    add_rule_grid_options(parser)
    parser.add_argument("--whole-car-rule", type=whole_car_rule_arg, default=None,
                        help="a candidate model's own whole-car rule, JSON (cdat/whole_car.py), "
                        "chosen for it by `training.claim_rules --choose threshold-and-rule`; "
                        "default: the promoted model's")  # fmt: skip
    parser.add_argument("--criterion", choices=sorted(CRITERIA), default="served",
                        help="served: `choose_served`; strict-intact: `choose_strict_intact`, "
                        "for the whole-car bar (2026-12-03)")  # fmt: skip
    parser.add_argument("--out-of-fold", type=Path, default=None,
                        help="`training.intact_folds` output: only rules within its bounds on "
                        "the intact train cars, out of fold, are chosen from")  # fmt: skip
    return parser


def add_rule_grid_options(parser: argparse.ArgumentParser) -> None:
    """The verifier rules swept: the same options wherever a rule grid is scored."""
    parser.add_argument("--floors", type=float, nargs="+", default=[0.02, 0.03, 0.05],
                        help="thresholds the damage model would be served at")  # fmt: skip
    parser.add_argument("--min-probabilities", type=float, nargs="+",
                        default=[0.5, 0.6, 0.7, 0.8, 0.9, 0.95],
                        help="verifier probability keeping damage under the threshold")  # fmt: skip
    parser.add_argument("--min-base-probabilities", type=float, nargs="+",
                        default=[0.0, 0.1, 0.2, 0.3],
                        help="verifier probability under which kept damage is dropped")  # fmt: skip
    parser.add_argument("--max-overlaps", type=float, nargs="+", default=[1.0],
                        help="box IoU with a surer damage above which added damage is "
                        "dropped (1: never)")  # fmt: skip
    parser.add_argument("--whole-car-probabilities", type=float, nargs="+", default=[0.0],
                        help="verifier probability damage added on a whole-car view needs "
                        "(0: as on a close-up)")  # fmt: skip


def check_bars(args: argparse.Namespace) -> None:
    """Each bar option checked as a rule would check it, the error naming the option."""
    options = (
        ("--min-probabilities / --min-base-probabilities",
         (*args.min_probabilities, *args.min_base_probabilities),
         lambda v: VerifierRule(0.5, v, 0.0)),
        ("--max-overlaps", args.max_overlaps, lambda v: VerifierRule(0.5, 0.5, 0.0, v)),
        ("--whole-car-probabilities", args.whole_car_probabilities,
         lambda v: VerifierRule(0.5, 0.5, 0.0, 1.0, v)),
    )  # fmt: skip
    for name, values, rule in options:
        try:
            for value in values:
                rule(value)
        except ValueError as exc:
            raise TrainingError(f"{name}: {exc}") from None


def check_served_rule_swept(args: argparse.Namespace) -> None:
    """`--criterion strict-intact` reads the promoted rule's row as its close-up ceiling:
    the grid must hold that rule, checked before minutes of sweeping, not after."""
    damage = promoted_damage_entry()
    stage = damage.served_verifier
    if stage is None:
        raise TrainingError(
            "--criterion strict-intact: the promoted damage model is served without a "
            "verifier, so there is no served rule to bound intact close-ups by"
        )
    rule = stage.rule
    wanted = (
        ("--floors", damage.served_conf, args.floors),
        ("--min-probabilities", rule.min_probability, args.min_probabilities),
        ("--min-base-probabilities", rule.min_base_probability, args.min_base_probabilities),
        ("--max-overlaps", rule.max_overlap, args.max_overlaps),
        ("--whole-car-probabilities", rule.whole_car_probability, args.whole_car_probabilities),
    )
    missing = [f"{name} {value}" for name, value, grid in wanted if value not in grid]
    if missing:
        raise TrainingError(
            "--criterion strict-intact: the served rule must be swept too; add "
            + ", ".join(missing)
        )


def main(args: argparse.Namespace) -> int:
    if args.split != "val":
        print("warning: choosing on test is not allowed; figures only", file=sys.stderr)
    from training.claim_rules import cached_records

    check_json_out(args.out)
    if not args.verifier.is_file():
        raise TrainingError(f"--verifier {args.verifier}: no such file")
    measured = None if args.out_of_fold is None else read_measured(args.out_of_fold)
    backbone = args.backbone or promoted_model_file("damage")
    verifier = DamageVerifier.load(  # before the pass
        args.verifier, VerifierRule(0.5, 0.5), backbone=backbone
    )
    state, records, _ = cached_records(args.cache, args.split, args.seed, args.data_root)
    if any(f < state["conf"] for f in args.floors):
        raise TrainingError(f"--floors: the pass was made at {state['conf']}; none may be lower")
    check_bars(args)
    if args.split == "val" and args.criterion == "strict-intact":
        check_served_rule_swept(args)
    tables = floor_tables(verifier, records, args.floors)
    rows = sweep(records, tables, args.floors, args.min_probabilities,
                 args.min_base_probabilities, args.max_overlaps, args.whole_car_rule,
                 args.whole_car_probabilities)  # fmt: skip
    served_conf = rows[0]["conf"]
    unmerged = [r for r in rows if r["verifier"] is None or r["verifier"]["max_overlap"] == 1.0]
    if measured is not None:
        unmerged = within_bounds(unmerged, measured)
    criterion = CRITERIA[args.criterion]
    chosen = None
    if args.split == "val" and args.criterion == "strict-intact":
        chosen = choose_strict_intact(unmerged, served_conf, served_rule_row(rows))
    elif args.split == "val":
        chosen = choose_served(unmerged, served_conf)
    out = {
        "split": args.split,
        "pass_conf": state["conf"],
        "verifier": str(args.verifier),
        "criterion": criterion.__doc__,
        "out_of_fold": None if measured is None else summary(measured, args.out_of_fold),
        "threshold_alone": rows[0],
        "served": rows[1],
        "overlap_criterion": choose_overlap.__doc__,
        "chosen": None if chosen is None else final_choice(rows, chosen, measured),
        "candidates": rows,
    }
    shown = ("damage_recall_iou30", "intact_photos_with_damage", "intact_closeups_with_damage",
             "part_family_accuracy", "damages_per_damage_photo", "out_of_fold")  # fmt: skip
    for name in ("served", "chosen"):
        chosen = out[name] or {}
        print(name, json.dumps({k: chosen.get(k) for k in ("conf", "verifier", *shown)}))
    if args.out:
        write_json(args.out, out)
    return 0


if __name__ == "__main__":
    run_script(main, get_args_parser())
