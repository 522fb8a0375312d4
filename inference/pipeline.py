"""Photos -> `PhotoAnalysis`: the analyzer the claim service uses.

Service entry points (nothing loads at import time)::

    analyzer = build_analyzer(settings)          # once per process; ModelUnavailable if missing
    analyses = analyzer.analyze(photos)          # one PhotoAnalysis per PhotoInput, in order
    readiness(settings).as_dict()                # which models are present, without loading

Per photo: decode (EXIF, colour, depth) -> quality checks and perceptual hash ->
the vehicle gate, when one is promoted (a photo without a vehicle stops there, refused as
`no_vehicle`: inference/vehicle_gate.py) -> damage and part segmentation -> damage
assigned to parts -> vehicle and duplicate checks.
A photo that cannot be analysed gets a blocking `QualityIssue`; it never fails the claim.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from concurrent import futures
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from cdat.analysis import PhotoInput
from cdat.findings import DamageInstance, PhotoAnalysis, QualityIssue
from cdat.settings import Settings
from cdat.whole_car import WholeCarRule, kept_damages
from inference import quality
from inference.assign import assign_parts
from inference.errors import ModelUnavailable, RegistryError, UnreadableImage
from inference.imaging import load_photo
from inference.postprocess import PostprocessConfig, RawDetections
from inference.readiness import readiness
from inference.registry import ModelEntry, Registry, Task, sha256_of
from inference.runtime import SegmentationModel, damage_instances, part_instances
from inference.serving import served_runtime
from inference.severity import SeverityModel
from inference.threads import single_threaded_blas
from inference.vehicle_gate import VehicleGate, load_gate

log = logging.getLogger(__name__)

_Damages = tuple[RawDetections, tuple[DamageInstance, ...]]
"""A photo's damage model output, in photo coordinates, and its unassigned damages."""
RuntimeName = Literal["onnx", "ultralytics"]


@dataclass
class _Photo:
    """Working state of one photo through the pipeline."""

    photo_id: str
    image: np.ndarray | None = None
    """Upright BGR, possibly decoded at reduced size (`scale` maps it to the photo)."""
    scale: tuple[float, float] = (1.0, 1.0)
    width: int = 0
    height: int = 0
    issues: list[QualityIssue] = field(default_factory=list)
    phash: str | None = None
    vehicle_probability: float | None = None
    timings: dict[str, float] = field(default_factory=dict)
    result: PhotoAnalysis | None = None

    @property
    def blocked(self) -> bool:
        return any(i.blocking for i in self.issues)


class Analyzer:
    """Both segmentation models plus the quality checks; implements `PhotoAnalyzer`."""

    def __init__(
        self,
        damage: SegmentationModel,
        parts: SegmentationModel,
        *,
        quality_config: quality.QualityConfig | None = None,
        max_pixels: int = 50_000_000,
        parallel_models: bool = False,
        gate: VehicleGate | None = None,
        photos_side_by_side: bool = False,
        whole_car: WholeCarRule | None = None,
    ) -> None:
        self.damage = damage
        self.whole_car = whole_car
        self.parts = parts
        self.gate = gate
        self.quality = quality_config or quality.QualityConfig()
        self.max_pixels = max_pixels
        # Two small models side by side on one core each scale better than one model
        # at a time on two cores (small convolutions parallelise poorly); ONNX Runtime
        # releases the GIL while it runs, so a thread is enough.
        self._pool = ThreadPoolExecutor(1, "cdat-parts") if parallel_models else None
        # A claim can also run one photo per core, each through both models (no core waits
        # for the slower model; decoding overlaps the other photo's models). Measured
        # against the models side by side in one bench run on the loaded 2-core machine it
        # was not faster (bench/results/inference.json), so it is opt-in
        # (`CDAT_CLAIM_PHOTOS_SIDE_BY_SIDE`); runtimes compiled for batches never use it.
        self._photo_pool = ThreadPoolExecutor(2, "cdat-photo") if parallel_models else None
        self._batched = any(getattr(m.runtime, "batch_size", 1) > 1 for m in (damage, parts))
        self.photos_side_by_side = photos_side_by_side and not self._batched

    @property
    def model_versions(self) -> dict[str, str]:
        versions = {"damage": self.damage.version, "parts": self.parts.version}
        return versions | ({"gate": self.gate.version} if self.gate else {})

    @property
    def runtimes(self) -> dict[str, str]:
        """Backend and precision each model runs on, e.g. {"damage": "openvino-bf16"}."""
        return {
            "damage": getattr(self.damage.runtime, "label", type(self.damage.runtime).__name__),
            "parts": getattr(self.parts.runtime, "label", type(self.parts.runtime).__name__),
        }

    def analyze(self, photos: Sequence[PhotoInput]) -> list[PhotoAnalysis]:
        """A claim's photos (or one photo) -> one analysis each, in order."""
        if self._photo_pool is not None and self.photos_side_by_side and len(photos) > 1:
            work = list(self._photo_pool.map(self._prepare_and_segment, photos))
        else:
            work = [self._prepare_safely(photo) for photo in photos]
            ready = [p for p in work if not p.blocked and p.image is not None]
            if self.gate is not None and self._pool is not None and not self._batched:
                self._gate_beside_parts(ready, self._pool)
            else:
                self._check_vehicle(ready)
                self._segment([p for p in ready if not p.blocked])
        dupes = quality.duplicate_issues(
            [p.photo_id for p in work], [p.phash for p in work], self.quality
        )
        return [self._finish(p, dupes.get(k)) for k, p in enumerate(work)]

    def _prepare_safely(self, photo: PhotoInput) -> _Photo:
        try:
            return self._prepare(photo)
        except Exception as exc:  # one photo's failure must never fail the claim
            log.exception("preparing photo %s failed", photo.photo_id)
            return _Photo(photo.photo_id, issues=[_analysis_failed(exc)])

    def _prepare(self, photo: PhotoInput) -> _Photo:
        state = _Photo(photo.photo_id)
        started = time.perf_counter()
        try:
            decoded = load_photo(photo.data, self.max_pixels)
        except UnreadableImage as exc:
            state.issues.append(quality.unreadable(exc.message))
            return state
        except Exception as exc:  # a codec crash on hostile bytes must not fail the claim
            log.warning("decoding photo %s failed: %r", photo.photo_id, exc)
            state.issues.append(quality.unreadable(type(exc).__name__))
            return state
        image, state.scale = decoded.image, decoded.scale
        state.width, state.height = decoded.width, decoded.height
        state.timings["decode_ms"] = _ms(started)
        started = time.perf_counter()
        state.issues += quality.check_size(state.width, state.height, self.quality)
        if not state.blocked:
            gray = quality.analysis_gray(image, self.quality.analysis_side)
            state.issues += quality.check_exposure(gray, self.quality)
            state.issues += quality.check_blur(gray, self.quality)
            state.phash = quality.perceptual_hash(gray)
        state.image = image
        state.timings["quality_ms"] = _ms(started)
        return state

    def _check_vehicle(self, photos: list[_Photo]) -> None:
        """The vehicle gate on the photos' images: a refused photo gets the blocking
        `no_vehicle` issue, so it is never segmented and nothing is priced for it."""
        if self.gate is None or not photos:
            return
        started = time.perf_counter()
        try:
            found = self.gate.probabilities([p.image for p in photos if p.image is not None])
        except Exception:  # a gate failure leaves today's checks in charge, never a refusal
            log.exception("the vehicle gate failed on %d photo(s)", len(photos))
            return
        for photo, probability in zip(photos, found, strict=True):
            photo.vehicle_probability = round(float(probability), 4)
            photo.timings["gate_ms"] = _ms(started) / len(photos)
            if probability < self.gate.threshold:
                photo.issues.append(quality.no_vehicle())

    def _gate_beside_parts(self, photos: list[_Photo], pool: ThreadPoolExecutor) -> None:
        """The gate, then the damage model and its post-processing, on this thread while
        the slower part model runs on the other (it used to wait for the gate): a photo
        the gate refuses is never given to the damage model, and the part model's output
        for it is dropped unread, so it is refused exactly as before. Runtimes run photo
        by photo here (no batches), so every kept photo's outputs are those it had alone.
        `models_ms` is then the wall time of the gate and both models, side by side."""
        if not photos:
            return
        images = [p.image for p in photos if p.image is not None]  # all: `ready` photos
        started = time.perf_counter()
        parts_future = pool.submit(_timed, self.parts, images)
        try:
            self._check_vehicle(photos)
            kept = [k for k, p in enumerate(photos) if not p.blocked]
            damage_raw, damage_ms = (
                _timed(self.damage, [images[k] for k in kept]) if kept else ([], 0.0)
            )
            damages = [
                self._damages(photos[k], raw) for k, raw in zip(kept, damage_raw, strict=True)
            ]
            parts_raw, parts_ms = parts_future.result()
        except Exception:  # as `_segment` does: again photo by photo, each failure its own
            futures.wait([parts_future])
            self._segment([p for p in photos if not p.blocked])
            return
        models_ms = _ms(started) / len(photos)
        for k, found in zip(kept, damages, strict=True):
            photos[k].timings.update(
                damage_ms=damage_ms / len(kept),
                parts_ms=parts_ms / len(photos),
                models_ms=models_ms,
            )
            self._build(photos[k], found, parts_raw[k])

    def _prepare_and_segment(self, photo: PhotoInput) -> _Photo:
        state = self._prepare_safely(photo)
        if not state.blocked and state.image is not None:
            self._check_vehicle([state])
        if not state.blocked and state.image is not None:
            self._segment([state], side_by_side=False)
        return state

    def _segment(self, photos: list[_Photo], side_by_side: bool = True) -> None:
        if not photos:
            return
        try:
            self._segment_batch(photos, side_by_side)
        except Exception as exc:
            if len(photos) == 1:
                log.exception("analysing photo %s failed", photos[0].photo_id)
                photos[0].issues.append(_analysis_failed(exc))
                return
            for photo in photos:  # isolate the photo that breaks the batch
                self._segment([photo], side_by_side)

    def _segment_batch(self, photos: list[_Photo], side_by_side: bool = True) -> None:
        images = [p.image for p in photos if p.image is not None]
        started = time.perf_counter()
        if self._pool is not None and side_by_side:
            parts_future = self._pool.submit(_timed, self.parts, images)
            damage_raw, damage_ms = _timed(self.damage, images)
            parts_raw, parts_ms = parts_future.result()
        else:
            damage_raw, damage_ms = _timed(self.damage, images)
            parts_raw, parts_ms = _timed(self.parts, images)
        models_ms = _ms(started) / len(photos)  # wall time of both: they may overlap
        for photo, d_raw, p_raw in zip(photos, damage_raw, parts_raw, strict=True):
            photo.timings.update(
                damage_ms=damage_ms / len(photos),
                parts_ms=parts_ms / len(photos),
                models_ms=models_ms,
            )
            self._build(photo, self._damages(photo, d_raw), p_raw)

    def _damages(self, photo: _Photo, d_raw: RawDetections) -> _Damages:
        """The damage model's output in photo coordinates and its unassigned damages."""
        started = time.perf_counter()
        d_raw = d_raw.rescaled(*photo.scale)
        assert photo.image is not None  # only photos with an image are segmented
        found = damage_instances(self.damage, d_raw, photo.image, photo.width, photo.height)
        photo.timings["postprocess_ms"] = _ms(started)
        return d_raw, found

    def _build(self, photo: _Photo, damages: _Damages, p_raw: RawDetections) -> None:
        d_raw, found = damages
        started = time.perf_counter()
        w, h = photo.width, photo.height
        p_raw = p_raw.rescaled(*photo.scale)
        parts = part_instances(self.parts, p_raw, w, h)
        found = assign_parts(found, d_raw.masks, parts, p_raw.masks)
        if self.whole_car is not None:  # cdat/whole_car.py: whole-car views need more
            found = kept_damages(found, parts, w, h, self.whole_car)
        evidence = p_raw.best_score
        photo.issues += quality.check_vehicle(len(parts), len(found), evidence, self.quality)
        photo.timings["postprocess_ms"] += _ms(started)
        photo.result = PhotoAnalysis(photo.photo_id, w, h, damages=found, parts=parts)

    def _finish(self, photo: _Photo, duplicate: QualityIssue | None) -> PhotoAnalysis:
        issues = [*photo.issues, *([duplicate] if duplicate else [])]
        timings = {k: round(v, 2) for k, v in photo.timings.items()}
        base = photo.result or PhotoAnalysis(photo.photo_id, photo.width, photo.height)
        return PhotoAnalysis(
            photo_id=base.photo_id,
            width=base.width,
            height=base.height,
            damages=base.damages,
            parts=base.parts,
            quality_issues=tuple(issues),
            perceptual_hash=photo.phash,
            timings_ms=timings,
            vehicle_probability=photo.vehicle_probability,
        )


def _timed(model: SegmentationModel, images: list[np.ndarray]) -> tuple[list[RawDetections], float]:
    started = time.perf_counter()
    return model.infer(images), _ms(started)


def _ms(started: float) -> float:
    return (time.perf_counter() - started) * 1000.0


def _analysis_failed(exc: Exception) -> QualityIssue:
    return quality.issue(
        quality.ANALYSIS_FAILED,
        f"The photo could not be analysed ({type(exc).__name__}).",
        "Take the photo again; if it keeps failing, send it to your adjuster.",
        blocking=True,
    )


# --- loading -------------------------------------------------------------------------


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
    return SegmentationModel(
        entry, _runtime(registry, entry, settings, runtime, config, threads), severity
    )


def served_conf(settings: Settings, entry: ModelEntry) -> float:
    """The operator's threshold (`CDAT_DAMAGE_CONF`, `CDAT_PARTS_CONF`) over the model's own."""
    override = settings.damage_conf if entry.task == "damage" else settings.parts_conf
    return entry.served_conf if override is None else override


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
    models run side by side with half the threads each. Build it after the worker
    process has forked (Celery `worker_process_init`), never before.
    """
    state = readiness(settings)
    if not state.ready:
        reasons = "; ".join(m.reason for m in state.models if not m.present)
        raise ModelUnavailable(f"missing model(s) {', '.join(state.missing)}: {reasons}")
    single_threaded_blas()  # the models own the cores (inference.threads says why)
    parallel = runtime == "onnx" and settings.onnx_threads >= 2
    threads = max(1, settings.onnx_threads // 2) if parallel else settings.onnx_threads
    return Analyzer(
        load_model(settings, "damage", runtime, threads=threads),
        load_model(settings, "parts", runtime, threads=threads),
        quality_config=quality.QualityConfig(min_side=settings.min_image_side),
        max_pixels=settings.max_image_pixels,
        parallel_models=parallel,
        gate=load_gate(settings.model_dir, settings.onnx_threads),
        photos_side_by_side=settings.claim_photos_side_by_side,
        whole_car=settings.whole_car_rule,
    )
