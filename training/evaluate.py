"""Evaluate a segmentation model (.pt or .onnx) on a split of a converted dataset.

Box and mask mAP50 / mAP50-95 per class (Ultralytics' validator), then instance
matching by mask IoU >= 0.5 for a class confusion matrix and, for damage, a
severity confusion matrix and accuracy on matched instances. Writes report.json,
report.md and offline plots; with a registry, compares with the promoted model
on the same split.

    python -m training.evaluate --config datasets/damage.yaml \
        --model runs/train/damage/weights/best.pt --split test --imgsz 320 --out runs/eval/damage
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import yaml

from training.claims import (
    WHOLE_CAR_RULE_HELP,
    family_rule_arg,
    placement_rule_arg,
    verifier_rule_arg,
    whole_car_rule_arg,
)
from training.errors import TrainingError, run_script
from training.eval_report import report_markdown, write_report
from training.eval_split import model_imgsz
from training.eval_stages import (
    check_placer,
    looks_measured,
    measure_claims,
    measured_closeup_verifier,
    measured_stage,
)
from training.intact_closeups import WINDOWS_PER_PHOTO, windows_per_photo_arg
from training.model_eval import evaluate


def get_args_parser(add_help: bool = True) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0], add_help=add_help)
    parser.add_argument("--config", type=Path, required=True, help="training config (datasets/)")
    parser.add_argument("--model", type=Path, required=True, help="candidate .pt or .onnx")
    parser.add_argument(
        "--split", default="test", choices=["train", "val", "test"], help="default: test"
    )
    parser.add_argument("--imgsz", type=int, default=None, help="default: the model's")
    parser.add_argument("--conf", type=float, default=0.25, help="score threshold for matching")
    parser.add_argument("--out", type=Path, default=None, help="default: runs/eval/<model>")
    parser.add_argument("--data-root", type=Path, default=None, help="default: $CDAT_DATA_ROOT")
    parser.add_argument("--seed", type=int, default=0, help="conversion seed (as trained)")
    parser.add_argument("--data-dir", type=Path, default=Path("runs/data"), help="conversions")
    parser.add_argument(
        "--model-dir", type=Path, default=None, help="registry whose promoted model to compare with"
    )
    parser.add_argument("--no-compare", action="store_true", help="skip the promoted model")
    parser.add_argument(
        "--closeups",
        type=Path,
        default=None,
        help="part models (.onnx): also run the close-up part test on this data set config "
        "(datasets/damaged-parts.yaml), on --split, with the promoted damage model",
    )
    parser.add_argument(
        "--severity",
        type=Path,
        default=None,
        help="severity stage JSON (python -m training.severity) for a type-level damage model",
    )
    parser.add_argument(
        "--claims",
        action="store_true",
        help="damage or part models (.onnx): also measure as a claim is, per source, served "
        "with the other task's promoted model and the vehicle gate, the candidate at --conf "
        "(training/claim_eval.py)",
    )
    parser.add_argument(
        "--intact-windows",
        type=windows_per_photo_arg,
        default=WINDOWS_PER_PHOTO,
        help=f"with --claims: close-up windows cut from each intact car (default "
        f"{WINDOWS_PER_PHOTO}; more give a finer intact-close-up figure from the same cars, "
        "the first windows unchanged)",
    )
    parser.add_argument(
        "--whole-car-rule",
        type=whole_car_rule_arg,
        default=None,
        help=WHOLE_CAR_RULE_HELP + "; recorded in the report, which registering copies; "
        "for a part model, the promoted damage model served under this rule instead of its "
        "own (the rule counts the candidate's parts: the two are chosen together)",
    )
    parser.add_argument(
        "--gate",
        type=Path,
        default=None,
        help="with --claims: this vehicle gate (.onnx) in the promoted gate's place, at its "
        "threshold, e.g. one that reads the view (python -m training.view_head) for a "
        "--whole-car-rule naming view_probability; recorded in the report",
    )
    parser.add_argument(
        "--family-stage",
        type=Path,
        default=None,
        help="a part model measured with --claims: serve it with this part-family stage "
        "(.onnx, python -m training.part_family); recorded in the report, which registering "
        "copies with the model",
    )
    parser.add_argument(
        "--family-rule",
        type=family_rule_arg,
        default=None,
        help="the stage's rule, JSON (cdat/part_family.py), e.g. '{\"min_probability\": 0.9}'",
    )
    parser.add_argument(
        "--verifier",
        type=Path,
        default=None,
        help="a damage model measured with --claims: serve it with this damage verifier "
        "(.onnx, python -m training.damage_verifier) from --conf; recorded in the report, "
        "which registering copies with the model",
    )
    parser.add_argument(
        "--verifier-rule",
        type=verifier_rule_arg,
        default=None,
        help="the verifier's rule, JSON (cdat/verified.py), e.g. "
        '\'{"base_conf": 0.1, "min_probability": 0.7}\'',
    )
    parser.add_argument(
        "--closeup-verifier",
        type=Path,
        default=None,
        help="with --verifier: this damage verifier (.onnx, python -m training.verifier_tune "
        "--intact-closeups) reads every photo that is no whole-car view instead, at "
        "--verifier-rule (inference/damage_verifier.py); recorded in the report, which "
        "registering copies with the model",
    )
    parser.add_argument(
        "--closeup-verifier-rule",
        type=verifier_rule_arg,
        default=None,
        help="with --closeup-verifier: the rule it reads close-ups at, JSON (cdat/verified.py), "
        "from --verifier-rule's base_conf (default: --verifier-rule)",
    )
    parser.add_argument(
        "--placer",
        type=Path,
        default=None,
        help="a damage model measured with --claims: serve it with this damage placer (a "
        "head cut against it by python -m training.placer_head: inference/placer.py); "
        "recorded in the report, which registering copies with the model",
    )
    parser.add_argument(
        "--placer-rule",
        type=placement_rule_arg,
        default=None,
        help="the placer's rule, JSON (cdat/placement.py), e.g. '{\"min_iou\": 0.5}'",
    )
    parser.add_argument(
        "--zoom-look-view-below",
        type=view_bar_arg,
        default=None,
        help="a damage model measured with --claims: also look at each photo the gate reads "
        "under this whole-car view probability from further away (inference/zoom_look.py); "
        "recorded in the report, which registering keeps with the model",
    )
    parser.add_argument(
        "--zoom-look-where-found",
        action="store_true",
        help="with --zoom-look-view-below: take that look only on photos the first look, as "
        "served, finds damage on, and analyse them again with it (recorded in the report)",
    )
    parser.add_argument(
        "--middle-look-where-found",
        action="store_true",
        help="a damage model measured with --claims: also look at the middle of each photo "
        "the first look finds damage on (inference/crop_look.py) and analyse it again "
        "(recorded in the report)",
    )
    parser.add_argument(
        "--corner-looks-where-found",
        action="store_true",
        help="with --middle-look-where-found: also look closer at each photo's four corners "
        "where the first look finds damage, adding only what the first look saw too "
        "(inference/crop_look.py; recorded in the report)",
    )
    parser.add_argument(
        "--detector-where-found",
        type=Path,
        default=None,
        help="a second damage detector (.onnx, the model's classes) run where the first look "
        "finds damage, its detections joined where the other looks propose none "
        "(inference/detector_look.py; recorded in the report, copied beside the model when "
        "it is registered)",
    )
    return parser


def view_bar_arg(text: str) -> float:
    """A gate view probability bar: above 0, at most 1."""
    try:
        bar = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0.0 < bar <= 1.0:
        raise argparse.ArgumentTypeError(f"{bar}: need a probability above 0, at most 1")
    return bar


LOOKS_WHERE_FOUND_ARE_A_DAMAGE_MODELS = (
    "--zoom-look-where-found, --middle-look-where-found, --corner-looks-where-found and "
    "--detector-where-found apply to a damage model measured with --claims and no --placer"
)


def looks_where_found(args: argparse.Namespace) -> bool:
    """Whether any look taken only where damage is found is asked for."""
    return bool(
        args.zoom_look_where_found or args.middle_look_where_found
        or args.corner_looks_where_found or args.detector_where_found is not None
    )  # fmt: skip


def check_looks_where_found(args: argparse.Namespace) -> None:
    """The looks taken where damage is found: measured with --claims, with no placer (its
    head reads the model's one look); the zoomed-out one needs its bar. Checked before the
    data is read (the model's task is checked once its config is)."""
    if not looks_where_found(args):
        return
    if not args.claims or args.placer is not None:
        raise TrainingError(LOOKS_WHERE_FOUND_ARE_A_DAMAGE_MODELS)
    if args.zoom_look_where_found and args.zoom_look_view_below is None:
        raise TrainingError("--zoom-look-where-found needs --zoom-look-view-below")
    if args.corner_looks_where_found and not args.middle_look_where_found:
        raise TrainingError("--corner-looks-where-found needs --middle-look-where-found")
    detector = args.detector_where_found
    if detector is not None and (not detector.is_file() or detector.suffix != ".onnx"):
        raise TrainingError(f"--detector-where-found {detector}: expected an existing .onnx")


def main(args: argparse.Namespace) -> int:
    from training.convert import ensure_dataset
    from training.dataconfig import load_training_config

    if not args.model.is_file():
        raise TrainingError(f"no such model file: {args.model}")
    if args.zoom_look_view_below is not None and args.placer is not None:
        raise TrainingError("--zoom-look-view-below: a placer's head reads the model's one look")
    check_looks_where_found(args)
    if args.detector_where_found is not None:  # before the config: it may name data not built here
        from training.claims import second_detector_classes

        second_detector_classes(args.model, args.detector_where_found)
    cfg = load_training_config(args.config, args.data_root)
    if args.whole_car_rule is not None and not args.claims:
        raise TrainingError("--whole-car-rule applies to a model measured with --claims")
    if args.gate is not None and not args.claims:
        raise TrainingError("--gate applies to a model measured with --claims")
    if args.intact_windows != WINDOWS_PER_PHOTO and not args.claims:
        raise TrainingError("--intact-windows applies to a model measured with --claims")
    if args.gate is not None and not args.gate.is_file():
        raise TrainingError(f"--gate {args.gate}: no such file")
    if args.zoom_look_view_below is not None and not (args.claims and cfg.task == "damage"):
        raise TrainingError(
            "--zoom-look-view-below applies to a damage model measured with --claims"
        )
    if looks_where_found(args) and cfg.task != "damage":
        raise TrainingError(LOOKS_WHERE_FOUND_ARE_A_DAMAGE_MODELS)
    family = measured_stage(args, cfg.task, "family-stage")
    verifier = measured_stage(args, cfg.task, "verifier")
    closeup = measured_closeup_verifier(args, cfg.task, verifier)
    placer = measured_stage(args, cfg.task, "placer")
    if placer is not None:  # a head cut against another model fails now, not after minutes
        check_placer(args.model, Path(placer.file))
    data_yaml = ensure_dataset(cfg, args.data_dir / cfg.name, args.seed)
    imgsz = args.imgsz or model_imgsz(args.model)
    out = args.out or Path("runs/eval") / args.model.stem
    if args.severity is not None and not args.severity.is_file():
        raise TrainingError(f"no such severity model: {args.severity}")
    if args.claims:  # a missing source is an error now, not after the typed evaluation
        from training.claim_eval import check_sources

        check_sources(args.data_root)
    report = evaluate(args.model, data_yaml, args.split, imgsz, out, args.conf, 4, args.severity)
    if args.closeups is not None:
        report.update(_closeups(args, cfg.task))
    if args.claims:
        report["claims"] = measure_claims(args, cfg.task, family, verifier, placer, closeup)
        if args.whole_car_rule is not None:  # a part model's figures name the damage rule
            key = "whole_car_rule" if cfg.task == "damage" else "damage_whole_car_rule"
            report[key] = args.whole_car_rule.to_record()
        if args.gate is not None:  # the views the rule read came from this gate
            from inference.registry import sha256_of

            report["claims_gate"] = {"file": args.gate.name, "sha256": sha256_of(args.gate)}
        if family is not None:
            report["family_stage"] = family.to_record()
        if verifier is not None:
            report["verifier"] = verifier.to_record()
        if closeup is not None:
            report["closeup_verifier"] = closeup.to_record()
        if placer is not None:
            report["placer"] = placer.to_record()
        if args.zoom_look_view_below is not None:
            report["zoom_look_view_below"] = args.zoom_look_view_below
        for flag in ("zoom_look_where_found", "middle_look_where_found",
                     "corner_looks_where_found"):  # fmt: skip
            if getattr(args, flag):
                report[flag] = True
        if args.detector_where_found is not None:  # registering copies it beside the model
            from inference.registry import sha256_of
            from inference.stage_record import ModelFile

            path = args.detector_where_found
            report["detector_where_found"] = ModelFile(str(path), sha256_of(path)).to_record()
        if cfg.task == "damage":
            from cdat.settings import Settings

            report.update(looks_measured(Settings()))
    baseline = None
    if not args.no_compare:
        baseline = _promoted_baseline(args, cfg.task, data_yaml, out)
    write_report(report, out, baseline)
    print(report_markdown(report, baseline))
    print(f"wrote {out / 'report.json'} and {out / 'report.md'}")
    return 0


def _closeups(args: argparse.Namespace, task: str) -> dict[str, Any]:
    from training.closeup import build_closeup_analyzer, evaluate_closeups

    if task != "parts" or args.model.suffix != ".onnx":
        raise TrainingError("--closeups tests a part model's .onnx file")
    analyzer = build_closeup_analyzer(args.model, args.model_dir)
    # on the split asked: a val read that measured test close-ups would show test figures
    # beside the ones a candidate is chosen by
    return evaluate_closeups(analyzer, args.closeups, args.split, args.seed)


def _promoted_baseline(
    args: argparse.Namespace, task: str, data_yaml: Path, out: Path
) -> dict[str, Any] | None:
    from cdat.settings import Settings
    from inference.registry import Registry

    registry = Registry.load(args.model_dir or Settings().model_dir)
    if task not in registry.promoted:
        print(f"no promoted {task} model to compare with")
        return None
    entry = registry.promoted_entry(task)  # type: ignore[arg-type]
    path = registry.path_of(entry)
    if path.resolve() == args.model.resolve():
        return None
    severity = registry.model_dir / entry.severity_model if entry.severity_model else None
    names = [str(n) for n in yaml.safe_load(data_yaml.read_text())["names"].values()]
    if names != entry.classes:
        print(f"promoted {task} model {entry.id} has other classes: not compared on this split")
        return None
    # as served: at the promoted model's own threshold, which the report's table shows
    return evaluate(
        path, data_yaml, args.split, entry.imgsz, out / "promoted", entry.base_conf, 4, severity
    )


if __name__ == "__main__":
    run_script(main, get_args_parser())
