"""A photo's own checks before the models: decoding, quality (size, exposure, blur, the
perceptual hash) and the vehicle gate. `inference.pipeline.Analyzer` runs them."""

from __future__ import annotations

import logging
import time

from cdat.analysis import PhotoInput
from inference import quality
from inference.errors import UnreadableImage
from inference.imaging import load_photo
from inference.photo_state import PhotoState, analysis_failed, ms
from inference.vehicle_gate import VehicleGate

log = logging.getLogger("inference.pipeline")


class PhotoChecks:
    """The analyzer's checks of one photo at a time, before and beside the models."""

    quality: quality.QualityConfig
    max_pixels: int
    gate: VehicleGate | None

    def _prepare_safely(self, photo: PhotoInput, checks: bool = True) -> PhotoState:
        """Decoded and, with `checks`, quality-checked (else `_checked_safely` later)."""
        try:
            state = self._decode(photo)
            if checks and state.image is not None:
                self._check_quality(state)
            return state
        except Exception as exc:  # one photo's failure must never fail the claim
            log.exception("preparing photo %s failed", photo.photo_id)
            return PhotoState(photo.photo_id, issues=[analysis_failed(exc)])

    def _checked_safely(self, state: PhotoState) -> PhotoState:
        try:
            self._check_quality(state)
            return state
        except Exception as exc:  # as `_prepare_safely`: the photo fails, alone
            log.exception("preparing photo %s failed", state.photo_id)
            return PhotoState(state.photo_id, issues=[analysis_failed(exc)])

    def _decode(self, photo: PhotoInput) -> PhotoState:
        state = PhotoState(photo.photo_id)
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
        state.image, state.scale = decoded.image, decoded.scale
        state.width, state.height = decoded.width, decoded.height
        state.jpeg_quality = decoded.jpeg_quality
        state.timings["decode_ms"] = ms(started)
        return state

    def _check_quality(self, state: PhotoState) -> None:
        """Size, exposure, blur and compression (issues, some blocking), and the perceptual
        hash."""
        assert state.image is not None  # decoded
        started = time.perf_counter()
        state.issues += quality.check_size(state.width, state.height, self.quality)
        if not state.blocked:
            gray = quality.analysis_gray(state.image, self.quality.analysis_side)
            state.issues += quality.check_exposure(gray, self.quality)
            state.issues += quality.check_blur(gray, self.quality)
            state.issues += quality.check_compression(state.jpeg_quality, self.quality)
            state.phash = quality.perceptual_hash(gray)
        state.timings["quality_ms"] = ms(started)

    def _check_vehicle(self, photos: list[PhotoState]) -> None:
        """The vehicle gate on the photos' images: a refused photo gets the blocking
        `no_vehicle` issue, so it is never segmented and nothing is priced for it."""
        if self.gate is None or not photos:
            return
        started = time.perf_counter()
        try:
            reading = self.gate.read([p.image for p in photos if p.image is not None])
        except Exception:  # a gate failure leaves today's checks in charge, never a refusal
            log.exception("the vehicle gate failed on %d photo(s)", len(photos))
            return
        views = reading.whole_car_view
        for k, (photo, probability) in enumerate(zip(photos, reading.vehicle, strict=True)):
            photo.vehicle_probability = round(float(probability), 4)
            if views is not None:
                photo.whole_car_view_probability = round(float(views[k]), 4)
            photo.timings["gate_ms"] = ms(started) / len(photos)
            if probability < self.gate.threshold:
                photo.issues.append(quality.no_vehicle())
