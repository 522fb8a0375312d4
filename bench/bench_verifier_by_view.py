"""Would the damage verifier find more, and less where there is none, if it were chosen by view?

The served verifier (a head on the damage model's layers) holds intact whole cars; the
fine-tuned one (`training.verifier_tune --intact-closeups`) finds more damage and far less on
intact close-ups, but flags more intact whole cars. The photo's view is known before either
answers (`cdat.whole_car.is_whole_car_view`, the served whole-car rule), so a whole-car
view's detections can be read by the served verifier and every other photo's by the
`--closeup-verifier`, at the served rule. This measures that on a cached claim pass (val
only: `training.claim_rules --split val --pass`), beside each verifier alone at the same
rule, as `training.verifier_sweep` scores a rule; nothing is chosen::

    CDAT_DATA_ROOT=../shared/datasets .venv/bin/python bench/bench_verifier_by_view.py \\
        --cache runs/eval/claim-rules-val-002.pkl \\
        --closeup-verifier runs/verifier/verifier-tuned-closeups-s1-half.onnx

A whole-car verifier of one's own (fitted on a second look's detections, say) is read at
each whole-car bar asked, the close-ups at a rule of their own (`--whole-car-verifier`,
`--whole-car-probabilities`, `--closeup-rule`): one `by_view_bar_<bar>` row each. Views read
by other whole-car rules (`--whole-car-rules`, for a candidate part model's pass): one
`by_view_rule_<rule>` row each.

Prints each way's figures and writes bench/results/verifier_by_view.json (a few minutes on
the 2-core CPU, most of it the two verifiers reading every detection's crop).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from cdat.verified import VerifierRule  # noqa: E402
from cdat.whole_car import WholeCarRule, is_whole_car_view  # noqa: E402
from training.claims import verifier_rule_arg, whole_car_rule_arg  # noqa: E402
from training.rule_sweep import PhotoRecord, Rule  # noqa: E402
from training.verifier_sweep import Table  # noqa: E402

SHOWN = ("damage_recall_iou30", "intact_photos_with_damage", "intact_closeups_with_damage",
         "part_family_accuracy", "damages_per_damage_photo")  # fmt: skip


def whole_car_views(records: Sequence[PhotoRecord], rule: WholeCarRule) -> dict[int, bool]:
    """id(analysis) -> whether the photo is a whole-car view by `rule`."""
    return {
        id(rec.analysis): is_whole_car_view(
            rec.analysis.parts,
            rec.analysis.width,
            rec.analysis.height,
            rule,
            rec.analysis.whole_car_view_probability,
        )
        for rec in records
    }


def served_by_view(
    whole_car: Table,
    closeup: Table,
    records: Sequence[PhotoRecord],
    rule: WholeCarRule,
    verifier_rule: VerifierRule,
    floor: float,
) -> Rule:
    """Serving by view with the views read by `rule`: a whole-car view's detections answered
    by the whole-car verifier (under its bar, and the rule's own), every other photo's by
    the close-up verifier."""
    from training.verifier_sweep import verified_rule

    views = whole_car_views(records, rule)
    return verified_rule(by_view(whole_car, closeup, views), floor, verifier_rule, rule)


def by_view(whole_car: Table, closeup: Table, views: dict[int, bool]) -> Table:
    """Each photo's answers from the whole-car verifier on a whole-car view, else from the
    close-up verifier."""
    return {key: whole_car[key] if views[key] else closeup[key] for key in whole_car}


CLOSEUP_MIN_PROBABILITIES = (0.3, 0.4, 0.5, 0.6, 0.7)
CLOSEUP_MIN_BASE_PROBABILITIES = (0.0, 0.05, 0.1, 0.2, 0.3)
MAX_INTACT_CARS = 0.02
MAX_INTACT_CLOSEUPS = 0.20


def by_view_rule(whole_car: Rule, closeup: Rule, views: dict[int, bool]) -> Rule:
    """Each photo served by the whole-car view's rule or by the close-ups' rule."""
    return lambda analysis: (whole_car if views[id(analysis)] else closeup)(analysis)


def mean_found(row: dict[str, Any]) -> float:
    found = row["damage_recall_iou30"]
    return sum(found.values()) / len(found)


def choose_closeup_rule(rows: Sequence[dict[str, Any]]) -> dict[str, Any] | None:
    """The criterion written before the sweep (docs/model-experiments.md, "A rule of its
    own for the close-up verifier"): of the rows within the intact bounds, the highest mean
    damage found, then the fewest intact close-ups with damage (None: no row is within)."""
    fit = [
        r for r in rows
        if r["intact_photos_with_damage"] <= MAX_INTACT_CARS
        and r["intact_closeups_with_damage"] <= MAX_INTACT_CLOSEUPS
    ]  # fmt: skip
    return max(fit, key=lambda r: (mean_found(r), -r["intact_closeups_with_damage"]), default=None)


def views_per_source(records: Sequence[PhotoRecord], views: dict[int, bool]) -> dict[str, Any]:
    """How many photos of each source are whole-car views: the share each verifier reads."""
    counts = Counter((rec.source, views[id(rec.analysis)]) for rec in records)
    sources = sorted({rec.source for rec in records})
    return {s: {"photos": counts[s, True] + counts[s, False], "whole_car_views": counts[s, True]}
            for s in sources}  # fmt: skip


def get_args_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cache", type=Path, required=True,
                        help="a val pass (`training.claim_rules --split val --pass`)")  # fmt: skip
    parser.add_argument("--closeup-verifier", type=Path, required=True,
                        help="the verifier read on photos not of a whole car")  # fmt: skip
    parser.add_argument("--seed", type=int, default=0, help="the sets' re-split seed (the pass's)")
    parser.add_argument("--data-root", type=Path, default=None,
                        help="data sets folder (default: $CDAT_DATA_ROOT)")  # fmt: skip
    parser.add_argument("--sweep-closeup-rule", action="store_true",
                        help="also serve close-ups at each rule of the grid "
                        "(min_probability x min_base_probability) and choose one by "
                        "`choose_closeup_rule`")  # fmt: skip
    parser.add_argument("--whole-car-verifier", type=Path, default=None,
                        help="the verifier read on whole-car views (default: the "
                        "promoted damage model's), e.g. one fitted on a second look's "
                        "own detections")  # fmt: skip
    parser.add_argument("--whole-car-probabilities", type=float, nargs="+", default=None,
                        help="also serve whole-car views at each of these bars (the "
                        "rule's whole_car_probability), close-ups at --closeup-rule: one "
                        "row each")  # fmt: skip
    parser.add_argument("--closeup-rule", type=verifier_rule_arg, default=None,
                        help="the close-up verifier's rule in the bar rows, JSON "
                        "(cdat/verified.py; default: the served rule)")  # fmt: skip
    parser.add_argument("--whole-car-rules", type=whole_car_rule_arg, nargs="+", default=None,
                        help="also serve by view with the views read by each of these "
                        "whole-car rules, JSON (cdat/whole_car.py), e.g. "
                        "'{\"min_parts\": 7, \"whole_car_conf\": 0.2}': one row each. A "
                        "candidate part model's pass (training.claim_rules --parts) sees "
                        "other parts, so other photos read as whole cars")  # fmt: skip
    parser.add_argument("--out", type=Path, default=REPO / "bench/results/verifier_by_view.json",
                        help="where the figures are written (.json)")  # fmt: skip
    return parser


def main(args: argparse.Namespace) -> int:
    from cdat.settings import Settings
    from inference.damage_verifier import DamageVerifier
    from training.assign_sweep import promoted_damage_entry, promoted_model_file
    from training.claim_rules import cached_records
    from training.errors import TrainingError
    from training.eval_report import check_json_out, write_json
    from training.verifier_sweep import floor_tables, row, verified_rule

    check_json_out(args.out)
    for option, path in (("--closeup-verifier", args.closeup_verifier),
                         ("--whole-car-verifier", args.whole_car_verifier)):  # fmt: skip
        if path is not None and not path.is_file():
            raise TrainingError(f"{option} {path}: no such file")
    if args.closeup_rule is not None and not args.whole_car_probabilities:
        raise TrainingError(
            "--closeup-rule serves the rows of --whole-car-probabilities: give both"
        )
    for bar in args.whole_car_probabilities or []:
        if not 0.0 <= bar <= 1.0:
            raise TrainingError(f"--whole-car-probabilities {bar}: need 0 <= p <= 1")
    damage = promoted_damage_entry()
    stage, whole_car = damage.served_verifier, damage.served_whole_car_rule
    if stage is None or whole_car is None:
        raise TrainingError("the promoted damage model is served without a verifier or rule")
    closeup_rule = args.closeup_rule or stage.rule
    if closeup_rule.base_conf != stage.rule.base_conf:
        raise TrainingError(
            f"--closeup-rule: base_conf {closeup_rule.base_conf} is not the served rule's "
            f"{stage.rule.base_conf} (one pass serves both)"
        )
    backbone = promoted_model_file("damage")
    whole_path = args.whole_car_verifier or Settings().model_dir / stage.file
    served = DamageVerifier.load(whole_path, stage.rule, backbone=backbone)
    closeup = DamageVerifier.load(args.closeup_verifier, stage.rule, backbone=backbone)
    state, records, _ = cached_records(args.cache, "val", args.seed, args.data_root)
    floor = damage.served_conf
    if floor < state["conf"]:
        raise TrainingError(f"--cache: made at {state['conf']}, above the served {floor}")
    views = whole_car_views(records, whole_car)
    views_of: dict[str, Any] = {}
    tables = {
        "served": floor_tables(served, records, [floor])[floor],
        "closeup": floor_tables(closeup, records, [floor])[floor],
    }
    tables["by_view"] = by_view(tables["served"], tables["closeup"], views)
    rows = {
        name: row(records, verified_rule(table, floor, stage.rule, whole_car))
        for name, table in tables.items()
    }
    for bar in args.whole_car_probabilities or []:
        whole_rule = replace(stage.rule, whole_car_probability=bar)
        rows[f"by_view_bar_{bar}"] = row(records, by_view_rule(
            verified_rule(tables["served"], floor, whole_rule, whole_car),
            verified_rule(tables["closeup"], floor, closeup_rule, whole_car), views))  # fmt: skip
    for asked in args.whole_car_rules or []:
        named = json.dumps(asked.to_record(), sort_keys=True)
        served_rule = served_by_view(tables["served"], tables["closeup"], records, asked,
                                     stage.rule, floor)  # fmt: skip
        rows[f"by_view_rule_{named}"] = row(records, served_rule)
        views_of[named] = views_per_source(records, whole_car_views(records, asked))
    sweep: list[dict[str, Any]] = []
    if args.sweep_closeup_rule:
        whole_rule = verified_rule(tables["served"], floor, stage.rule, whole_car)
        for p_add in CLOSEUP_MIN_PROBABILITIES:
            for p_base in CLOSEUP_MIN_BASE_PROBABILITIES:
                rule = replace(stage.rule, min_probability=p_add, min_base_probability=p_base)
                close_rule = verified_rule(tables["closeup"], floor, rule, whole_car)
                figures = row(records, by_view_rule(whole_rule, close_rule, views))
                sweep.append({"closeup_rule": rule.to_record(),
                              **{k: figures.get(k) for k in SHOWN}})  # fmt: skip
                print("close-ups at", p_add, p_base, json.dumps(sweep[-1]))
    chosen = choose_closeup_rule(sweep) if sweep else None
    out = {
        "cache": str(args.cache),
        "rule": stage.rule.to_record(),
        "floor": floor,
        "whole_car_rule": whole_car.to_record(),
        "served_verifier": str(whole_path),
        "closeup_rule": closeup_rule.to_record(),
        "closeup_verifier": str(args.closeup_verifier),
        "views": views_per_source(records, views),
        **({"views_by_rule": views_of} if views_of else {}),
        "rows": {name: {k: r.get(k) for k in SHOWN} for name, r in rows.items()},
        **({"closeup_rule_sweep": sweep, "closeup_rule_chosen": chosen} if sweep else {}),
    }
    if sweep:
        print("chosen:", json.dumps(chosen))
    for name, r in out["rows"].items():
        print(name, json.dumps(r))
    write_json(args.out, out)
    return 0


if __name__ == "__main__":
    from training.errors import run_script

    run_script(main, get_args_parser())
