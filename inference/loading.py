"""Loading the promoted models into the analyzer the claim service uses
(`inference.pipeline.Analyzer`): each model at its served threshold, runtime and precision,
with the stages its registry entry names (second looks, the zoomed-out look on close-ups,
whole-car rule, verifier, part-family stage). Nothing loads at import time::

    analyzer = build_analyzer(settings)          # once per process; ModelUnavailable if missing
"""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import Any

from cdat.settings import Settings
from cdat.whole_car import WholeCarRule
from inference import quality
from inference.crop_look import CornerLooks, CropMergedRuntime
from inference.damage_verifier import DamageVerifier, load_verifier
from inference.detector_look import DetectorLookRuntime
from inference.errors import ModelUnavailable, RegistryError
from inference.flip_tta import FlipMergedRuntime
from inference.layer_severity import LayerSeverityHead, TappedRuntime, load_closeup_severity
from inference.part_family import FamilyStage, load_family_stage
from inference.pipeline import Analyzer, RuntimeName
from inference.placer import Placer, TwinRuntime
from inference.postprocess import PostprocessConfig
from inference.readiness import readiness
from inference.registry import ModelEntry, Registry, Task, sha256_of
from inference.runtime import DetectorRuntime, SegmentationModel
from inference.serving import served_beside, served_runtime, served_stage_precision
from inference.severity import SeverityModel
from inference.stage_record import checked_file
from inference.threads import single_threaded_blas
from inference.vehicle_gate import VehicleGate, load_gate
from inference.zoom_look import ZoomedOutRuntime

log = logging.getLogger(__name__)


def load_model(
    settings: Settings,
    task: Task,
    runtime: RuntimeName = "onnx",
    config: PostprocessConfig | None = None,
    threads: int | None = None,
) -> SegmentationModel:
    """The promoted model of one task, loaded; ModelUnavailable naming the task otherwise."""
    registry = Registry.load(settings.model_dir)
    try:
        entry = registry.promoted_entry(task)
        _ = entry.served_whole_car_rule  # a damaged stored rule fails here, named
        _ = entry.served_family_stage, entry.served_verifier, entry.served_placer
        _ = entry.served_closeup_verifier, entry.served_detector_where_found
        _ = entry.served_calibration
    except RegistryError as exc:
        raise ModelUnavailable(f"{task} model: {exc.message}") from exc
    path = registry.path_of(entry)
    # A truncated copy or a file swapped under the registry must not serve silently.
    if runtime == "onnx" and entry.sha256 and sha256_of(path) != entry.sha256:
        raise ModelUnavailable(f"{task} model {path} does not match its registry checksum")
    threads = threads or settings.onnx_threads
    config = config or PostprocessConfig(conf=served_conf(settings, entry), iou=settings.nms_iou)
    severity = None
    if entry.severity_model:
        severity = SeverityModel.load(registry.model_dir / entry.severity_model)
    closeup_severity = None
    if entry.closeup_severity_model:
        closeup_file = registry.model_dir / entry.closeup_severity_model
        closeup_severity = load_closeup_severity(closeup_file, path)
    bar = entry.closeup_severity_view_below
    if bar is not None and not (closeup_severity is not None and 0.0 < bar <= 1.0):
        raise ModelUnavailable(
            f"{task} model {entry.id}: closeup_severity_view_below {bar} needs a close-up "
            "severity stage and a probability above 0, at most 1"
        )
    if isinstance(closeup_severity, LayerSeverityHead) and runtime == "onnx":
        # the head reads the model's own layers: served tapped, on ONNX Runtime in FP32
        loaded: Any = TappedRuntime.of(path, closeup_severity.taps, config, threads)
    else:
        loaded = _runtime(registry, entry, settings, runtime, config, threads)
    looks = with_second_looks(loaded, config, settings, entry)
    closeup_runtime = zoom_look_of(looks, config, entry)
    middle = middle_look_of(looks, config, entry)
    detector = detector_look_of(registry, entry, settings, config, threads)
    corners = corner_looks_of(looks, config, entry)
    return SegmentationModel(
        entry, looks, severity, closeup_severity, closeup_runtime, middle, detector, corners
    )


def detector_look_of(
    registry: Registry,
    entry: ModelEntry,
    settings: Settings,
    config: PostprocessConfig,
    threads: int,
) -> DetectorLookRuntime | None:
    """The second detector a damage entry looks with where its first look finds damage
    (`detector_where_found`); None where it names none. One asked of a model that is no
    damage model or is served with a placer (its head reads the one pass's layers), whose
    file is missing or altered, or whose classes are not the entry's, is refused by name."""
    record = entry.served_detector_where_found
    if record is None:
        return None
    if entry.task != "damage" or entry.placer:
        raise ModelUnavailable(
            f"{entry.task} model {entry.id}: detector_where_found needs a damage model "
            "served without a placer"
        )
    runtime = served_beside(registry, entry, record, settings, config, threads)
    if runtime.num_classes >= 0 and runtime.num_classes != len(entry.classes):
        raise ModelUnavailable(
            f"damage model {entry.id}: its second detector {record.file} predicts "
            f"{runtime.num_classes} classes, the entry lists {len(entry.classes)}"
        )
    return DetectorLookRuntime(runtime, config)


def where_found_flag(entry: ModelEntry, name: str) -> bool:
    """An entry's flag for a look taken where the first look finds damage; a stored value
    that is no bool is refused by name."""
    taken = getattr(entry, name)
    if not isinstance(taken, bool):
        raise ModelUnavailable(
            f"{entry.task} model {entry.id}: {name} {taken!r} needs to be true or false"
        )
    return taken


def middle_look_of(runtime: Any, config: PostprocessConfig, entry: ModelEntry) -> Any:
    """The closer middle look a damage entry takes where its first look finds damage
    (`middle_look_where_found`); None where it takes none. A value that is no bool, or the
    look asked of a model that is no damage model, beside a placer (its head reads the one
    pass's layers) or beside `crop_look` (taken on every photo already), is refused by name."""
    if not where_found_flag(entry, "middle_look_where_found"):
        return None
    if entry.task != "damage" or entry.placer or entry.crop_look:
        raise ModelUnavailable(
            f"{entry.task} model {entry.id}: middle_look_where_found needs a damage model "
            "served with neither a placer nor crop_look"
        )
    return CropMergedRuntime(runtime, config)


def corner_looks_of(runtime: Any, config: PostprocessConfig, entry: ModelEntry) -> Any:
    """The closer looks at the four corners a damage entry takes where its first look finds
    damage (`corner_looks_where_found`); None where it takes none. They are taken beside the
    middle look only, and refused by name otherwise or where the value is no bool."""
    if not where_found_flag(entry, "corner_looks_where_found"):
        return None
    if not entry.middle_look_where_found:
        raise ModelUnavailable(
            f"{entry.task} model {entry.id}: corner_looks_where_found needs "
            "middle_look_where_found beside it"
        )
    return CornerLooks(runtime, config)


def zoom_look_of(runtime: Any, config: PostprocessConfig, entry: ModelEntry) -> Any:
    """The runtime of the photos a damage model's entry takes its zoomed-out look on (its
    `zoom_look_view_below`): the served one, looking again from further away; None where
    the entry names no bar. A bar outside (0, 1], or `zoom_look_where_found` that is no
    bool or has no bar beside it, is a damaged entry, refused by name."""
    bar = entry.zoom_look_view_below
    where_found = entry.zoom_look_where_found
    if not isinstance(where_found, bool) or (where_found and bar is None):
        raise ModelUnavailable(
            f"{entry.task} model {entry.id}: zoom_look_where_found {where_found!r} needs to be "
            "true or false, and true only beside a zoom_look_view_below"
        )
    if bar is None:
        return None
    if entry.task != "damage" or isinstance(bar, bool) or not 0.0 < bar <= 1.0:
        raise ModelUnavailable(
            f"{entry.task} model {entry.id}: zoom_look_view_below {bar!r} needs a damage "
            "model and a probability above 0, at most 1"
        )
    if entry.placer:  # its head reads the layers of the model's one pass (inference/placer.py)
        raise ModelUnavailable(
            f"damage model {entry.id}: a zoomed-out look cannot be served beside a placer"
        )
    return ZoomedOutRuntime(runtime, config)


def with_second_looks(
    runtime: Any, config: PostprocessConfig, settings: Settings, entry: ModelEntry
) -> Any:
    """A damage model's runtime with the second looks it is served with: the mirrored one
    where the operator asks (`CDAT_DAMAGE_FLIP_TTA`), the closer one where the model was
    chosen with it (`crop_look` in its entry) unless the operator says otherwise
    (`CDAT_DAMAGE_CROP_LOOK`). Other tasks' runtimes are returned as they are."""
    if entry.task != "damage":
        return runtime
    looks = second_looks_of(settings, entry.crop_look)
    if "mirrored" in looks:
        runtime = FlipMergedRuntime(runtime, config)
    return CropMergedRuntime(runtime, config) if "middle" in looks else runtime


def second_looks_of(settings: Settings, crop_chosen_with: bool) -> tuple[str, ...]:
    """The second looks a damage model takes: "mirrored" where the operator asks, "middle"
    as the model was chosen (`crop_look` in its entry; an unregistered candidate, none)
    unless the operator says otherwise (`CDAT_DAMAGE_CROP_LOOK`)."""
    crop = crop_chosen_with if settings.damage_crop_look is None else settings.damage_crop_look
    return ("mirrored",) * bool(settings.damage_flip_tta) + ("middle",) * bool(crop)


def served_conf(settings: Settings, entry: ModelEntry) -> float:
    """The operator's threshold (`CDAT_DAMAGE_CONF`, `CDAT_PARTS_CONF`) over the model's own;
    a damage model served without its verifier runs at the verifier rule's `base_conf`."""
    override = settings.damage_conf if entry.task == "damage" else settings.parts_conf
    if override is not None:
        return override
    if entry.task == "damage" and not settings.damage_verifier:
        return entry.base_conf
    return entry.served_conf


def _runtime(
    registry: Registry,
    entry: ModelEntry,
    settings: Settings,
    runtime: RuntimeName,
    config: PostprocessConfig | None,
    threads: int,
) -> Any:
    path = registry.path_of(entry)
    if runtime == "ultralytics":
        from inference.ultralytics_runtime import UltralyticsRuntime

        return UltralyticsRuntime(path.with_suffix(".pt"), imgsz=entry.imgsz, config=config)
    return served_runtime(registry, entry, settings, config, threads)


def build_analyzer(settings: Settings, runtime: RuntimeName = "onnx") -> Analyzer:
    """Load both promoted models once; raises ModelUnavailable naming what is missing.

    `settings.onnx_threads` is the analyzer's whole CPU budget: with 2 or more, the two
    models run side by side with half the threads each; the crop stages (verifier, part
    family) run after both have finished, with the whole budget. Build it after the worker
    process has forked (Celery `worker_process_init`), never before.
    """
    state = readiness(settings)
    if not state.ready:
        reasons = "; ".join(m.reason for m in state.models if not m.present)
        raise ModelUnavailable(f"missing model(s) {', '.join(state.missing)}: {reasons}")
    single_threaded_blas()  # the models own the cores (inference.threads says why)
    parallel = runtime == "onnx" and settings.onnx_threads >= 2
    threads = max(1, settings.onnx_threads // 2) if parallel else settings.onnx_threads
    damage = load_model(settings, "damage", runtime, threads=threads)
    damage, placer = with_placer(settings, damage, threads)
    parts = load_model(settings, "parts", runtime, threads=threads)
    gate = load_gate(settings.model_dir, threads)
    whole_car = settings.whole_car_rule(damage.entry.served_whole_car_rule)
    _say_if_no_view(whole_car, gate, damage.entry.id)
    return Analyzer(
        damage,
        parts,
        quality_config=quality.QualityConfig(min_side=settings.min_image_side),
        max_pixels=settings.max_image_pixels,
        parallel_models=parallel,
        # beside the part model (or another photo's) with the damage model's share of cores
        gate=gate,
        photos_side_by_side=settings.claim_photos_side_by_side,
        whole_car=whole_car,
        # after both models, while the part model's share of the cores would wait
        family=served_family_stage(settings, parts.entry, settings.onnx_threads),
        verifier=served_verifier(settings, damage.entry, settings.onnx_threads),
        placer=placer,
        calibration=damage.entry.served_calibration if settings.damage_calibration else None,
    )


def _say_if_no_view(whole_car: WholeCarRule | None, gate: VehicleGate | None, damage: str) -> None:
    """A rule measured with the gate's view, served without one, falls back on counting
    parts (its measured figures do not hold then): the operator is told at start."""
    if whole_car is None or whole_car.view_probability is None:
        return
    if gate is None or not gate.reads_view:
        why = (
            "no vehicle gate is promoted" if gate is None else f"gate {gate.version} reads no view"
        )
        log.warning("damage model %s's whole-car rule reads the photo's view, but %s: "
                    "whole-car views are counted by parts", damage, why)  # fmt: skip


def with_placer(
    settings: Settings, damage: SegmentationModel, threads: int
) -> tuple[SegmentationModel, Placer | None]:
    """The damage model joined to its placer in one runtime (inference/placer.py), where
    its entry names one and the operator has not turned it off. The joined graph runs on
    ONNX Runtime FP32 and has no second look, so with a second look asked for, or a runtime
    that is not a plain ONNX session, the model is served without its placer (logged)."""
    record = damage.entry.served_placer if settings.damage_placer else None
    if record is None:
        return damage, None
    if not isinstance(damage.runtime, DetectorRuntime):
        log.warning("damage placer %s not served: the damage model runs with a second look "
                    "or another runtime", record.file)  # fmt: skip
        return damage, None
    path = checked_file(settings.model_dir, record, "damage placer")
    model_file = settings.model_dir / damage.entry.file
    twin = TwinRuntime.joined(model_file, path, damage.runtime.config, threads)
    return replace(damage, runtime=twin), Placer(twin, record.rule)


def served_verifier(settings: Settings, entry: ModelEntry, threads: int) -> DamageVerifier | None:
    """The damage model's verifier, unless the operator turned it off."""
    record = entry.served_verifier if settings.damage_verifier else None
    if record is None:
        return None
    return load_verifier(settings.model_dir, record, settings.model_dir / entry.file, threads,
                         entry.served_closeup_verifier,
                         served_stage_precision(entry, settings))  # fmt: skip


def served_family_stage(settings: Settings, entry: ModelEntry, threads: int) -> FamilyStage | None:
    """The part model's part-family stage, unless the operator turned it off."""
    record = entry.served_family_stage if settings.part_family else None
    if record is None:
        return None
    backbone, precision = settings.model_dir / entry.file, served_stage_precision(entry, settings)
    return load_family_stage(settings.model_dir, record, backbone, threads, precision)
