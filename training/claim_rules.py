"""`python -m training.claim_rules`: served damage rules compared from one pass over a split.

`cdat claims --damage-conf` compares global thresholds; a rule that needs more than a
damage's own score (how much of the frame the car's parts fill, the part a damage lies on)
is compared here. The served analyzer runs once over the split at the lowest threshold
(`--pass`, analyses pickled under `runs/`); each candidate rule is then applied to the
cached analyses and measured by `training.claim_eval.claim_report`, as a claim is. Choose
on val, never on test::

    python -m training.claim_rules --split val --pass --conf 0.1 \\
        --cache runs/eval/claim-rules-val.pkl
    python -m training.claim_rules --split val --cache runs/eval/claim-rules-val.pkl \\
        --out runs/eval/claim-rules-val.json

A candidate damage model gets its threshold and rule chosen together, from a pass of its own::

    python -m training.claim_rules --split val --pass --conf 0.1 --damage runs/new.onnx \\
        --severity inference/models/damage-type-seg-n-20261127.severity.json \\
        --cache runs/eval/claim-rules-new-val.pkl
    python -m training.claim_rules --split val --cache runs/eval/claim-rules-new-val.pkl \\
        --choose threshold-and-rule --out runs/eval/claim-rules-new-val.json

A candidate part model moves which photos the whole-car rule reads as whole cars, and so
which verifier reads them (docs/model-experiments.md, twenty-second session): its pass is
made the same way, and read by `bench/bench_verifier_by_view.py` and the sweeps::

    python -m training.claim_rules --split val --pass --conf 0.02 --parts runs/parts-new.onnx \
        --cache runs/eval/claim-rules-parts-new-val.pkl
"""

from __future__ import annotations

import argparse
import json
import pickle
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from cdat.findings import PhotoAnalysis
from cdat.whole_car import WholeCarRule
from training.claim_eval import check_sources, claim_report
from training.errors import TrainingError, run_script
from training.eval_report import check_json_out, write_json
from training.rule_sweep import (
    Candidate,
    PhotoRecord,
    Rule,
    build_records,
    candidates,
    choose,
    choose_served,
    photo_key,
    score,
    sweep,
)


class Recorder:
    """The served analyzer, each answer kept by the photo's bytes."""

    def __init__(self, analyzer: Any) -> None:
        self.analyzer = analyzer
        self.cache: dict[str, PhotoAnalysis] = {}

    def analyze(self, photos: Sequence[Any]) -> list[PhotoAnalysis]:
        out = []
        for photo in photos:
            key = photo_key(photo.data)
            if key not in self.cache:
                self.cache[key] = self.analyzer.analyze([photo])[0]
            out.append(self.cache[key])
        return out


class Replay:
    """Cached analyses answered through a candidate rule, as if it were served."""

    def __init__(self, cache: dict[str, PhotoAnalysis], rule: Rule) -> None:
        self.cache = cache
        self.rule = rule

    def analyze(self, photos: Sequence[Any]) -> list[PhotoAnalysis]:
        return [self.rule(self.cache[photo_key(photo.data)]) for photo in photos]


def pass_settings(conf: float, **given: Any) -> Any:
    """The promoted models as a pass sees them: damage reported from `conf`, with no
    whole-car rule, no damage verifier and no part-family stage, since every rule compared
    afterwards (the served one among them; `training.verifier_sweep` for a verifier,
    `training.family_sweep` and `training.assign_sweep` re-choosing parts from the masks) is
    applied to what it keeps."""
    from cdat.settings import Settings

    raw = {"damage_whole_car": False, "damage_verifier": False, "part_family": False}
    return Settings(damage_conf=conf, **{**raw, **given})


def pass_analyzer(
    settings: Any,
    damage: Path | None = None,
    severity: Path | None = None,
    parts: Path | None = None,
    gate: Path | None = None,
) -> Any:
    """The analyzer of a pass (`settings` from `pass_settings`): the promoted models, or the
    candidate `damage` (with its `severity` stage) in the damage model's place and the
    candidate `parts` in the part model's (at the served parts threshold), and no stage for
    either, so that a candidate's pass is compared with the promoted model's like for like
    (a candidate once kept the promoted part-family stage, and its "masks alone" figures
    were the stage's). A part model moves more than parts: the whole-car rule counts them,
    and with it which verifier reads a photo. A candidate `gate` (training/view_head.py's
    file: the promoted gate's vehicle head and a view head) replaces the promoted gate, at its
    threshold, so each analysis carries the candidate's reading of the view. Looks the
    promoted entry takes only where the verified first look finds damage
    (`zoom_look_where_found`, `middle_look_where_found`, `detector_where_found`,
    `corner_looks_where_found`) are left out: a pass is what the verifiers and rules judge,
    and those looks come after their verdict (a pass asks for the zoomed-out look by name:
    training/train_pass.py)."""
    from inference.loading import build_analyzer
    from inference.severity import SeverityModel
    from training.claims import candidate_gate, candidate_model, without_looks_again

    analyzer = build_analyzer(settings)
    entry = analyzer.damage.entry
    again = (entry.zoom_look_where_found, entry.middle_look_where_found,
             entry.detector_where_found, entry.corner_looks_where_found)  # fmt: skip
    if any(again):
        analyzer.damage = without_looks_again(analyzer.damage)
    if damage is not None:
        stage = None if severity is None else SeverityModel.load(severity)
        analyzer.damage = candidate_model(damage, "damage", settings, settings.damage_conf, stage)
        analyzer.placer = None
    if parts is not None:
        analyzer.parts = candidate_model(parts, "parts", settings, settings.parts_conf)
    if gate is not None:
        analyzer.gate = candidate_gate(gate, analyzer.gate)
    return analyzer


def one_pass(
    split: str,
    conf: float,
    seed: int,
    data_root: Path | None,
    damage: Path | None = None,
    severity: Path | None = None,
    parts: Path | None = None,
    gate: Path | None = None,
) -> dict[str, Any]:
    """The served analyzer (registry, gate, part model) with damage reported from `conf`,
    by the promoted damage model or the candidate `damage`, parts by the promoted part model
    or the candidate `parts`, the view read by the candidate `gate` where given, and no stage
    (`pass_analyzer`)."""
    analyzer = pass_analyzer(pass_settings(conf), damage, severity, parts, gate)
    recorder = Recorder(analyzer)
    report = claim_report(recorder, split, seed, data_root)
    return {
        "split": split,
        "conf": conf,
        "damage": analyzer.model_versions["damage"],
        "parts": analyzer.model_versions["parts"],
        "gate": analyzer.model_versions.get("gate"),
        "report": report,
        "cache": recorder.cache,
    }


def cached_records(
    cache: Path, split: str, seed: int, data_root: Path | None
) -> tuple[dict[str, Any], list[PhotoRecord], Path]:
    """The pass saved by `--pass` (its state), its photos as records, and the data root."""
    if not cache.is_file():
        raise TrainingError(f"--cache {cache}: run `training.claim_rules --pass` first")
    try:
        state = pickle.loads(cache.read_bytes())
        split_of = state["split"]
    except (pickle.UnpicklingError, EOFError, TypeError, KeyError, AttributeError) as exc:
        raise TrainingError(f"--cache {cache}: not a pass saved by --pass ({exc})") from exc
    if split_of != split:
        raise TrainingError(f"--cache {cache} holds {split_of}, not {split}")
    root = check_sources(data_root)
    return state, build_records(state["cache"], split, seed, root), root


def get_args_parser(add_help: bool = True) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0], add_help=add_help)
    parser.add_argument("--split", default="val", choices=["val", "test"])
    parser.add_argument("--cache", type=Path, required=True, help="pickled analyses (.pkl)")
    parser.add_argument(
        "--pass", dest="run_pass", action="store_true", help="analyse the split, write --cache"
    )
    parser.add_argument("--conf", type=float, default=0.1, help="damage threshold of the pass")
    parser.add_argument(
        "--damage",
        type=Path,
        default=None,
        help="--pass with a candidate damage model (.onnx) instead of the promoted one",
    )
    parser.add_argument(
        "--severity", type=Path, default=None, help="the candidate's severity stage (.json)"
    )
    parser.add_argument(
        "--parts",
        type=Path,
        default=None,
        help="--pass with a candidate part model (.onnx) instead of the promoted one",
    )
    parser.add_argument(
        "--gate",
        type=Path,
        default=None,
        help="--pass with a candidate gate that reads the view (training.view_head's .onnx)",
    )
    parser.add_argument(
        "--choose",
        choices=["rule", "threshold-and-rule"],
        default="rule",
        help="rule: a whole-car rule at --served-conf (training.rule_sweep.choose); "
        "threshold-and-rule: both together (rule_sweep.choose_served), for a new model",
    )
    parser.add_argument("--seed", type=int, default=0, help="re-split seed (as converted)")
    parser.add_argument("--data-root", type=Path, default=None, help="default: $CDAT_DATA_ROOT")
    parser.add_argument("--out", type=Path, default=None, help="write the sweep as JSON here")
    parser.add_argument(
        "--served-conf", type=float, default=0.15, help="the damage model's served threshold"
    )
    parser.add_argument(
        "--confs",
        type=float,
        nargs="+",
        default=[0.1, 0.125, 0.15, 0.175, 0.2, 0.25],
        help="global thresholds compared (each also with the whole-car rules)",
    )
    parser.add_argument(
        "--min-parts",
        type=int,
        nargs="+",
        default=[2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 14],
        help="parts found from which a photo is a whole-car view (each compared)",
    )
    parser.add_argument(
        "--max-part-share",
        type=float,
        nargs="+",
        default=[1.0, 0.3, 0.15, 0.08],
        help="largest part's box share of the frame a whole-car view may have (1.0: any)",
    )
    parser.add_argument(
        "--whole-car-conf",
        type=float,
        nargs="+",
        default=[0.2, 0.25, 0.3, 0.35, 0.4, 0.5],
        help="damage scores a whole-car view may need (each compared)",
    )
    return parser


def main(args: argparse.Namespace) -> int:
    if not 0.0 < args.conf < 1.0:
        raise TrainingError(f"--conf {args.conf}: need 0 < conf < 1")
    check_json_out(args.out)
    if args.gate is not None and not (args.run_pass and args.gate.suffix == ".onnx"):
        raise TrainingError("--gate: a candidate gate's .onnx file, analysed by --pass")
    if args.gate is not None and not args.gate.is_file():
        raise TrainingError(f"--gate {args.gate}: no such file")
    check_sources(args.data_root)
    if args.damage is not None and not (args.run_pass and args.damage.suffix == ".onnx"):
        raise TrainingError("--damage: a candidate's .onnx file, analysed by --pass")
    if args.damage is not None and not args.damage.is_file():
        raise TrainingError(f"--damage {args.damage}: no such file")
    if args.parts is not None and not (args.run_pass and args.parts.suffix == ".onnx"):
        raise TrainingError("--parts: a candidate's .onnx file, analysed by --pass")
    if args.parts is not None and not args.parts.is_file():
        raise TrainingError(f"--parts {args.parts}: no such file")
    if args.run_pass:
        if args.cache.exists():
            raise TrainingError(f"--cache {args.cache} exists: one pass per split is enough")
        state = one_pass(
            args.split, args.conf, args.seed, args.data_root, args.damage, args.severity,
            args.parts, args.gate,
        )  # fmt: skip
        args.cache.parent.mkdir(parents=True, exist_ok=True)
        args.cache.write_bytes(pickle.dumps(state))
        print(json.dumps(state["report"], indent=1))
        return 0
    state, records, root = cached_records(args.cache, args.split, args.seed, args.data_root)
    grid = candidates(
        sorted({*args.confs, args.served_conf}),
        args.min_parts,
        args.max_part_share,
        args.whole_car_conf,
    )
    rows = sweep(records, grid)
    criterion = choose if args.choose == "rule" else choose_served
    chosen = criterion(rows, args.served_conf)
    # The records' figures must be claim_report's own: checked on the threshold alone and on
    # the chosen rule by replaying the cached analyses through the full report.
    checks = [Candidate(args.served_conf)]
    if chosen is not None and chosen["whole_car"] is not None:
        checks.append(Candidate(chosen["conf"], WholeCarRule(**chosen["whole_car"])))
    for candidate in checks:
        full = claim_report(Replay(state["cache"], candidate.rule), args.split, args.seed, root)
        fast = score(records, candidate.rule)
        for name in (
            "damage_recall_iou30",
            "part_family_accuracy",
            "intact_photos_with_damage",
            "non_vehicle_refused",
            "closeups_refused",
        ):
            if full[name] != fast[name]:
                raise TrainingError(f"{name}: sweep {fast[name]} != claim_report {full[name]}")
    out = {
        "split": args.split,
        "pass_conf": state["conf"],
        "damage_model": state.get("damage"),
        "parts_model": state.get("parts"),
        "served_conf": args.served_conf,
        "criterion": criterion.__doc__,
        "chosen": chosen,
        "candidates": rows,
    }
    if chosen is not None:
        full = score(
            records,
            Candidate(
                chosen["conf"],
                None if chosen["whole_car"] is None else WholeCarRule(**chosen["whole_car"]),
            ).rule,
        )
        out["chosen_per_source"] = full["per_source"]
    print(json.dumps({"chosen": chosen}, indent=1))
    if args.out:
        write_json(args.out, out)
    return 0


if __name__ == "__main__":
    run_script(main, get_args_parser())
