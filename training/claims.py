"""`cdat claims`: the served analyzer measured as a claim is, at one or several damage
thresholds (the figures: `training/claim_eval.py`; at one threshold, also how each photo,
a claim of its own, is triaged: `training/triage_tally.py`).

    python -m training.claims --split val --out runs/eval/claims-val.json
    python -m training.claims --damage runs/damage-new.onnx \\
        --severity runs/severity/severity.json --damage-conf 0.1 0.15 0.2 --split val
    python -m training.claims --parts runs/parts-new.onnx --split val
"""

from __future__ import annotations

import argparse
import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from cdat.findings import PhotoAnalysis
from cdat.part_family import FamilyRule
from cdat.placement import PlacementRule
from cdat.verified import VerifierRule
from cdat.whole_car import WholeCarRule
from training.claim_eval import check_sources, claim_report
from training.errors import TrainingError, run_script
from training.eval_report import check_json_out, write_json

Rule = TypeVar("Rule")

if TYPE_CHECKING:
    from inference.registry import Task


class ThresholdSweep:
    """Each photo analysed once, at the lowest threshold; `at(conf)` answers as if served at
    `conf` by dropping the damages under it. That matches serving at `conf` up to NMS ties,
    and but for the vehicle check, which counts a damage as evidence of a vehicle."""

    def __init__(self, analyzer: Any) -> None:
        self.analyzer = analyzer
        self.cache: dict[str, PhotoAnalysis] = {}

    def at(self, conf: float) -> Any:
        sweep = self

        class _At:
            def analyze(self, photos: Sequence[Any]) -> list[PhotoAnalysis]:
                return [sweep.filtered(photo, conf) for photo in photos]

        return _At()

    def filtered(self, photo: Any, conf: float) -> PhotoAnalysis:
        key = hashlib.sha1(photo.data).hexdigest()
        if key not in self.cache:
            self.cache[key] = self.analyzer.analyze([photo])[0]
        analysis = self.cache[key]
        kept = tuple(d for d in analysis.damages if d.confidence >= conf)
        return replace(analysis, damages=kept)


def sweep_report(
    analyzer: Any, split: str, confs: Sequence[float], seed: int = 0, data_root: Path | None = None
) -> dict[str, Any]:
    """`claim_report` per damage threshold, from one pass over the photos."""
    sweep = ThresholdSweep(analyzer)
    return {
        "split": split,
        "damage_conf": {
            f"{conf:g}": claim_report(sweep.at(conf), split, seed, data_root) for conf in confs
        },
    }


def build_claim_analyzer(
    model_dir: Path | None,
    damage: Path | None = None,
    severity: Path | None = None,
    damage_conf: float | None = None,
    parts: Path | None = None,
    parts_conf: float | None = None,
    whole_car: WholeCarRule | None = None,
    family: Any = None,
    verifier: Any = None,
    placer: tuple[Path, PlacementRule] | None = None,
    gate: Path | None = None,
    zoom_look_view_below: float | None = None,
    zoom_look_where_found: bool = False,
    middle_look_where_found: bool = False,
    corner_looks_where_found: bool = False,
    detector_where_found: Path | None = None,
) -> Any:
    """The served analyzer of a registry, with a candidate damage and/or part model in
    place of its promoted one when `damage` / `parts` is given (a candidate has no registry
    entry yet: it serves at the operator's threshold, else the task's default). A candidate
    damage model is served with `whole_car` (its own rule, or none): the promoted model's
    rule belongs to the promoted model's scores. Beside a candidate part model alone, the
    promoted damage model serves `whole_car` where one is given (the rule counts the parts
    the candidate finds, so the two are chosen together). A candidate part model likewise is
    served with `family` (its own part-family stage, inference/part_family.py) or none, and a
    candidate damage model with `verifier` (its own damage verifier) or none and `placer`
    (a placer head cut against it, and its rule: inference/placer.py) or none. A candidate
    `gate` (one that reads the view: training/view_head.py) replaces the promoted gate. A
    candidate damage model takes the zoomed-out look on photos the gate reads under
    `zoom_look_view_below` (inference/zoom_look.py) where one is given, and the looks taken
    only where damage is found as `zoom_look_where_found` / `middle_look_where_found` /
    `corner_looks_where_found` say, with `detector_where_found` (a second detector's .onnx)
    looking beside them there."""
    from cdat.settings import Settings
    from inference.loading import build_analyzer
    from inference.severity import SeverityModel

    settings = Settings() if model_dir is None else Settings(model_dir=model_dir)
    analyzer = build_analyzer(settings)
    if damage is not None:
        conf = damage_conf or settings.damage_conf
        stage = None if severity is None else SeverityModel.load(severity)
        analyzer.damage = candidate_model(damage, "damage", settings, conf, stage)
        analyzer.whole_car = settings.whole_car_rule(whole_car)
        analyzer.verifier = verifier
        analyzer.placer = None
        if placer is not None:
            analyzer.damage, analyzer.placer = candidate_placer(analyzer.damage, damage, *placer)
        again = (middle_look_where_found, corner_looks_where_found, detector_where_found)
        if zoom_look_view_below is not None or any(again):
            analyzer.damage = with_zoom_look(
                analyzer.damage, zoom_look_view_below, zoom_look_where_found,
                middle_look_where_found, corner_looks_where_found, detector_where_found,
            )  # fmt: skip
    if parts is not None:
        conf = parts_conf or settings.parts_conf
        analyzer.parts = candidate_model(parts, "parts", settings, conf)
        analyzer.family = family
        if damage is None and whole_car is not None:
            analyzer.whole_car = settings.whole_car_rule(whole_car)
    if gate is not None:
        analyzer.gate = candidate_gate(gate, analyzer.gate)
    return analyzer


def without_looks_again(damage: Any) -> Any:
    """A damage model as it looks once at every photo: the looks its entry takes again
    where damage is found (zoomed-out, middle, a second detector's, the corners) left out."""
    entry = replace(
        damage.entry,
        zoom_look_view_below=None,
        zoom_look_where_found=False,
        middle_look_where_found=False,
        detector_where_found={},
        corner_looks_where_found=False,
    )
    looks: dict[str, Any] = {
        "closeup_runtime": None, "middle_runtime": None, "detector_look": None,
        "corner_runtime": None,
    }  # fmt: skip
    return replace(damage, entry=entry, **looks)


def check_same_classes(detector: Path, its: list[str], the_models: list[str]) -> None:
    """A second detector names the classes of the model it looks beside, in its order:
    their detections are pooled by class id."""
    if its != the_models:
        raise TrainingError(
            f"--detector-where-found {detector}: predicts {its}, the model {the_models}"
        )


def second_detector_classes(model: Path, detector: Path) -> None:
    """`check_same_classes` from the two files, before any photo is read."""
    from cdat.errors import CdatError
    from inference.runtime import OnnxRuntime

    if model.suffix != ".onnx":
        raise TrainingError("--detector-where-found: --claims measures a damage model's .onnx file")
    try:
        its, the_models = OnnxRuntime(detector).class_names(), OnnxRuntime(model).class_names()
    except CdatError as exc:
        raise TrainingError(f"--detector-where-found: {exc}") from exc
    check_same_classes(detector, its, the_models)


def with_zoom_look(
    damage: Any,
    bar: float | None,
    where_found: bool = False,
    middle_where_found: bool = False,
    corners_where_found: bool = False,
    detector: Path | None = None,
) -> Any:
    """A candidate damage model that also looks from further away at photos the gate reads
    under `bar` (only where its first look finds damage with `where_found`), at each photo's
    middle where its first look finds damage with `middle_where_found`, at its corners there
    with `corners_where_found`, and with the second detector `detector` there, as its entry
    would serve it once registered. A second detector of other classes is refused."""
    from inference.detector_look import DetectorLookRuntime
    from inference.loading import corner_looks_of, middle_look_of, zoom_look_of
    from inference.registry import sha256_of
    from inference.runtime import OnnxRuntime
    from inference.stage_record import ModelFile

    looks = {"zoom_look_view_below": bar, "zoom_look_where_found": where_found,
             "middle_look_where_found": middle_where_found,
             "corner_looks_where_found": corners_where_found}  # fmt: skip
    entry = replace(damage.entry, **looks)
    config = damage.runtime.config
    closeup = zoom_look_of(damage.runtime, config, entry)
    middle = middle_look_of(damage.runtime, config, entry)
    corners = corner_looks_of(damage.runtime, config, entry)
    second = None
    if detector is not None:
        runtime = OnnxRuntime(detector, config=config)
        check_same_classes(detector, runtime.class_names(), list(entry.classes))
        second = DetectorLookRuntime(runtime, config)
        record = ModelFile(detector.name, sha256_of(detector)).to_record()
        entry = replace(entry, detector_where_found=record)
    return replace(
        damage, entry=entry, closeup_runtime=closeup, middle_runtime=middle,
        corner_runtime=corners, detector_look=second,
    )  # fmt: skip


def candidate_placer(
    damage: Any, damage_file: Path, head: Path, rule: PlacementRule
) -> tuple[Any, Any]:
    """A candidate damage model (loaded from `damage_file`) joined to a placer head cut
    against that very file."""
    from inference.placer import Placer, TwinRuntime

    twin = TwinRuntime.joined(damage_file, head, damage.runtime.config)
    return replace(damage, runtime=twin), Placer(twin, rule)


def candidate_gate(path: Path, promoted: Any) -> Any:
    """An unregistered gate file served at the promoted gate's threshold (a view head keeps
    the promoted gate's vehicle head: training/view_head.py), or with none promoted at the
    threshold its file names."""
    from inference.vehicle_gate import VehicleGate

    if promoted is not None:
        return VehicleGate.load(path, promoted.threshold, version=path.stem)
    return gate_at_its_threshold(path)


def gate_at_its_threshold(path: Path, option: str = "--gate") -> Any:
    """A gate file served at the threshold it names (one whose vehicle head is its own);
    `option` is the command-line option that named it, for the error line."""
    import onnxruntime as ort

    from inference.vehicle_gate import VehicleGate

    try:
        named = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own types for a file it cannot read
        raise TrainingError(f"{option} {path}: not an ONNX model ({exc})") from exc
    threshold = named.get_modelmeta().custom_metadata_map.get("threshold")
    if threshold is None:
        raise TrainingError(f"{option} {path}: the file names no threshold to serve it at")
    return VehicleGate.load(path, float(threshold), version=path.stem)


def candidate_model(
    path: Path, task: Task, settings: Any, conf: float | None, stage: Any = None
) -> Any:
    """An unregistered .onnx model served as the promoted one of `task` would be."""
    from inference.loading import with_second_looks
    from inference.postprocess import PostprocessConfig
    from inference.registry import DEFAULT_SERVED_CONF, ModelEntry, sha256_of
    from inference.runtime import OnnxRuntime, SegmentationModel

    conf = conf or DEFAULT_SERVED_CONF[task]
    config = PostprocessConfig(conf=conf, iou=settings.nms_iou)
    runtime = OnnxRuntime(path, config=config)
    entry = ModelEntry(
        id=path.stem,
        task=task,
        file=path.name,
        sha256=sha256_of(path),
        classes=runtime.class_names(),
        imgsz=runtime.imgsz,
    )
    return SegmentationModel(entry, with_second_looks(runtime, config, settings, entry), stage)


def whole_car_rule_arg(text: str) -> WholeCarRule:
    """`--whole-car-rule` as JSON, e.g. '{"min_parts": 6, "whole_car_conf": 0.2}'."""
    return _json_record(text, WholeCarRule.from_record)


def _json_record(text: str, read: Callable[[dict[str, Any]], Rule]) -> Rule:
    try:
        record = json.loads(text)
        if not isinstance(record, dict):
            raise ValueError("need a JSON object")
        return read(record)
    except (ValueError, TypeError) as exc:
        raise argparse.ArgumentTypeError(f"{text!r}: {exc}") from exc


def family_rule_arg(text: str) -> FamilyRule:
    """`--family-rule` as JSON, e.g. '{"min_probability": 0.9}'."""
    return _json_record(text, FamilyRule.from_record)


def placement_rule_arg(text: str) -> PlacementRule:
    """`--placer-rule` as JSON, e.g. '{"min_iou": 0.5}'."""
    return _json_record(text, PlacementRule.from_record)


def verifier_rule_arg(text: str) -> VerifierRule:
    """`--verifier-rule` as JSON, e.g. '{"base_conf": 0.1, "min_probability": 0.7}'."""
    return _json_record(text, VerifierRule.from_record)


WHOLE_CAR_RULE_HELP = (
    "a candidate damage model's whole-car rule, JSON (cdat/whole_car.py), e.g. "
    '\'{"min_parts": 6, "whole_car_conf": 0.2}\'; default: none for a candidate'
)


def get_args_parser(add_help: bool = True) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0], add_help=add_help)
    parser.add_argument(
        "--split", default="val", choices=["val", "test"], help="held-out split to measure on"
    )
    parser.add_argument(
        "--model-dir", type=Path, default=None, help="registry to serve (default: the shipped one)"
    )
    parser.add_argument(
        "--damage", type=Path, default=None, help="a candidate damage model (.onnx) to serve"
    )
    parser.add_argument(
        "--severity", type=Path, default=None, help="the candidate's severity stage (.json)"
    )
    parser.add_argument(
        "--parts",
        type=Path,
        default=None,
        help="a candidate part model (.onnx) to serve, at the served parts threshold "
        "($CDAT_PARTS_CONF, else the task's default)",
    )
    parser.add_argument(
        "--damage-conf",
        type=float,
        nargs="+",
        default=None,
        help="damage threshold(s), each 0 < it < 1; several are compared from one pass over "
        "the photos (choose on val, never on test). Default: the served one",
    )
    parser.add_argument(
        "--whole-car-rule", type=whole_car_rule_arg, default=None, help=WHOLE_CAR_RULE_HELP
    )
    parser.add_argument("--seed", type=int, default=0, help="re-split seed (as converted)")
    parser.add_argument("--data-root", type=Path, default=None, help="default: $CDAT_DATA_ROOT")
    parser.add_argument("--out", type=Path, default=None, help="write the figures as JSON here")
    return parser


def main(args: argparse.Namespace) -> int:
    if args.damage is not None and (not args.damage.is_file() or args.damage.suffix != ".onnx"):
        raise TrainingError(f"--damage {args.damage}: expected an existing .onnx damage model")
    if args.parts is not None and (not args.parts.is_file() or args.parts.suffix != ".onnx"):
        raise TrainingError(f"--parts {args.parts}: expected an existing .onnx part model")
    if args.severity is not None and not args.severity.is_file():
        raise TrainingError(f"--severity {args.severity}: not a file")
    confs = tuple(args.damage_conf or ())
    if any(not 0.0 < c < 1.0 for c in confs):
        raise TrainingError(f"--damage-conf {confs}: need 0 < conf < 1")
    check_json_out(args.out)
    check_sources(args.data_root)
    if args.whole_car_rule is not None and args.damage is None:
        raise TrainingError("--whole-car-rule is a candidate damage model's (--damage)")
    analyzer = build_claim_analyzer(
        args.model_dir,
        args.damage,
        args.severity,
        min(confs or [0]) or None,
        args.parts,
        whole_car=args.whole_car_rule,
    )
    if len(confs) > 1:
        report = sweep_report(analyzer, args.split, confs, args.seed, args.data_root)
    else:
        report = claim_report(analyzer, args.split, args.seed, args.data_root, triage=True)
    print(json.dumps(report, indent=1))
    if args.out:
        write_json(args.out, report)
    return 0


if __name__ == "__main__":
    run_script(main, get_args_parser())
