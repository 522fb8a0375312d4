"""The precision gate: may a promoted model be served in bf16 (or int8)? Judged on val.

The served analyzer runs the held-out val photos as a claim is measured
(`training.claim_eval`: damage found per source, part family, intact cars with damage,
photos refused) twice, once all FP32 on ONNX Runtime and once with the model under test
in the candidate backend and precision (with `--stages`, the crop stages beside it in bf16
too, as a record saying `stages` bf16 serves them: inference/stage_bf16.py; where that is
refused, the model alone again), and the model's mask mAP50 is measured both ways
on its labelled val photos (`training.mask_map`). The candidate passes when no figure
worsens by more than `AccuracyTolerance` allows. Detection parity against FP32
(`inference.parity`) is measured as well and recorded as information: a precision that
moves a few low-scored detections but finds the same damage is not refused for it.
The verdict goes into the registry entry's `precisions`, which serving reads
(`inference.runtime_choice`); only a record whose accuracy passed is ever served::

    python -m training.precision_gate --task damage parts --precision bf16 --report runs/gate
    python -m training.precision_gate --task damage parts --precision bf16 --stages \
        --report runs/gate
    python -m inference.quantize --model inference/models/D.onnx \\
        --out inference/models/D.int8.onnx --images ../shared/datasets/damage-severity/images/train
    python -m training.precision_gate --task damage --precision int8 --file D.int8.onnx

The vehicle gate is not judged here: it runs on ONNX Runtime FP32 only (its model is
~7 ms of a photo). Exit status 0 when it passed, 1 when refused, 2 on bad input.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from cdat.errors import CdatError
from cdat.settings import Settings
from inference.backends import BACKENDS, PRECISIONS, BackendName, Precision, open_session
from inference.cpu_features import read_cpu_features
from inference.registry import ModelEntry, Registry, sha256_of
from inference.runtime import DetectorRuntime, Runtime, SegmentationModel
from training.errors import run_script
from training.precision_verdict import (
    AccuracyTolerance,
    AccuracyVerdict,
    claim_figures,
    judge_accuracy,
)

MeasureClaims = Callable[[Any], Mapping[str, Any]]
"""The served analyzer -> `claim_report`'s headline figures."""
MeasureMap = Callable[[Runtime], Mapping[str, Any]]
"""A runtime of the model under test -> `mask_map.mask_map50`'s report."""


def candidate_model(
    model: SegmentationModel,
    path: Path,
    backend: BackendName,
    precision: Precision,
    threads: int,
    settings: Settings,
) -> SegmentationModel:
    """The same model, entry and severity stages, run in the candidate backend and precision
    with the served post-processing (threshold, NMS) and every look its entry is served with
    (`settings` as FP32's analyzer reads them), its second detector in the same backend and
    precision: a look judged in FP32 alone would compare the model with the look against the
    model without it."""
    from inference.detector_look import DetectorLookRuntime
    from inference.loading import corner_looks_of, middle_look_of, with_second_looks, zoom_look_of
    from inference.serving import detector_beside

    config = getattr(model.runtime, "config", None)
    session = open_session(path, backend, precision, threads=threads)
    runtime = DetectorRuntime(session, config=config)
    entry = model.entry
    looks = with_second_looks(runtime, runtime.config, settings, entry)
    closeup = zoom_look_of(looks, runtime.config, entry)
    middle = middle_look_of(looks, runtime.config, entry)
    corners = corner_looks_of(looks, runtime.config, entry)
    detector = None
    record = entry.served_detector_where_found
    if record is not None:  # the second detector serves on its model's backend and precision
        beside = detector_beside(
            path.parent, entry, record, (backend, precision), threads, 1, runtime.config
        )
        detector = DetectorLookRuntime(beside, runtime.config)
    severities = (model.severity, model.closeup_severity)
    return SegmentationModel(entry, looks, *severities, closeup, middle, detector, corners)


def gate_accuracy(
    build: Callable[[], Any],
    task: str,
    swap: Callable[[SegmentationModel], SegmentationModel],
    claims: MeasureClaims,
    map50: MeasureMap,
    map_runtime: Callable[[bool], Runtime],
    tolerance: AccuracyTolerance | None = None,
    reference_claims: Mapping[str, Any] | None = None,
    swap_stages: Callable[[Any], None] | None = None,
) -> tuple[AccuracyVerdict, dict[str, Any]]:
    """FP32 and candidate measured the same way, judged. `build()` makes the FP32 analyzer;
    `swap` puts the candidate in place of its `task` model, and `swap_stages` (where given)
    the crop stages beside it in the candidate precision; `map_runtime(candidate)` gives
    the model under test at mAP settings; `reference_claims`, FP32's claim figures when
    another model's gate already measured them. Returns the verdict and the raw reports."""
    if reference_claims is None:
        reference_claims = claims(build())
    analyzer = build()
    setattr(analyzer, task, swap(getattr(analyzer, task)))
    if swap_stages is not None:
        swap_stages(analyzer)
    candidate_claims = claims(analyzer)
    reference_map = map50(map_runtime(False))
    candidate_map = map50(map_runtime(True))
    ref = {**claim_figures(reference_claims), f"mask_map50/{task}": reference_map["mask_map50"]}
    cand = {**claim_figures(candidate_claims), f"mask_map50/{task}": candidate_map["mask_map50"]}
    raw = {
        "claims": {"fp32": dict(reference_claims), "candidate": dict(candidate_claims)},
        "mask_map50": {"fp32": dict(reference_map), "candidate": dict(candidate_map)},
    }
    return judge_accuracy(ref, cand, tolerance), raw


def stages_swapper(
    task: str, entry: ModelEntry, settings: Settings, threads: int
) -> Callable[[Any], None]:
    """Puts the crop stages beside `task`'s model (the damage verifiers, or the part-family
    stage) on an analyzer in bf16 (inference/stage_bf16.py), as a record with `stages`
    bf16 serves them; an analyzer served without them is left so."""
    from inference.damage_verifier import load_verifier
    from inference.part_family import load_family_stage

    backbone = settings.model_dir / entry.file

    def swap(analyzer: Any) -> None:
        if task == "damage" and analyzer.verifier is not None:
            record, closeup = entry.served_verifier, entry.served_closeup_verifier
            assert record is not None  # the analyzer serves it
            analyzer.verifier = load_verifier(
                settings.model_dir, record, backbone, threads, closeup, "bf16"
            )
        if task == "parts" and analyzer.family is not None:
            family = entry.served_family_stage
            assert family is not None  # the analyzer serves it
            analyzer.family = load_family_stage(
                settings.model_dir, family, backbone, threads, "bf16"
            )

    return swap


MAP_DATA = {"damage": "damage-severity.yaml", "parts": "car-parts.yaml"}
"""The labelled val set mask mAP50 is measured on: typed damage outlines (the one source
that names damage types), and the part model's own data set."""


def run_gate(
    args: argparse.Namespace, task: str, fp32_claims: dict[str, Any]
) -> tuple[ModelEntry, dict[str, Any]]:
    """One model's gate; `fp32_claims` holds FP32's claim figures once measured (the same
    for every model of one registry), so that gating both models measures them once."""
    from cdat.settings import Settings
    from inference.loading import build_analyzer
    from inference.parity import gate
    from inference.runtime import OnnxRuntime
    from training.claim_eval import DATASETS, check_sources, claim_report
    from training.mask_map import MAP_CONFIG, labelled_split, mask_map50

    registry = Registry.load(args.model_dir)
    entry = registry.promoted_entry(task)  # type: ignore[arg-type]
    fp32_path = registry.path_of(entry)
    path = registry.model_dir / (args.file or entry.file)
    root = check_sources(args.data_root)
    settings = Settings(
        model_dir=args.model_dir,
        inference_runtime="onnxruntime",
        inference_precision="fp32",
        onnx_threads=args.threads,
    )
    per_model = max(1, args.threads // 2)  # as build_analyzer splits them, models side by side
    photos = labelled_split(DATASETS / MAP_DATA[task], "val", entry.classes, 0, root)

    # the model alone, judged again where its stages were refused, has the same mAP50:
    # each runtime is made and measured once
    runtimes: dict[bool, Runtime] = {}
    maps: dict[int, Mapping[str, Any]] = {}

    def map_runtime(candidate: bool) -> Runtime:
        if candidate in runtimes:
            return runtimes[candidate]
        if candidate:
            session = open_session(path, args.runtime, args.precision, threads=args.threads)
            runtime: Runtime = DetectorRuntime(session, config=MAP_CONFIG)
        else:
            runtime = OnnxRuntime(fp32_path, threads=args.threads, config=MAP_CONFIG)
        runtimes[candidate] = runtime
        return runtime

    def map50(runtime: Runtime) -> Mapping[str, Any]:
        if id(runtime) not in maps:
            maps[id(runtime)] = mask_map50(runtime, photos, entry.classes)
        return maps[id(runtime)]

    def judged(swap_stages: Callable[[Any], None] | None) -> tuple[AccuracyVerdict, Any]:
        return gate_accuracy(
            lambda: build_analyzer(settings),
            task,
            lambda model: candidate_model(
                model, path, args.runtime, args.precision, per_model, settings
            ),
            lambda analyzer: claim_report(analyzer, "val", 0, root),
            map50,
            map_runtime,
            reference_claims=fp32_claims.get("report"),
            swap_stages=swap_stages,
        )

    stages = stages_swapper(task, entry, settings, args.threads) if args.stages else None
    verdict, raw = judged(stages)
    fp32_claims["report"] = raw["claims"]["fp32"]
    stages_refused: list[str] = []
    if stages is not None and not verdict.passed:
        # the stages in bf16 cost what the model alone may not: the model is judged alone
        stages_refused = list(verdict.reasons)
        verdict, raw = judged(None)
    # Parity, for information: the served threshold, the first 60 labelled val photos.
    from inference.postprocess import PostprocessConfig

    served = PostprocessConfig(conf=entry.served_conf)
    reference = OnnxRuntime(fp32_path, threads=args.threads, config=served)
    session = open_session(path, args.runtime, args.precision, threads=args.threads)
    images = [p.image for p in photos[:60]]
    parity = gate(reference, DetectorRuntime(session, config=served), images)
    record: dict[str, Any] = {
        "passed": verdict.passed,
        "reasons": list(verdict.reasons),
        "runtime": args.runtime,
        "conf": entry.served_conf,
        "split": "val",
        "checked_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        # bf16 kernels differ by instruction set (AMX tiles, AVX512-BF16 dot products), and
        # so do the figures: the record says which this verdict was measured on
        "cpu": read_cpu_features().summary(),
        "command": " ".join(["python -m training.precision_gate", *sys.argv[1:]]),
        "accuracy": verdict.as_dict(),
        "parity": {**parity.as_dict(), "photos": f"{MAP_DATA[task]} val"},
    }
    if stages is not None and not stages_refused:  # measured in bf16 too: they serve so
        record["stages"] = "bf16"
    if stages_refused:  # the verdict above is the model's alone; they serve in FP32
        record["stages_refused"] = stages_refused
    if args.file:
        record.update(file=args.file, sha256=sha256_of(path))
    if args.report:
        out = args.report / f"{entry.id}.{args.precision}.json"
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps({"entry": entry.id, **record, "raw": raw}, indent=1) + "\n")
    return entry, record


def get_args_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    default_dir = Path(__file__).resolve().parents[1] / "inference" / "models"
    parser.add_argument(
        "--model-dir", type=Path, default=default_dir, help="the registry whose models to judge"
    )
    parser.add_argument(
        "--task",
        choices=("damage", "parts"),
        nargs="+",
        required=True,
        help="the promoted model(s) to judge, each against all FP32",
    )
    parser.add_argument(
        "--precision",
        choices=[p for p in PRECISIONS if p != "fp32"],
        required=True,
        help="the candidate precision (bf16-fp32-head: bf16 with the segmentation head in FP32)",
    )
    parser.add_argument(
        "--runtime", choices=BACKENDS, default="openvino", help="the candidate's runtime"
    )
    parser.add_argument("--file", help="int8: the quantised file, relative to the model dir")
    parser.add_argument(
        "--stages",
        action="store_true",
        help="bf16: judge the crop stages beside the model (verifiers, part-family stage) in "
        "bf16 too; where that is refused, the model is judged alone and its stages serve FP32",
    )
    parser.add_argument("--threads", type=int, default=2, help="the analyzer's CPU budget")
    parser.add_argument("--data-root", type=Path, default=None, help="default: $CDAT_DATA_ROOT")
    parser.add_argument("--report", type=Path, help="folder: each model's full figures (JSON)")
    parser.add_argument("--dry-run", action="store_true", help="judge without recording")
    return parser


def main(args: argparse.Namespace) -> int:
    try:
        if args.precision == "int8" and not args.file:
            raise CdatError("--precision int8 needs --file, the quantised model")
        if args.stages and args.precision != "bf16":
            raise CdatError(f"--stages judges crop stages in bf16 only, not {args.precision}")
        if args.precision.startswith("bf16") and args.runtime != "openvino":
            raise CdatError(f"{args.precision} runs on openvino only")
        cpu = read_cpu_features()
        if args.precision.startswith("bf16") and not cpu.bf16:
            # OpenVINO would run the bf16 hint in FP32 here: the candidate would be the
            # reference, and pass whatever bf16 itself would do
            raise CdatError(
                f"{cpu.summary()} has no native bf16 (AVX512-BF16 or AMX): {args.precision} "
                "would run in FP32 here; judge it on a CPU that has it"
            )
        if args.file and not (args.model_dir / args.file).is_file():
            raise CdatError(f"no such model file in {args.model_dir}: {args.file}")
        if args.file and len(args.task) > 1:
            raise CdatError("--file names one quantised model: give one --task with it")
        fp32_claims: dict[str, Any] = {}
        passed = True
        for task in args.task:
            entry, record = run_gate(args, task, fp32_claims)
            print(json.dumps({"entry": entry.id, "precision": args.precision, **record}, indent=2))
            passed &= record["passed"]
            if not args.dry_run:
                # Loaded again: another tool may have written it in the minutes this ran.
                registry = Registry.load(args.model_dir)
                registry.record_precision(entry.id, args.precision, record)
                registry.save()
                print(f"recorded in {registry.model_dir / 'registry.json'}")
    except CdatError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return 2
    return 0 if passed else 1


if __name__ == "__main__":
    run_script(main, get_args_parser())
