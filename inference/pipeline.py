"""Photos -> `PhotoAnalysis`: the analyzer the claim service uses.

Service entry points (nothing loads at import time; loading is inference/loading.py)::

    analyzer = build_analyzer(settings)          # once per process; ModelUnavailable if missing
    analyses = analyzer.analyze(photos)          # one PhotoAnalysis per PhotoInput, in order
    readiness(settings).as_dict()                # which models are present (inference/readiness.py)

Per photo: decode (EXIF, colour, depth) -> quality checks and perceptual hash ->
the vehicle gate, when one is promoted (a photo without a vehicle stops there, refused as
`no_vehicle`: inference/vehicle_gate.py) -> damage and part segmentation -> damage
assigned to parts (by the masks, then by its type where they give none: a broken lamp on a
lamp) -> the damage verifier, the damage placer and the part-family stage, when promoted
-> a photo they leave damage on analysed again with the looks its damage entry takes where
damage is found (`_found_again`) -> vehicle and duplicate checks. With a gate and two
threads, the part model (the slower) starts right after decoding, beside the checks, the
gate and the damage model; its output for a photo they block is dropped
(`Analyzer._checks_beside_parts`). A photo that cannot be analysed gets a blocking
`QualityIssue`; it never fails the claim.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from concurrent import futures
from concurrent.futures import ThreadPoolExecutor
from typing import Literal

import numpy as np

from cdat.analysis import PhotoInput
from cdat.calibration import ConfidenceCalibration
from cdat.findings import DamageInstance, PartInstance, PhotoAnalysis, QualityIssue
from cdat.whole_car import WholeCarRule, is_whole_car_view, kept_damages
from inference import quality
from inference.assign import assign_parts, unique_coverage
from inference.damage_verifier import DamageVerifier
from inference.layer_severity import LayerSeverityHead, severities_from_layers
from inference.part_family import FamilyStage, placed_by_type
from inference.photo_checks import PhotoChecks
from inference.photo_state import Damages, PhotoState, analysis_failed, ms, timed
from inference.placer import Placer
from inference.postprocess import RawDetections
from inference.runtime import (
    SegmentationModel,
    damage_instances,
    part_instances,
    severities_reread,
)
from inference.severity import SeverityModel
from inference.vehicle_gate import VehicleGate

log = logging.getLogger(__name__)

RuntimeName = Literal["onnx", "ultralytics"]


class Analyzer(PhotoChecks):
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
        family: FamilyStage | None = None,
        verifier: DamageVerifier | None = None,
        placer: Placer | None = None,
        calibration: ConfidenceCalibration | None = None,
    ) -> None:
        self.damage = damage
        self.calibration = calibration
        """How the damage model's scores are read as chances (cdat/calibration.py); None:
        the scores are reported. It belongs to the damage model it was fitted for."""
        self.placer = placer
        """Its runtime runs the damage model too: with a placer, `damage` is only read for
        its classes and severity stage (`_damage_timed`)."""
        self.family = family
        self.verifier = verifier
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
        versions |= {"placer": self.placer.version} if self.placer else {}
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
        elif self.gate is not None and self._pool is not None and not self._batched:
            work = [self._prepare_safely(photo, checks=False) for photo in photos]
            self._checks_beside_parts(work, self._pool)
        else:
            work = [self._prepare_safely(photo) for photo in photos]
            ready = [p for p in work if not p.blocked and p.image is not None]
            self._check_vehicle(ready)
            self._segment([p for p in ready if not p.blocked])
        dupes = quality.duplicate_issues(
            [p.photo_id for p in work], [p.phash for p in work], self.quality
        )
        return [self._finish(p, dupes.get(k)) for k, p in enumerate(work)]

    def _checks_beside_parts(self, work: list[PhotoState], pool: ThreadPoolExecutor) -> None:
        """The part model starts on the other thread as soon as the photos are decoded,
        while the quality checks, the gate, then the damage model and its post-processing
        run on this one (they all came before it, and it is the slower model). A photo
        that a check or the gate blocks is never given to the damage model and the part
        model's output for it is dropped unread, so it is blocked exactly as before.
        Runtimes run photo by photo here (no batches), so a kept photo's outputs are those
        it had alone. `models_ms` is the wall time of all of it."""
        decoded = [k for k, p in enumerate(work) if p.image is not None and not p.blocked]
        images = [im for k in decoded if (im := work[k].image) is not None]
        if not images:
            return
        started = time.perf_counter()
        parts_future = pool.submit(timed, self.parts, images)
        for k in decoded:
            work[k] = self._checked_safely(work[k])
        self._check_vehicle([work[k] for k in decoded if not work[k].blocked])
        kept = [j for j, k in enumerate(decoded) if not work[k].blocked]
        try:
            damage_raw, damage_ms = (
                self._damage_timed([work[decoded[j]] for j in kept], [images[j] for j in kept])
                if kept
                else ([], 0.0)
            )
            damages = [
                self._damages(work[decoded[j]], raw)
                for j, raw in zip(kept, damage_raw, strict=True)
            ]
            parts_raw, parts_ms = parts_future.result()
        except Exception:  # as `_segment` does: again photo by photo, each failure its own
            futures.wait([parts_future])
            self._segment([work[decoded[j]] for j in kept])
            return
        models_ms = ms(started) / len(images)
        for j, found in zip(kept, damages, strict=True):
            photo = work[decoded[j]]
            photo.timings.update(
                damage_ms=damage_ms / len(kept),
                parts_ms=parts_ms / len(images),
                models_ms=models_ms,
            )
            self._build(photo, found, parts_raw[j])

    def _prepare_and_segment(self, photo: PhotoInput) -> PhotoState:
        state = self._prepare_safely(photo)
        if not state.blocked and state.image is not None:
            self._check_vehicle([state])
        if not state.blocked and state.image is not None:
            self._segment([state], side_by_side=False)
        return state

    def _segment(self, photos: list[PhotoState], side_by_side: bool = True) -> None:
        if not photos:
            return
        try:
            self._segment_batch(photos, side_by_side)
        except Exception as exc:
            if len(photos) == 1:
                log.exception("analysing photo %s failed", photos[0].photo_id)
                photos[0].issues.append(analysis_failed(exc))
                return
            for photo in photos:  # isolate the photo that breaks the batch
                self._segment([photo], side_by_side)

    def _segment_batch(self, photos: list[PhotoState], side_by_side: bool = True) -> None:
        images = [p.image for p in photos if p.image is not None]
        started = time.perf_counter()
        if self._pool is not None and side_by_side:
            parts_future = self._pool.submit(timed, self.parts, images)
            damage_raw, damage_ms = self._damage_timed(photos, images)
            parts_raw, parts_ms = parts_future.result()
        else:
            damage_raw, damage_ms = self._damage_timed(photos, images)
            parts_raw, parts_ms = timed(self.parts, images)
        models_ms = ms(started) / len(photos)  # wall time of both: they may overlap
        for photo, d_raw, p_raw in zip(photos, damage_raw, parts_raw, strict=True):
            photo.timings.update(
                damage_ms=damage_ms / len(photos),
                parts_ms=parts_ms / len(photos),
                models_ms=models_ms,
            )
            self._build(photo, self._damages(photo, d_raw), p_raw)

    def _damage_timed(
        self, photos: list[PhotoState], images: list[np.ndarray]
    ) -> tuple[list[RawDetections], float]:
        """The damage model on the photos, those the gate read as close-ups with the
        entry's zoomed-out look (`SegmentationModel.infer_by_view`); with a placer (one look:
        its head reads the model's own pass), each photo keeps the layers its head reads,
        for `_build`."""
        if self.placer is None:
            started = time.perf_counter()
            views = [photo.whole_car_view_probability for photo in photos]
            return self.damage.infer_by_view(images, views), ms(started)
        started = time.perf_counter()
        pairs = self.placer.runtime.infer_with_taps(images)
        for photo, (_, taps) in zip(photos, pairs, strict=True):
            photo.placer_taps = taps
        return [damage for damage, _ in pairs], ms(started)

    def _damages(self, photo: PhotoState, d_raw: RawDetections) -> Damages:
        """The damage model's output in photo coordinates and its unassigned damages."""
        started = time.perf_counter()
        d_raw = d_raw.rescaled(*photo.scale)
        photo.damage_layers = d_raw.layers
        assert photo.image is not None  # only photos with an image are segmented
        found = damage_instances(
            self.damage, d_raw, photo.image, photo.width, photo.height, photo.severity_view,
            photo.crop_memo,
        )  # fmt: skip
        photo.timings["postprocess_ms"] = ms(started)
        return d_raw, found

    def _build(self, photo: PhotoState, damages: Damages, p_raw: RawDetections) -> None:
        d_raw, found = damages
        started = time.perf_counter()
        w, h = photo.width, photo.height
        p_raw = p_raw.rescaled(*photo.scale)
        parts = part_instances(self.parts, p_raw, w, h)
        found, damage_masks = self._findings(photo, (d_raw, found), parts, p_raw)
        if found and self.damage.looks_again(photo.whole_car_view_probability):
            found, damage_masks = self._found_again(photo, d_raw, parts, p_raw)
        found = unique_coverage(found, damage_masks, parts, p_raw.masks)
        if self.calibration is not None:  # last: the rules above were chosen on the scores
            found = self.calibration.calibrated(found, photo.whole_car_view_probability)
        evidence = p_raw.best_score
        photo.issues += quality.check_vehicle(len(parts), len(found), evidence, self.quality)
        photo.timings["postprocess_ms"] += ms(started)
        photo.result = PhotoAnalysis(photo.photo_id, w, h, damages=found, parts=parts)

    def _found_again(
        self,
        photo: PhotoState,
        d_raw: RawDetections,
        parts: tuple[PartInstance, ...],
        p_raw: RawDetections,
    ) -> tuple[tuple[DamageInstance, ...], np.ndarray]:
        """A photo the first look found damage on, analysed again with the damages of the
        looks its entry takes again pooled in (`SegmentationModel.again_looks`)."""
        assert photo.image is not None  # only photos with an image are segmented
        looking = time.perf_counter()
        view = photo.whole_car_view_probability
        pooled = self.damage.looked_again(photo.image, photo.scale, d_raw, view)
        photo.timings["looks_again_ms"] = ms(looking)
        image, (w, h) = photo.image, (photo.width, photo.height)
        again = damage_instances(
            self.damage, pooled, image, w, h, photo.severity_view, photo.crop_memo
        )
        return self._findings(photo, (pooled, again), parts, p_raw)

    def _findings(
        self,
        photo: PhotoState,
        damages: Damages,
        parts: tuple[PartInstance, ...],
        p_raw: RawDetections,
    ) -> tuple[tuple[DamageInstance, ...], np.ndarray]:
        """A photo's damages on its parts, as the verifiers, stages and rules keep and
        read them, with their masks."""
        d_raw, found = damages
        w, h = photo.width, photo.height
        found = assign_parts(found, d_raw.masks, parts, p_raw.masks)
        found = placed_by_type(found, d_raw.masks, parts, p_raw.masks)
        damage_masks = d_raw.masks
        if self.verifier is not None and found:  # cdat/verified.py: is it damage at all?
            keep = self._verified(photo, found, parts)
            found, damage_masks = tuple(found[k] for k in keep), damage_masks[keep]
        taps, photo.placer_taps = photo.placer_taps, None
        if self.placer is not None and taps is not None and found:  # cdat/placement.py
            assert photo.image is not None  # only photos with an image are segmented
            placing = time.perf_counter()
            placer_raw = self.placer.runtime.placer_detections(taps).rescaled(*photo.scale)
            found = self.placer.placed(
                self.damage, found, damage_masks, placer_raw, photo.image, parts, p_raw.masks,
                (w, h),
            )  # fmt: skip
            photo.timings["placer_ms"] = ms(placing)
        if self.family is not None and found:  # cdat/part_family.py: the crop's own verdict
            assert photo.image is not None  # only photos with an image are segmented
            masks = (damage_masks, p_raw.masks)
            found = self.family.refine(
                photo.image, photo.scale, found, masks[0], parts, masks[1], photo.crop_memo
            )
        if self.whole_car is not None and self.verifier is None:  # cdat/whole_car.py
            view = photo.whole_car_view_probability
            kept = {id(d) for d in kept_damages(found, parts, w, h, self.whole_car, view)}
            keep = [k for k, d in enumerate(found) if id(d) in kept]
            found, damage_masks = tuple(found[k] for k in keep), damage_masks[keep]
        closeup_severity = self.damage.closeup_severity
        if closeup_severity is not None and found and self._severity_closeup(photo, parts):
            found = self._closeup_severities(photo, closeup_severity, found, damage_masks)
        return found, damage_masks

    def _verified(
        self, photo: PhotoState, found: tuple[DamageInstance, ...], parts: tuple[PartInstance, ...]
    ) -> list[int]:
        """Indices of the damages the verifier's rule keeps. What the model's threshold and
        the whole-car rule keep (whole-car views need more: cdat/whole_car.py) is its base."""
        assert self.verifier is not None and photo.image is not None
        size = (photo.width, photo.height)
        base = tuple(d for d in found if d.confidence >= self.verifier.rule.base_conf)
        if self.whole_car is not None:
            view = photo.whole_car_view_probability
            base = kept_damages(base, parts, *size, self.whole_car, view)
        whole_car_view = self._whole_car_view(photo, parts)
        kept_by_base = {id(d) for d in base}
        base_kept = [id(d) in kept_by_base for d in found]
        return self.verifier.kept(
            photo.image, photo.scale, found, parts, size, base_kept, whole_car_view,
            memo=photo.crop_memo,
        )  # fmt: skip

    def _whole_car_view(self, photo: PhotoState, parts: tuple[PartInstance, ...]) -> bool:
        """Whether the photo shows the whole car, by the served whole-car rule (the gate's
        read view, else its parts); with the rule off no view is known, and every photo is
        read as a close-up is."""
        if self.whole_car is None:
            return False
        size = (photo.width, photo.height)
        return is_whole_car_view(parts, *size, self.whole_car, photo.whole_car_view_probability)

    def _closeup_severities(
        self,
        photo: PhotoState,
        stage: SeverityModel | LayerSeverityHead,
        found: tuple[DamageInstance, ...],
        masks: np.ndarray,
    ) -> tuple[DamageInstance, ...]:
        """A close-up's damages re-read by the close-up stage: a head on the model's layers
        where the runtime taps them (one that taps none leaves the first stage's standing),
        else hand features on the severity view the first stage read."""
        if isinstance(stage, LayerSeverityHead):
            layers = photo.damage_layers
            if layers is None:
                return found
            view = photo.severity_view() if stage.hand_features else None
            photo.severity_read_close_up = True
            return severities_from_layers(stage, found, layers, photo.scale, masks, view)
        photo.severity_read_close_up = True
        return severities_reread(stage, found, masks, photo.severity_view(), photo.crop_memo)

    def _severity_closeup(self, photo: PhotoState, parts: tuple[PartInstance, ...]) -> bool:
        """Whether the close-up severity stage reads the photo: under the entry's bar on the
        gate's read view where it names one (no view read: no), else no whole-car view."""
        bar = self.damage.entry.closeup_severity_view_below
        if bar is None:
            return not self._whole_car_view(photo, parts)
        view = photo.whole_car_view_probability
        return view is not None and view < bar

    def _finish(self, photo: PhotoState, duplicate: QualityIssue | None) -> PhotoAnalysis:
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
            whole_car_view_probability=photo.whole_car_view_probability,
            severity_read_close_up=photo.severity_read_close_up,
        )
