"""What `cdat evaluate --claims` measures a model with: the stages it is served with
(`--family-stage`, `--verifier`, `--placer`, each with its rule) and the claim figures
(training/claim_eval.py) of the analyzer they make."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from cdat.part_family import FamilyRule
from cdat.placement import PlacementRule
from cdat.verified import VerifierRule
from inference.stage_record import StageRecord
from training.errors import TrainingError


def measured_stage(args: argparse.Namespace, task: str, option: str) -> StageRecord[Any] | None:
    """A stage the model is measured with (`--family-stage` for a part model, `--verifier`,
    `--closeup-verifier` and `--placer` for a damage model), as its entry would store it
    (`file` is the path given: registering copies it beside the model)."""
    from inference.registry import sha256_of

    rule_option = {"family-stage": "family-rule", "verifier": "verifier-rule",
                   "closeup-verifier": "verifier-rule",  # unless it has a rule of its own
                   "placer": "placer-rule"}[option]  # fmt: skip
    path = getattr(args, option.replace("-", "_"))
    rule = getattr(args, rule_option.replace("-", "_"))
    if option == "closeup-verifier" and getattr(args, "closeup_verifier_rule", None) is not None:
        rule = args.closeup_verifier_rule
    owner = "parts" if option == "family-stage" else "damage"
    if path is None and (rule is None or option == "closeup-verifier"):  # it shares a rule
        return None
    if path is None or rule is None:
        raise TrainingError(f"--{option} and --{rule_option} go together")
    if not (args.claims and task == owner):
        raise TrainingError(f"--{option} applies to a {owner} model measured with --claims")
    if not path.is_file():
        raise TrainingError(f"--{option} {path}: no such file")
    return StageRecord(str(path), sha256_of(path), rule)


def measured_closeup_verifier(
    args: argparse.Namespace, task: str, verifier: StageRecord[VerifierRule] | None
) -> StageRecord[VerifierRule] | None:
    """`--closeup-verifier`, read at `--closeup-verifier-rule` (default: `--verifier-rule`) on
    the photos that are no whole-car view, beside the `--verifier` that reads the rest."""
    own_rule = getattr(args, "closeup_verifier_rule", None)
    if own_rule is not None and args.closeup_verifier is None:
        raise TrainingError("--closeup-verifier-rule needs --closeup-verifier")
    closeup = measured_stage(args, task, "closeup-verifier")
    if closeup is not None and verifier is None:
        raise TrainingError("--closeup-verifier reads close-ups beside a --verifier: give both")
    # Both read one pass of the detector from base_conf (`ModelEntry.served_closeup_verifier`).
    if (
        closeup is not None
        and verifier is not None
        and closeup.rule.base_conf != verifier.rule.base_conf
    ):
        raise TrainingError(
            f"--closeup-verifier-rule: base_conf {closeup.rule.base_conf} is not the "
            f"--verifier-rule's {verifier.rule.base_conf}"
        )
    return closeup


def check_placer(model: Path, head: Path) -> None:
    """TrainingError unless `head` is a placer head cut against `model` (inference/placer.py)."""
    from inference.errors import ModelUnavailable
    from inference.placer import checked_head

    try:
        checked_head(model, head)
    except ModelUnavailable as exc:
        raise TrainingError(f"--placer: {exc.message}") from None


def looks_measured(settings: Any) -> dict[str, Any]:
    """The second looks a candidate damage model's claims were measured with (the operator's
    `CDAT_DAMAGE_CROP_LOOK`, `CDAT_DAMAGE_FLIP_TTA`: a candidate's entry names none), for the
    report: a model registered from it is served with the middle look it was measured with."""
    from inference.loading import second_looks_of

    looks = second_looks_of(settings, False)
    return {"crop_look": "middle" in looks, "second_looks": list(looks)}


def measure_claims(
    args: argparse.Namespace,
    task: str,
    family: StageRecord[FamilyRule] | None,
    verifier: StageRecord[VerifierRule] | None = None,
    placer: StageRecord[PlacementRule] | None = None,
    closeup: StageRecord[VerifierRule] | None = None,
) -> dict[str, Any]:
    from inference.damage_verifier import DamageVerifier
    from inference.part_family import FamilyStage
    from training.claim_eval import claim_report
    from training.claims import build_claim_analyzer

    if task not in ("damage", "parts") or args.model.suffix != ".onnx":
        raise TrainingError("--claims measures a damage or part model's .onnx file")
    if task == "parts":  # served with the promoted damage model, at --conf for its parts
        stage = (
            None
            if family is None
            else FamilyStage.load(Path(family.file), family.rule, backbone=args.model)
        )
        analyzer = build_claim_analyzer(
            args.model_dir, parts=args.model, parts_conf=args.conf, family=stage,
            whole_car=args.whole_car_rule, gate=args.gate,
        )  # fmt: skip
    else:
        check = (
            None
            if verifier is None
            else DamageVerifier.load(Path(verifier.file), verifier.rule, backbone=args.model)
        )
        if check is not None and closeup is not None:  # read on photos of no whole car
            near = Path(closeup.file)
            check.closeup = DamageVerifier.load(near, closeup.rule, backbone=args.model)
        analyzer = build_claim_analyzer(
            args.model_dir, args.model, args.severity, args.conf, whole_car=args.whole_car_rule,
            verifier=check, placer=None if placer is None else (Path(placer.file), placer.rule),
            gate=args.gate, zoom_look_view_below=args.zoom_look_view_below,
            zoom_look_where_found=args.zoom_look_where_found,
            middle_look_where_found=args.middle_look_where_found,
            corner_looks_where_found=args.corner_looks_where_found,
            detector_where_found=args.detector_where_found,
        )  # fmt: skip
    return claim_report(analyzer, args.split, args.seed, args.data_root, args.intact_windows)
