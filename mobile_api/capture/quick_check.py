"""The quick check of one uploaded photo, run by the worker (`cdat.capture_check` task).

The same checks the assessment runs first, on one photo, in well under a second: size,
exposure, blur, compression and the perceptual hash (`inference.quality`), the vehicle gate
when one is promoted (`inference.vehicle_gate`), the same photo twice within the claim, and
a capture time before the loss (`cdat.fraud.capture_time_signals`, with the claim's fraud
policy).
It runs on the worker, never in the API process, so a burst of uploads cannot slow the API.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Any

from sqlalchemy import select

from cdat.fraud import capture_time_signals
from inference import quality
from inference.imaging import load_photo
from inference.vehicle_gate import VehicleGate, load_gate
from mobile_api.capture.checks import DONE, FAILED
from mobile_api.capture.framing import FramingRule, framing_issue
from mobile_api.runtime import Runtime
from mobile_api.storage import models
from mobile_api.storage.claim_store import claim_context
from mobile_api.storage.db import transaction

log = logging.getLogger("cdat.capture")
_gates: dict[Path, VehicleGate | None] = {}
_gate_lock = threading.Lock()
REPORTED = {
    quality.TOO_SMALL,
    quality.BLURRY,
    quality.COMPRESSED,
    quality.UNDEREXPOSED,
    quality.OVEREXPOSED,
    quality.UNREADABLE,
    quality.NO_VEHICLE,
}


def _gate(model_dir: Path) -> VehicleGate | None:
    """The promoted gate, loaded once per worker process (it is small: 7.7 ms a photo)."""
    with _gate_lock:
        if model_dir not in _gates:
            try:
                _gates[model_dir] = load_gate(model_dir)
            except Exception:  # no usable gate: the other checks still run
                log.exception("vehicle gate unavailable for quick checks")
                _gates[model_dir] = None
        return _gates[model_dir]


def run_check(rt: Runtime, photo_id: str) -> str:
    """Check the photo and store the result; 'gone' if the photo or its row is gone."""
    with rt.sessions() as session:
        photo = session.get(models.Photo, photo_id)
        check = session.get(models.CaptureCheck, photo_id)
        if photo is None or check is None:
            return "gone"
        claim = session.get_one(models.Claim, photo.claim_id)
        context = claim_context(session, claim, [photo_id])
        sha, claim_id, shot = photo.sha256, photo.claim_id, check.shot
        fraud = rt.policy().triage.fraud
    try:
        issues, phash = _image_issues(rt, rt.blobs.get(sha), shot)
    except Exception:
        log.exception("quick check of photo %s failed", photo_id)
        _store(rt, photo_id, FAILED, [], None)
        return FAILED
    for signal in capture_time_signals(context.photos[0], context, fraud):
        if signal.code == "captured_before_loss":
            issues.append({"code": signal.code, "taken": signal.evidence["captured_at"][:10]})
    if phash is not None:
        other = _same_photo(rt, claim_id, photo_id, phash)
        if other is not None:
            issues.append({"code": "duplicate_photo", "other_shot": other})
    _store(rt, photo_id, DONE, issues, phash)
    return DONE


def _image_issues(rt: Runtime, data: bytes, shot: str) -> tuple[list[dict[str, Any]], str | None]:
    cfg = quality.QualityConfig()
    decoded = load_photo(data, rt.settings.max_image_pixels)
    found = quality.check_size(decoded.width, decoded.height, cfg)
    phash, framing = None, []
    if not found:
        gray = quality.analysis_gray(decoded.image, cfg.analysis_side)
        found += quality.check_exposure(gray, cfg) + quality.check_blur(gray, cfg)
        found += quality.check_compression(decoded.jpeg_quality, cfg)
        phash = quality.perceptual_hash(gray)
        gate = _gate(rt.settings.model_dir)
        if gate is not None and not any(i.blocking for i in found):
            reading = gate.read([decoded.image])
            if float(reading.vehicle[0]) < gate.threshold:
                found.append(quality.no_vehicle())
            elif reading.whole_car_view is not None and not any(i.code in REPORTED for i in found):
                # one thing to fix at a time: a dark or blurred photo is retaken anyway
                advice = framing_issue(shot, float(reading.whole_car_view[0]), FramingRule())
                framing = [{"code": advice}] if advice is not None else []
    return [{"code": i.code} for i in found if i.code in REPORTED] + framing, phash


def _same_photo(rt: Runtime, claim_id: str, photo_id: str, phash: str) -> str | None:
    """The shot of an earlier photo on the claim this one repeats (perceptual hash)."""
    with rt.sessions() as session:
        rows = session.execute(
            select(models.CaptureCheck.shot, models.CaptureCheck.perceptual_hash)
            .join(models.Photo, models.Photo.id == models.CaptureCheck.photo_id)
            .where(
                models.CaptureCheck.claim_id == claim_id,
                models.CaptureCheck.photo_id != photo_id,
                models.CaptureCheck.perceptual_hash.is_not(None),
                models.Photo.removed_at.is_(None),
            )
        ).all()
    limit = quality.QualityConfig().duplicate_max_bits
    for shot, other in rows:
        if other is not None and quality.hamming(phash, other) <= limit:
            return str(shot)
    return None


def _store(
    rt: Runtime, photo_id: str, state: str, issues: list[dict[str, Any]], phash: str | None
) -> None:
    with transaction(rt.sessions) as session:
        row = session.get(models.CaptureCheck, photo_id)
        if row is None:
            return
        row.state, row.issues, row.perceptual_hash = state, issues, phash
        row.checked_at = models.utcnow()
