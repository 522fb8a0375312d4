"""`python -m training.intact_folds`: intact cars measured out of fold, to choose a verifier's
rule on more of them than val holds.

Val holds 50 intact cars, so one car is 0.02 of `intact_photos_with_damage` and a whole-car
bar cannot be chosen on them. The 349 intact train cars can be measured too, if each is
scored by a verifier that never learnt from it: the cars are put in `--folds` folds by a
seeded permutation of their names (a car's close-up windows go with it), and
`training.verifier_tune --intact-fold K` makes a verifier that learns from none of fold K.
Each fold's cars and windows are then scored by their own fold's verifier, on the same train
pass's detections, under every rule of the grid `training.verifier_sweep` sweeps. The damage
model learnt these photos as background, so it proposes less on them than on photos it never
saw: the detector alone (threshold and whole-car rule, no verifier) is measured beside::

    for k in 0 1 2 3; do python -m training.verifier_tune --out runs/verifier/fold-$k.onnx \\
        --intact-closeups --cache runs/verifier/train-pass-closeups-s1.pkl --seed 1 \\
        --intact-fold $k; done
    python -m training.intact_folds --cache runs/verifier/train-pass-closeups-s1.pkl \\
        --verifiers runs/verifier/fold-{0,1,2,3}.onnx --whole-car-probabilities 0 0.8 0.9 \\
        0.95 0.99 --out runs/eval/intact-folds.json
    python -m training.verifier_sweep --split val --cache runs/eval/claim-rules-val-002.pkl \\
        --verifier <the verifier trained on every fold> --whole-car-probabilities 0 0.8 0.9 \\
        0.95 0.99 --criterion strict-intact --out-of-fold runs/eval/intact-folds.json

Fold verifiers of a candidate damage model read that model's layers: name it (`--backbone`,
with its `--whole-car-rule`), as for `training.verifier_sweep`. The served verifier's recipe
learnt no close-up windows, so its folds are measured on the cars alone::

    for k in 0 1 2 3; do python -m training.damage_verifier \\
        --out runs/verifier/head-fold-$k.onnx --intact-fold $k; done
    python -m training.intact_folds --cache runs/verifier/train-pass.pkl --cars-only \\
        --verifiers runs/verifier/head-fold-{0,1,2,3}.onnx --whole-car-probabilities 0 0.8 \\
        0.9 0.95 0.99 --out runs/eval/intact-folds-served.json
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from cdat.verified import VerifierRule
from training.claim_eval import INTACT_CLOSEUPS
from training.errors import TrainingError, run_script
from training.eval_report import check_json_out, write_json
from training.train_pass import TrainPhoto

FOLD_SEED = 0
"""Seed of the cars' permutation into folds: the same folds for every run that names them."""

MAX_INTACT = 0.05
"""Out-of-fold intact cars with damage a chosen rule may have (tenth session's criterion)."""
MAX_CLOSEUPS = 0.276
"""Out-of-fold intact close-ups with damage a chosen rule may have (the same criterion)."""

FIGURES = ("intact_photos_with_damage", "intact_closeups_with_damage")


def car_name(photo: TrainPhoto) -> str | None:
    """The intact car a photo shows (a close-up window is named `<car>-<n>`); None for a
    damage photo."""
    if photo.source == "car-parts":
        return photo.path.stem
    if photo.source == INTACT_CLOSEUPS:
        return photo.path.stem.rsplit("-", 1)[0]
    return None


def folds_of(photos: Sequence[TrainPhoto], folds: int) -> dict[str, int]:
    """Each intact car's fold, by a seeded permutation of the cars' names."""
    cars = sorted({name for p in photos if (name := car_name(p)) is not None})
    order = np.random.default_rng(FOLD_SEED).permutation(len(cars))
    return {cars[k]: rank % folds for rank, k in enumerate(order)}


def add_fold_options(parser: argparse.ArgumentParser, folds: int) -> None:
    """`--intact-fold` / `--intact-folds`, as every verifier training script takes them."""
    parser.add_argument("--intact-fold", type=int, default=None,
                        help="learn from none of this fold's intact cars or their close-ups, "
                        "to measure them out of fold (training/intact_folds.py)")  # fmt: skip
    parser.add_argument("--intact-folds", type=int, default=folds,
                        help="folds the intact train cars are put in")  # fmt: skip


def check_fold(fold: int | None, folds: int) -> None:
    """`--intact-fold` / `--intact-folds` as a training script takes them."""
    if folds < 2:
        raise TrainingError(f"--intact-folds {folds}: at least 2")
    if fold is not None and not 0 <= fold < folds:
        raise TrainingError(f"--intact-fold {fold}: a fold from 0 to {folds - 1}")


def split_fold(
    photos: Sequence[TrainPhoto], fold: int, folds: int
) -> tuple[list[TrainPhoto], list[TrainPhoto]]:
    """The photos a fold's verifier learns from (every damage photo, the other folds' cars),
    and the fold's intact photos it is measured on."""
    if not 0 <= fold < folds:
        raise TrainingError(f"fold {fold}: need 0 <= fold < {folds}")
    fold_of = folds_of(photos, folds)
    learn: list[TrainPhoto] = []
    held: list[TrainPhoto] = []
    for photo in photos:
        car = car_name(photo)
        (held if car is not None and fold_of[car] == fold else learn).append(photo)
    return learn, held


def rule_key(conf: float, rule: Mapping[str, Any] | None) -> str:
    """One key for a rule in the sweep's rows and in this script's."""
    return json.dumps({"conf": conf, "verifier": rule}, sort_keys=True)


def flagged(records: Sequence[Any], rule: Any) -> dict[str, float | None]:
    """The share of the intact cars and of their close-up windows with damage left by `rule`."""
    counts = {source: [0, 0] for source in ("car-parts", INTACT_CLOSEUPS)}
    for rec in records:
        counts[rec.source][0] += 1
        counts[rec.source][1] += bool(rule(rec.analysis).damages)
    return {
        figure: round(with_damage / photos, 4) if photos else None
        for figure, (photos, with_damage) in zip(FIGURES, counts.values(), strict=True)
    }


def figures_for(row: Mapping[str, Any], measured: Mapping[str, Any]) -> dict[str, Any] | None:
    """A sweep row's out-of-fold figures; None where its rule was not measured."""
    key = rule_key(row["conf"], row["verifier"])
    found = next((r for r in measured["rows"] if rule_key(r["conf"], r["verifier"]) == key), None)
    return None if found is None else {f: found[f] for f in FIGURES}


def within_bounds(
    rows: Sequence[dict[str, Any]], measured: Mapping[str, Any]
) -> list[dict[str, Any]]:
    """The sweep's rows a criterion may choose from: those without a verifier, and those
    whose rule was measured out of fold within `MAX_INTACT` and `MAX_CLOSEUPS`, each given
    its out-of-fold figures."""
    kept, matched = [], 0
    for row in rows:
        if row["verifier"] is None:
            kept.append(row)
            continue
        found = figures_for(row, measured)
        if found is None:
            continue
        matched += 1
        cars, closeups = (found[f] for f in FIGURES)
        if cars is not None and cars <= MAX_INTACT and (closeups or 0.0) <= MAX_CLOSEUPS:
            kept.append({**row, "out_of_fold": found})
    if not matched:
        raise TrainingError("--out-of-fold: it measured none of the swept rules")
    return kept


def summary(measured: Mapping[str, Any], path: Path) -> dict[str, Any]:
    """What a sweep chose by: the file, its bounds, and the figures beside the rules'."""
    shown = ("folds", "cars", "closeups", "detector_alone", "detector_and_whole_car_rule")
    return {"file": str(path), "criterion": within_bounds.__doc__,
            **{k: measured.get(k) for k in shown}}  # fmt: skip


def read_measured(path: Path) -> dict[str, Any]:
    """This script's output; anything else is a TrainingError."""
    try:
        measured = json.loads(path.read_text())
        rows = measured["rows"]
        if not all(isinstance(r["conf"], float) and set(FIGURES) <= set(r) for r in rows):
            raise TypeError("a row without its figures")
    except (OSError, ValueError, TypeError, KeyError) as exc:
        problem = f"--out-of-fold {path}: not training.intact_folds output ({exc})"
        raise TrainingError(problem) from None
    return dict(measured)


def get_args_parser(add_help: bool = True) -> argparse.ArgumentParser:
    from training.claims import whole_car_rule_arg
    from training.verifier_sweep import add_rule_grid_options

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0], add_help=add_help)
    parser.add_argument("--cache", type=Path, required=True,
                        help="the train pass the fold verifiers learnt from "
                        "(training.verifier_tune --cache)")  # fmt: skip
    parser.add_argument("--verifiers", type=Path, nargs="+", required=True,
                        help="one verifier per fold, in fold order (verifier_tune "
                        "--intact-fold K); their count is the number of folds")  # fmt: skip
    parser.add_argument("--cars-only", action="store_true",
                        help="the fold verifiers' recipe learnt no close-up windows "
                        "(training.damage_verifier without --intact-closeups), so their pass "
                        "holds none: measure the whole cars alone")  # fmt: skip
    parser.add_argument("--backbone", type=Path, default=None,
                        help="a candidate damage model's .onnx, which its fold verifiers read "
                        "(default: the served one)")  # fmt: skip
    parser.add_argument("--whole-car-rule", type=whole_car_rule_arg, default=None,
                        help="that candidate's own whole-car rule, JSON (cdat/whole_car.py); "
                        "default: the promoted model's")  # fmt: skip
    add_rule_grid_options(parser)
    parser.add_argument("--data-root", type=Path, default=None,
                        help="data sets folder (default: $CDAT_DATA_ROOT)")  # fmt: skip
    parser.add_argument("--out", type=Path, default=None, help="write the figures as JSON here")
    return parser


def main(args: argparse.Namespace) -> int:
    from inference.damage_verifier import DamageVerifier
    from training.assign_sweep import promoted_damage_entry, promoted_model_file
    from training.damage_verifier import VerifierHyperparameters
    from training.rule_sweep import PhotoRecord, with_whole_car
    from training.train_pass import cached_pass, detector_of, train_photos
    from training.verifier_sweep import probability_table, rule_grid, verified_rule

    check_json_out(args.out)
    if len(args.verifiers) < 2:
        raise TrainingError("--verifiers: one per fold, at least two")
    missing = [str(v) for v in args.verifiers if not v.is_file()]
    if missing:
        raise TrainingError(f"--verifiers: no such file: {', '.join(missing)}")
    if not args.cache.is_file():
        raise TrainingError(f"--cache {args.cache}: no such train pass")
    hp = VerifierHyperparameters(intact_closeups=not args.cars_only)
    every = train_photos(hp, args.data_root, args.cache.parent / "intact-closeups")
    photos = [p for p in every if car_name(p) is not None]
    analyses = cached_pass(photos, hp.pass_conf, args.cache, detector_of(None, hp.pass_conf))
    if analyses is None:  # read only: the pass is the fold verifiers' own, made by them
        raise TrainingError(
            f"--cache {args.cache}: holds no pass over the intact train cars by the promoted "
            f"damage model at {hp.pass_conf}; give the fold verifiers' own --cache"
        )
    damage = promoted_damage_entry()
    backbone = args.backbone or promoted_model_file("damage")
    records, table = [], {}
    for fold, path in enumerate(args.verifiers):
        verifier = DamageVerifier.load(path, VerifierRule(0.5, 0.5), backbone=backbone)
        _, held = split_fold(photos, fold, len(args.verifiers))
        held_records = [PhotoRecord(p.source, p.path.name, analyses[str(p.path)], path=p.path)
                        for p in held]  # fmt: skip
        table.update(probability_table(verifier, held_records))
        records += held_records
    whole_car = args.whole_car_rule or damage.served_whole_car_rule
    conf = damage.base_conf
    rows = []
    for floor, rule in rule_grid(conf, args.floors, args.min_probabilities,
                                 args.min_base_probabilities, args.max_overlaps,
                                 args.whole_car_probabilities):  # fmt: skip
        scored = flagged(records, verified_rule(table, floor, rule, whole_car))
        rows.append({"conf": floor, "verifier": rule.to_record(), **scored})
    out = {
        "folds": len(args.verifiers),
        "verifiers": [str(v) for v in args.verifiers],
        "cars": sum(r.source == "car-parts" for r in records),
        "closeups": sum(r.source == INTACT_CLOSEUPS for r in records),
        "detector_alone": flagged(records, with_whole_car(conf, None)),
        "detector_and_whole_car_rule": flagged(records, with_whole_car(conf, whole_car)),
        "rows": rows,
    }
    print(json.dumps({k: v for k, v in out.items() if k != "rows"}))
    if args.out:
        write_json(args.out, out)
    return 0


if __name__ == "__main__":
    run_script(main, get_args_parser())
