"""The guided shot list: which photos the page asks for, and which photo fills each slot.

Four overview shots (each corner at an angle, so every side is seen twice) and two damage
close-ups make the six-photo claim; an "extra" slot takes anything else. When an adjuster
asks for more photos, the photos they named are marked for a retake and a slot for the
requested photo is added. A photo uploaded through the API (no shot recorded) shows as an
extra, so nothing on the claim is hidden from its claimant.
"""

from __future__ import annotations

from dataclasses import dataclass

from mobile_api.api import schemas
from mobile_api.capture.checks import PhotoCheck
from mobile_api.capture.strings import SHOT_NAMES

OVERVIEW = ("front_left", "front_right", "rear_left", "rear_right")
CLOSEUPS = ("damage_1", "damage_2")
REQUIRED = OVERVIEW + CLOSEUPS
SHOTS = frozenset(SHOT_NAMES)


@dataclass(frozen=True)
class Slot:
    shot: str
    name: str
    hint: str
    outline: str
    """Which outline drawing (templates/outlines.html) goes with the hint."""
    group: str
    """overview, closeups or requested: the heading the slot sits under."""
    photo: schemas.PhotoPublic | None = None
    check: PhotoCheck | None = None
    retake_asked: bool = False

    @property
    def dom_id(self) -> str:
        return f"shot-{self.shot}-{self.photo.id if self.photo else 'new'}"


def _outline(shot: str) -> str:
    if shot in OVERVIEW:
        return shot
    return "closeup" if shot in CLOSEUPS else "extra"


def _slot(
    shot: str,
    group: str,
    photo: schemas.PhotoPublic | None,
    check: PhotoCheck | None,
    asked: frozenset[str],
) -> Slot:
    name, hint = SHOT_NAMES[shot]
    retake = photo is not None and photo.id in asked
    return Slot(shot, name, hint, _outline(shot), group, photo, check, retake)


def slots(
    photos: list[schemas.PhotoPublic],
    checks: dict[str, PhotoCheck],
    retake: frozenset[str] | None,
) -> list[Slot]:
    """Every slot of the page, in the order a claimant takes them; `retake` holds the
    photos an adjuster's open request names (None: no request open)."""
    asked = retake or frozenset()
    by_shot: dict[str, list[schemas.PhotoPublic]] = {}
    for photo in photos:
        check = checks.get(photo.id)
        shot = check.shot if check is not None and check.shot in SHOTS else "extra"
        by_shot.setdefault(shot, []).append(photo)
    result: list[Slot] = []
    for shot in REQUIRED:
        taken = by_shot.pop(shot, [])
        group = "overview" if shot in OVERVIEW else "closeups"
        if not taken:
            result.append(_slot(shot, group, None, None, asked))
        for photo in taken:
            result.append(_slot(shot, group, photo, checks.get(photo.id), asked))
    for shot in ("requested", "extra"):
        for photo in by_shot.pop(shot, []):
            group = "requested" if shot == "requested" else "closeups"
            result.append(_slot(shot, group, photo, checks.get(photo.id), asked))
    if retake is not None:
        result.append(_slot("requested", "requested", None, None, asked))
    result.append(_slot("extra", "closeups", None, None, asked))
    return result


def missing(found: list[Slot]) -> list[str]:
    """The required shots not taken yet (the page says so before it lets a claim go)."""
    return [s.name for s in found if s.shot in REQUIRED and s.photo is None]
