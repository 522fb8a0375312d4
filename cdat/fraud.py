"""Fraud signals: evidence for an adjuster, never an automatic rejection.

Signals (code: when it fires):

* ``duplicate_photo_other_claim``: a photo's perceptual hash is within
  `duplicate_max_distance` bits of a stored photo of another claim;
* ``duplicate_photo_in_claim``: two photos of this claim have the same SHA-256 or
  perceptual hashes within `duplicate_max_distance` bits;
* ``capture_time_missing``: the photo carries no capture time (EXIF stripped);
* ``captured_before_loss``: captured more than `capture_grace_days_before` days
  before the loss date (calendar dates: EXIF times have no reliable zone);
* ``captured_long_after_loss``: captured more than `capture_max_days_after` days after;
* ``location_far_from_loss``: the photo's GPS position is more than
  `location_max_km` km (great-circle) from the stated loss location;
* ``loss_reported_late`` and ``vehicle_unusually_old``: see `cdat.plausibility`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from itertools import combinations

from pydantic import BaseModel, ConfigDict, Field

from cdat.assessment import FraudSignal
from cdat.claims import ClaimContext, GeoPoint, PhotoMeta
from cdat.findings import PhotoAnalysis
from cdat.phash import PhotoHashIndex, hamming, parse_hash
from cdat.plausibility import plausibility_signals

EARTH_RADIUS_KM = 6371.0088
SIGNAL_CODES = (
    "duplicate_photo_other_claim",
    "duplicate_photo_in_claim",
    "capture_time_missing",
    "captured_before_loss",
    "captured_long_after_loss",
    "location_far_from_loss",
    "loss_reported_late",
    "vehicle_unusually_old",
)


class FraudPolicy(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    duplicate_max_distance: int = Field(default=6, ge=0, le=16)
    max_matches_reported: int = Field(default=5, ge=1)
    flag_missing_capture_time: bool = True
    capture_grace_days_before: int = Field(default=1, ge=0)
    capture_max_days_after: int = Field(default=30, ge=0)
    location_max_km: float = Field(default=50.0, gt=0)
    report_max_days_after_loss: int = Field(default=90, ge=0)
    vehicle_max_age_years: int = Field(default=30, ge=0)


def haversine_km(a: GeoPoint, b: GeoPoint) -> float:
    lat1, lat2 = math.radians(a.latitude), math.radians(b.latitude)
    dlat = lat2 - lat1
    dlon = math.radians(b.longitude - a.longitude)
    h = math.sin(dlat / 2) ** 2 + math.cos(lat1) * math.cos(lat2) * math.sin(dlon / 2) ** 2
    return 2 * EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(h)))


def detect_fraud_signals(
    analyses: Sequence[PhotoAnalysis],
    context: ClaimContext,
    index: PhotoHashIndex,
    policy: FraudPolicy,
) -> list[FraudSignal]:
    signals = cross_claim_duplicates(analyses, context.claim_id, index, policy)
    signals += in_claim_duplicates(analyses, context.photos, policy)
    for meta in context.photos:
        signals += capture_time_signals(meta, context, policy)
        signal = location_signal(meta, context, policy)
        if signal is not None:
            signals.append(signal)
    return signals + plausibility_signals(
        context,
        report_max_days=policy.report_max_days_after_loss,
        vehicle_max_age_years=policy.vehicle_max_age_years,
    )


def cross_claim_duplicates(
    analyses: Sequence[PhotoAnalysis], claim_id: str, index: PhotoHashIndex, policy: FraudPolicy
) -> list[FraudSignal]:
    signals = []
    for analysis in analyses:
        if analysis.perceptual_hash is None:
            continue
        matches = index.near(analysis.perceptual_hash, policy.duplicate_max_distance, claim_id)
        if not matches:
            continue
        best = matches[0]
        shown = matches[: policy.max_matches_reported]
        signals.append(
            FraudSignal(
                code="duplicate_photo_other_claim",
                message=(
                    f"photo {analysis.photo_id} looks like photo {best.photo_ref} of claim "
                    f"{best.claim_id} ({best.distance} of 64 hash bits differ)"
                ),
                photo_id=analysis.photo_id,
                evidence={
                    "other_claim_id": best.claim_id,
                    "other_photo_id": best.photo_ref,
                    "hamming_distance": str(best.distance),
                    "max_distance": str(policy.duplicate_max_distance),
                    "match_count": str(len(matches)),
                    "matches": ", ".join(f"{m.claim_id}/{m.photo_ref}:{m.distance}" for m in shown),
                },
            )
        )
    return signals


def in_claim_duplicates(
    analyses: Sequence[PhotoAnalysis], photos: Sequence[PhotoMeta], policy: FraudPolicy
) -> list[FraudSignal]:
    """One signal per duplicated photo, naming the first photo it repeats."""
    found: dict[str, tuple[str, dict[str, str]]] = {}
    for first, second in combinations(photos, 2):
        if first.sha256 and first.sha256 == second.sha256 and second.photo_id not in found:
            found[second.photo_id] = (first.photo_id, {"match": "identical file (sha256)"})
    hashed = [(a.photo_id, parse_hash(a.perceptual_hash)) for a in analyses if a.perceptual_hash]
    for (id_a, hash_a), (id_b, hash_b) in combinations(hashed, 2):
        distance = hamming(hash_a, hash_b)
        if distance <= policy.duplicate_max_distance and id_b not in found:
            found[id_b] = (id_a, {"match": "perceptual hash", "hamming_distance": str(distance)})
    return [
        FraudSignal(
            code="duplicate_photo_in_claim",
            message=f"photo {photo_id} repeats photo {other} of the same claim",
            photo_id=photo_id,
            evidence={"other_photo_id": other, **detail},
        )
        for photo_id, (other, detail) in found.items()
    ]


def capture_time_signals(
    meta: PhotoMeta, context: ClaimContext, policy: FraudPolicy
) -> list[FraudSignal]:
    loss = context.loss_date.isoformat()
    if meta.captured_at is None:
        if not policy.flag_missing_capture_time:
            return []
        return [
            FraudSignal(
                "capture_time_missing",
                f"photo {meta.photo_id} has no capture time (EXIF removed or never written)",
                meta.photo_id,
                {"loss_date": loss},
            )
        ]
    days_after = (meta.captured_at.date() - context.loss_date).days
    evidence = {"captured_at": meta.captured_at.isoformat(), "loss_date": loss}
    if -days_after > policy.capture_grace_days_before:
        return [
            FraudSignal(
                "captured_before_loss",
                f"photo {meta.photo_id} was taken {-days_after} days before the loss date",
                meta.photo_id,
                {**evidence, "days_before": str(-days_after)},
            )
        ]
    if days_after > policy.capture_max_days_after:
        return [
            FraudSignal(
                "captured_long_after_loss",
                f"photo {meta.photo_id} was taken {days_after} days after the loss date",
                meta.photo_id,
                {**evidence, "days_after": str(days_after)},
            )
        ]
    return []


def location_signal(
    meta: PhotoMeta, context: ClaimContext, policy: FraudPolicy
) -> FraudSignal | None:
    if meta.location is None or context.loss_location is None:
        return None
    km = haversine_km(meta.location, context.loss_location)
    if km <= policy.location_max_km:
        return None
    return FraudSignal(
        "location_far_from_loss",
        f"photo {meta.photo_id} was taken {km:.1f} km from the stated loss location",
        meta.photo_id,
        {
            "distance_km": f"{km:.1f}",
            "max_km": f"{policy.location_max_km:g}",
            "photo_location": f"{meta.location.latitude:.5f},{meta.location.longitude:.5f}",
            "loss_location": (
                f"{context.loss_location.latitude:.5f},{context.loss_location.longitude:.5f}"
            ),
        },
    )


RAISED_IN = "raised_in_version"


def standing_signals(
    current: Sequence[FraudSignal], history: Sequence[tuple[int, Sequence[FraudSignal]]]
) -> tuple[FraudSignal, ...]:
    """A claim's fraud signals: the new assessment's, and every signal an earlier version of
    the claim raised that an adjuster has not cleared (`history`: (version, signals) of the
    versions since the last clearing, oldest first).

    A signal is claim-level history: retaking or removing the photo that raised it does not
    wash it away. Each carried signal says which version raised it.
    """
    standing = list(current)
    seen = {_identity(signal) for signal in standing}
    for version, signals in history:
        for signal in signals:
            if _identity(signal) in seen:
                continue
            seen.add(_identity(signal))
            if RAISED_IN not in signal.evidence:
                signal = FraudSignal(
                    signal.code,
                    f"{signal.message} (raised by assessment version {version}; it stands "
                    "until an adjuster clears it)",
                    signal.photo_id,
                    {**signal.evidence, RAISED_IN: str(version)},
                )
            standing.append(signal)
    return tuple(standing)


def _identity(signal: FraudSignal) -> tuple[object, ...]:
    evidence = tuple(sorted((k, v) for k, v in signal.evidence.items() if k != RAISED_IN))
    return signal.code, signal.photo_id, evidence
