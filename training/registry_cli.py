"""`cdat models`: list, show, register and promote entries of the model registry.

    cdat models register --file inference/models/x.onnx --task damage \
        --report runs/eval/best/report.json --run runs/train/damage --card inference/models/x.md
    cdat models promote <id>   # refuses a worse candidate unless --force
    cdat models list | cdat models show <id>
"""

from __future__ import annotations

import argparse
import ast
import json
import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cdat.errors import CdatError
from training.calibrated_entry import add_calibrate, cmd_calibrate, read_calibration
from training.cli_handlers import guarded
from training.errors import TrainingError
from training.promotion_notes import damage_rule_note, view_note
from training.registry_report import (
    STAGES,
    check_closeup_verifier,
    check_looks,
    checked_stage,
    report_detector,
    report_flag,
    report_metrics,
    report_view_bar,
    report_whole_car_rule,
)


def _model_dir(args: argparse.Namespace) -> Path:
    if args.model_dir is not None:
        return Path(args.model_dir)
    from cdat.settings import Settings

    return Settings().model_dir


def _registry(args: argparse.Namespace) -> Any:
    from inference.registry import Registry

    return Registry.load(_model_dir(args))


def cmd_list(args: argparse.Namespace) -> int:
    from inference.promotion_gate import GATE_METRICS
    from training.registry_table import legend, task_table

    registry = _registry(args)
    tasks = [t for t in GATE_METRICS if args.task in (None, t)]
    shown = [(t, [e for e in registry.entries if e.task == t]) for t in tasks]
    shown = [(t, entries) for t, entries in shown if entries]
    if not shown:
        what = f"{args.task} models" if args.task else "models"
        print(f"no {what} registered in {registry.model_dir}")
        return 0
    for task, entries in shown:
        print("\n".join(task_table(task, entries, registry.promoted.get(task))), end="\n\n")
    print(legend([t for t, _ in shown]))
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    from dataclasses import asdict

    registry = _registry(args)
    entry = registry.get(args.id)
    body = asdict(entry)
    body["promoted"] = registry.promoted.get(entry.task) == entry.id
    print(json.dumps(body, indent=2))
    return 0


def onnx_facts(path: Path) -> tuple[list[str], int, str]:
    """(class names, input size, architecture) stored by the exporter in the ONNX file."""
    import onnxruntime as ort

    try:
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own untyped errors
        raise TrainingError(f"{path}: not a loadable ONNX model ({type(exc).__name__})") from exc
    meta = session.get_modelmeta().custom_metadata_map
    names = ast.literal_eval(meta.get("names", "{}"))
    shape = session.get_inputs()[0].shape
    if not names or not isinstance(shape[2], int):
        raise CdatError(f"{path}: no class names or no fixed input size in the ONNX file")
    return [str(names[k]) for k in sorted(names)], int(shape[2]), meta.get("description", "")


def _report_stage(
    report_path: Path | None, key: str, task: str, model_dir: Path, model: Path
) -> dict[str, Any]:
    """A stage the report's claim figures were measured with (`cdat evaluate --claims
    --family-stage` / `--verifier` / `--placer`), its file copied beside the model: the model
    is served as measured ({} where there is none)."""
    return _copy_stage(checked_stage(report_path, key, task, model_dir, model), model_dir, key)


def _copy_stage(stage: Any, model_dir: Path, key: str) -> dict[str, Any]:
    """A checked stage's record, its file copied beside the model ({} where there is none)."""
    if stage is None:
        return {}
    from inference.stage_record import StageRecord

    file = _copy_beside(Path(stage.file), model_dir, STAGES[key][1])
    record: dict[str, Any] = StageRecord(file, stage.sha256, stage.rule).to_record()
    return record


def _run_facts(run_dir: Path | None) -> dict[str, Any]:
    if run_dir is None:
        return {}
    path = run_dir / "cdat_run.json"
    if not path.is_file():
        raise CdatError(f"{path} not found: pass the training run folder")
    result: dict[str, Any] = json.loads(path.read_text())
    return result


def cmd_register(args: argparse.Namespace) -> int:
    from inference.registry import ModelEntry, check_entry_id, sha256_of

    registry = _registry(args)
    source = Path(args.file)
    if not source.is_file():
        raise CdatError(f"no such model file: {source}")
    classes, imgsz, architecture = onnx_facts(source)
    target = registry.model_dir / source.name
    sha256 = sha256_of(source)
    copied = source.resolve() != target.resolve()
    if copied and target.exists() and sha256_of(target) != sha256:
        raise TrainingError(f"{target} exists: give the new model file another name")
    metrics, _ = report_metrics(args.report)
    like = _facts_from(args, registry, sha256)
    run = _run_facts(args.run)
    if run and run.get("task") != args.task:
        raise CdatError(f"run {args.run} trained a {run.get('task')} model, not {args.task}")
    for what, path in (("severity model", args.severity), ("model card", args.card)):
        if path is not None and not path.is_file():
            raise CdatError(f"no such {what}: {path}")
    check_closeup_severity(
        args.closeup_severity, args.task, args.closeup_severity_view_below, source
    )
    calibration = read_calibration(args.calibration, args.task)
    if args.id is not None:
        check_entry_id(args.id)
        if any(e.id == args.id for e in registry.entries):
            raise CdatError(f"a model with id '{args.id}' is already registered")
    whole_car_rule = report_whole_car_rule(args.report, args.task)
    stages = {key: checked_stage(args.report, key, args.task, registry.model_dir, source)
              for key in STAGES}  # fmt: skip
    check_closeup_verifier(args.report, stages["verifier"], stages["closeup_verifier"])
    check_looks(args.report)
    zoom_look = report_view_bar(args.report, "zoom_look_view_below")
    if zoom_look is not None and args.task != "damage":
        raise CdatError(f"--report {args.report}: a zoomed-out look is a damage model's")
    zoom_where_found = report_flag(args.report, "zoom_look_where_found")
    middle_where_found = report_flag(args.report, "middle_look_where_found")
    if (zoom_where_found or middle_where_found) and args.task != "damage":
        raise CdatError(f"--report {args.report}: a look where damage is found is a damage model's")
    if zoom_where_found and zoom_look is None:
        raise CdatError(f"--report {args.report}: zoom_look_where_found without its view bar")
    corners_where_found = report_flag(args.report, "corner_looks_where_found")
    if corners_where_found and not middle_where_found:
        raise CdatError(
            f"--report {args.report}: corner_looks_where_found without middle_look_where_found"
        )
    detector = report_detector(args.report, args.task, registry.model_dir)
    if detector is not None and onnx_facts(Path(detector.file))[0] != classes:
        raise CdatError(
            f"--report {args.report}: its second detector {detector.file} predicts other "
            f"classes than the model's {classes}"
        )
    # every check above reads only: a refused registration leaves the model directory as it was
    if copied:
        registry.model_dir.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)
    severity = _copy_beside(args.severity, registry.model_dir, "severity model")
    closeup_severity = _copy_beside(args.closeup_severity, registry.model_dir, "severity model")
    if like is not None:  # the same weights again, served with other stages
        run = {"data": [{"name": n, "licence": ""} for n in like.data], "init": like.init,
               "command": like.command}  # fmt: skip
        args.licence = args.licence or like.licence
    stem = args.id or registry.next_id(args.task, source.stem)
    entry = ModelEntry(
        id=stem,
        task=args.task,
        file=target.name,
        sha256=sha256_of(target),
        classes=classes,
        imgsz=imgsz,
        architecture=architecture,
        metrics=metrics,
        data=[d["name"] for d in run.get("data", [])] or list(args.data or []),
        licence=args.licence
        or "; ".join(f"{d['name']}: {d['licence']}" for d in run.get("data", [])),
        command=args.command or run.get("command", ""),
        created_at=datetime.now(UTC).isoformat(timespec="seconds"),
        card=_card(args.card, registry.model_dir),
        severity_model=severity,
        closeup_severity_model=closeup_severity,
        closeup_severity_view_below=args.closeup_severity_view_below,
        init=run.get("init", {}),
        whole_car_rule=whole_car_rule,
        crop_look=args.task == "damage" and report_flag(args.report, "crop_look"),
        zoom_look_view_below=zoom_look,
        zoom_look_where_found=zoom_where_found,
        middle_look_where_found=middle_where_found,
        corner_looks_where_found=corners_where_found,
        detector_where_found=_copy_detector(detector, registry.model_dir),
        family_stage=_copy_stage(stages["family_stage"], registry.model_dir, "family_stage"),
        verifier=_copy_stage(stages["verifier"], registry.model_dir, "verifier"),
        closeup_verifier=_copy_stage(
            stages["closeup_verifier"], registry.model_dir, "closeup_verifier"
        ),
        placer=_copy_stage(stages["placer"], registry.model_dir, "placer"),
        confidence_calibration=calibration,
    )
    registry.register(entry)
    registry.save()
    print(f"registered {entry.id} ({entry.task}, {len(classes)} classes, imgsz {imgsz})")
    return 0


def _facts_from(args: argparse.Namespace, registry: Any, sha256: str) -> Any:
    """The entry named by `--facts-from`, whose data, licence, command and initial weights a
    new entry of the very same model file takes (None without the option)."""
    if args.facts_from is None:
        return None
    from inference.errors import RegistryError

    if args.run is not None:
        raise CdatError("--facts-from and --run both say how the model was made: give one")
    try:
        entry = registry.get(args.facts_from)
    except RegistryError as exc:
        raise CdatError(f"--facts-from: {exc.message}") from None
    if entry.sha256 != sha256 or entry.task != args.task:
        raise CdatError(f"--facts-from {entry.id}: another model file or task than --file's")
    return entry


def _card(card: Path | None, model_dir: Path) -> str:
    return _copy_beside(card, model_dir, "model card")


def check_closeup_severity(
    path: Path | None, task: str, view_below: float | None, model: Path
) -> None:
    """A close-up severity stage is a damage model's, and one that loads (a head on the
    model's layers: on `model`'s), with a bar above 0 and at most 1 where one is given:
    refused before anything is copied."""
    if view_below is not None and (path is None or not 0.0 < view_below <= 1.0):
        raise CdatError(
            f"--closeup-severity-view-below {view_below}: a probability above 0, at most 1, "
            "beside --closeup-severity"
        )
    if path is None:
        return
    from cdat.errors import ModelUnavailable
    from inference.layer_severity import load_closeup_severity

    if task != "damage":
        raise CdatError(f"--closeup-severity is a damage model's stage, not a {task} model's")
    if not path.is_file():
        raise CdatError(f"no such close-up severity stage: {path}")
    try:
        load_closeup_severity(path, model)
    except ModelUnavailable as exc:
        raise CdatError(f"--closeup-severity: {exc}") from exc


def _copy_detector(detector: Any, model_dir: Path) -> dict[str, Any]:
    """A checked second detector's record, its file copied beside the model ({} where there
    is none)."""
    if detector is None:
        return {}
    from inference.stage_record import ModelFile

    file = _copy_beside(Path(detector.file), model_dir, "second detector")
    record: dict[str, Any] = ModelFile(file, detector.sha256).to_record()
    return record


def _copy_beside(path: Path | None, model_dir: Path, what: str) -> str:
    """A file the entry names, relative to the model directory (copied in when outside)."""
    if path is None:
        return ""
    if not path.is_file():
        raise CdatError(f"no such {what}: {path}")
    try:
        return str(path.resolve().relative_to(model_dir.resolve()))
    except ValueError:
        shutil.copyfile(path, model_dir / path.name)
        return path.name


def cmd_promote(args: argparse.Namespace) -> int:
    from inference.registry import PromotionRefused

    registry = _registry(args)
    try:
        lines = registry.promote(args.id, force=args.force)
    except PromotionRefused as refused:
        if args.dry_run:
            raise PromotionRefused(f"dry run, nothing changed: {refused}") from refused
        raise
    for line in lines:
        print(line)
    if args.dry_run:
        print(f"dry run: {args.id} would be promoted" + (" (forced)" if args.force else ""))
    else:
        registry.save()
        print(f"promoted {args.id}" + (" (forced)" if args.force else ""))
    for note in (damage_rule_note(registry, registry.get(args.id)), view_note(registry)):
        if note:
            print(note)
    return 0


def add_models(sub: argparse._SubParsersAction) -> None:
    models = sub.add_parser(
        "models", help="model registry: list, show, register, calibrate, promote"
    )
    models.add_argument("--model-dir", type=Path, default=None, help="default: settings.model_dir")
    msub = models.add_subparsers(dest="models_command", required=True)
    listing = msub.add_parser(
        "list", help="registered models, each beside the figures its promotion gate compares"
    )
    listing.add_argument(
        "--task", choices=["damage", "parts", "gate"], default=None, help="one task's models only"
    )
    listing.set_defaults(handler=guarded(cmd_list))
    show = msub.add_parser("show", help="one entry in full")
    show.add_argument("id", help="model id (cdat models list)")
    show.set_defaults(handler=guarded(cmd_show))
    reg = msub.add_parser("register", help="add an exported ONNX model as a new entry")
    reg.add_argument("--file", type=Path, required=True, help=".onnx (copied into the model dir)")
    reg.add_argument(
        "--task", choices=["damage", "parts", "gate"], required=True, help="model task"
    )
    reg.add_argument("--report", type=Path, default=None, help="cdat evaluate's report.json")
    reg.add_argument("--run", type=Path, default=None, help="training run folder")
    reg.add_argument("--card", type=Path, default=None, help="model card (Markdown)")
    reg.add_argument(
        "--severity",
        type=Path,
        default=None,
        help="severity stage JSON of a type-level damage model (python -m training.severity)",
    )
    reg.add_argument(
        "--closeup-severity",
        type=Path,
        default=None,
        help="a damage model's severity stage JSON for photos which are no whole-car view "
        "(python -m training.severity --graded ...); whole-car views keep --severity's",
    )
    reg.add_argument(
        "--closeup-severity-view-below",
        type=float,
        default=None,
        help="with --closeup-severity: re-read only photos whose whole-car view the gate "
        "reads under this probability (default: every photo of no whole-car view)",
    )
    reg.add_argument(
        "--calibration",
        type=Path,
        default=None,
        help="a damage model's calibration.json (python -m training.calibrate): its scores "
        "are reported as the chance a damage is damage (default: the scores)",
    )
    reg.add_argument("--id", default=None, help="default: <file stem>-<n>")
    reg.add_argument("--data", nargs="*", default=None, help="data set names (without --run)")
    reg.add_argument("--licence", default=None, help="default: the run's data licences")
    reg.add_argument("--command", default=None, help="the command that trained it")
    reg.add_argument(
        "--facts-from",
        default=None,
        help="an entry of the same model file whose data, licence, command and initial "
        "weights the new entry takes (the same weights served with other stages; not with "
        "--run)",
    )
    reg.set_defaults(handler=guarded(cmd_register))
    add_calibrate(msub, guarded(lambda args: cmd_calibrate(args, _registry(args))))
    promote = msub.add_parser("promote", help="serve this model (gate: not worse than promoted)")
    promote.add_argument("id", help="model id (cdat models list)")
    promote.add_argument("--force", action="store_true", help="promote even if worse")
    promote.add_argument(
        "--dry-run",
        action="store_true",
        help="compare with the promoted model and say whether it would be promoted; change nothing",
    )
    promote.set_defaults(handler=guarded(cmd_promote))
