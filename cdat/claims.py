"""Claims: status life-cycle, vehicle and the context an assessment is made in."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from enum import Enum
from typing import Any

from pydantic import TypeAdapter, ValidationError

from cdat.errors import CdatError, InvalidTransition
from cdat.taxonomy import CarPart, PartFamily


class ClaimStatus(str, Enum):
    RECEIVED = "received"
    QUEUED = "queued"
    ASSESSING = "assessing"
    ASSESSED = "assessed"
    NEEDS_REVIEW = "needs_review"
    APPROVED = "approved"
    REJECTED = "rejected"
    FAILED = "failed"
    MORE_PHOTOS_REQUESTED = "more_photos_requested"


_ALLOWED: dict[ClaimStatus, frozenset[ClaimStatus]] = {
    ClaimStatus.RECEIVED: frozenset({ClaimStatus.QUEUED}),
    ClaimStatus.QUEUED: frozenset({ClaimStatus.ASSESSING, ClaimStatus.FAILED}),
    ClaimStatus.ASSESSING: frozenset(
        {ClaimStatus.ASSESSED, ClaimStatus.NEEDS_REVIEW, ClaimStatus.FAILED, ClaimStatus.QUEUED}
    ),
    ClaimStatus.ASSESSED: frozenset(
        {ClaimStatus.QUEUED, ClaimStatus.APPROVED, ClaimStatus.REJECTED, ClaimStatus.NEEDS_REVIEW}
    ),
    ClaimStatus.NEEDS_REVIEW: frozenset(
        {
            ClaimStatus.QUEUED,
            ClaimStatus.APPROVED,
            ClaimStatus.REJECTED,
            ClaimStatus.MORE_PHOTOS_REQUESTED,
        }
    ),
    ClaimStatus.MORE_PHOTOS_REQUESTED: frozenset({ClaimStatus.QUEUED, ClaimStatus.REJECTED}),
    ClaimStatus.FAILED: frozenset({ClaimStatus.QUEUED}),
    ClaimStatus.APPROVED: frozenset(),
    ClaimStatus.REJECTED: frozenset(),
}


DECIDED = frozenset({ClaimStatus.APPROVED, ClaimStatus.REJECTED})
"""Final: nothing moves a decided claim, not even an assessment job that finishes late."""


def check_transition(current: ClaimStatus, target: ClaimStatus) -> None:
    if target not in _ALLOWED[current]:
        raise InvalidTransition(f"a claim that is {current.value} cannot become {target.value}")


def sources_of(target: ClaimStatus) -> frozenset[ClaimStatus]:
    """Every status a claim may leave to become `target`.

    The store turns this into a compare-and-set (`... WHERE status IN sources`), so the
    check and the write are one statement and two writers cannot both pass the check.
    """
    return frozenset(status for status, targets in _ALLOWED.items() if target in targets)


def can_submit(status: ClaimStatus) -> bool:
    return ClaimStatus.QUEUED in _ALLOWED[status]


class BodyType(str, Enum):
    HATCHBACK = "hatchback"
    SEDAN = "sedan"
    SUV = "suv"
    PICKUP = "pickup"
    VAN = "van"
    COUPE = "coupe"
    WAGON = "wagon"
    CONVERTIBLE = "convertible"


_TRUNK_BODIES = frozenset({BodyType.SEDAN, BodyType.COUPE, BodyType.CONVERTIBLE})


def boot_lid(body_type: BodyType) -> CarPart:
    """The rear lid a body has: a trunk lid on a sedan, coupe or convertible, a tailgate on
    a hatchback, SUV, wagon, van or pickup."""
    return CarPart.TRUNK if body_type in _TRUNK_BODIES else CarPart.TAILGATE


def as_fitted(part: CarPart, body_type: BodyType | None) -> CarPart:
    """The part as this vehicle has it. The part model tells a trunk from a tailgate by how
    the lid looks; the policy's body type says which of the two the car has."""
    if body_type is None or part.family is not PartFamily.BOOT:
        return part
    return boot_lid(body_type)


def parts_not_fitted(body_type: BodyType | None) -> frozenset[CarPart]:
    """Parts the body does not have (the other rear lid), never priced or blended."""
    if body_type is None:
        return frozenset()
    return frozenset({CarPart.TRUNK, CarPart.TAILGATE} - {boot_lid(body_type)})


@dataclass(frozen=True)
class Vehicle:
    make: str
    model: str
    year: int
    body_type: BodyType
    vin: str | None = None
    market_value: Decimal | None = None


@dataclass(frozen=True)
class GeoPoint:
    latitude: float
    longitude: float


@dataclass(frozen=True)
class PhotoMeta:
    """What the upload told us about a photo, for fraud rules."""

    photo_id: str
    sha256: str
    captured_at: datetime | None = None
    location: GeoPoint | None = None


@dataclass(frozen=True)
class ClaimContext:
    claim_id: str
    vehicle: Vehicle
    loss_date: date
    loss_location: GeoPoint | None
    photos: tuple[PhotoMeta, ...]
    reported_on: date | None = None
    """When the claim was opened; None where there is no claim (a local assessment)."""


class RetakeRequestUnreadable(CdatError):
    code = "retake_request_unreadable"


RETAKE_FORMAT = 1
"""Layout changes of a stored `RetakeRequest`. Format 1 is message, photo_ids and
requested_at; rows written before the `format` key was are format 1 too (the oldest
hold only a message)."""


@dataclass(frozen=True)
class RetakeRequest:
    """An adjuster's request for new photos: what to take, of which photos, and when asked.

    Stored as JSON on the claim (`as_json` / `from_json`, the one codec of its layout,
    versioned like `cdat.record`) and shown to the policyholder, whose status carries
    `message`.
    """

    message: str
    """What to photograph and how, in the adjuster's words to the policyholder."""
    photo_ids: tuple[str, ...] = ()
    """The photos to retake; none when the request is for new views."""
    requested_at: datetime | None = None

    def as_json(self) -> dict[str, Any]:
        layout: dict[str, Any] = _RETAKE.dump_python(self, mode="json")
        return {"format": RETAKE_FORMAT, **layout}

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> RetakeRequest:
        version = raw.get("format", 1)
        if not isinstance(version, int) or not 1 <= version <= RETAKE_FORMAT:
            raise RetakeRequestUnreadable(
                f"retake request format {version!r}: this service reads 1-{RETAKE_FORMAT}"
            )
        try:
            return _RETAKE.validate_python({k: v for k, v in raw.items() if k != "format"})
        except ValidationError as exc:
            raise RetakeRequestUnreadable(
                f"retake request does not match its format: {exc}"
            ) from exc


_RETAKE = TypeAdapter(RetakeRequest)


def exif_capture_time(exif: dict[str, Any]) -> datetime | None:
    raw = exif.get("DateTimeOriginal") or exif.get("DateTime")
    if not isinstance(raw, str):
        return None
    try:
        return datetime.strptime(raw.strip(), "%Y:%m:%d %H:%M:%S")
    except ValueError:
        return None


def photo_meta(photo_id: str, sha256: str, exif: dict[str, Any]) -> PhotoMeta:
    latitude, longitude = exif.get("GPSLatitude"), exif.get("GPSLongitude")
    location = (
        GeoPoint(latitude, longitude) if latitude is not None and longitude is not None else None
    )
    return PhotoMeta(photo_id, sha256, exif_capture_time(exif), location)
