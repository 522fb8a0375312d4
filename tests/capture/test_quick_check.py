"""The quick check a worker runs on each photo the capture page uploads."""

from __future__ import annotations

from pathlib import Path

import pytest

from mobile_api.capture import checks
from mobile_api.capture.quick_check import run_check
from mobile_api.claims import submission
from mobile_api.claims.images import check_photo
from mobile_api.runtime import Runtime
from tests.capture import photos
from tests.conftest import open_claim
from training.gate_data import vehicle_photos

STEP_BACK = "This looks like a close-up. For this photo, step back 2-3 m"
MOVE_CLOSER = "This shows the whole car. Go to about 1 m from the damage"


@pytest.fixture
def claim_id(client) -> str:  # type: ignore[no-untyped-def]
    claim, _ = open_claim(client)  # loss date 2026-11-20
    return claim


def uploaded(rt: Runtime, claim_id: str, data: bytes, shot: str) -> str:
    photo = check_photo(data, f"{shot}.jpg", max_bytes=20 << 20, max_pixels=50_000_000, min_side=64)
    added = submission.add_photos(rt, claim_id, [photo])
    photo_id = added.photos[0].id
    checks.record_upload(rt, claim_id, photo_id, shot, None)
    return photo_id


def words(rt: Runtime, claim_id: str, photo_id: str) -> list[str]:
    assert run_check(rt, photo_id) == checks.DONE
    found = checks.claim_checks(rt, claim_id)[photo_id]
    return list(found.as_json(checks.shot_names())["messages"])


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (photos.car(0), []),
        (photos.blurred_car(), ["blurred"]),
        (photos.no_vehicle(), ["No car can be seen"]),
        (photos.car(2, taken="2026:10:01 09:00:00"), ["taken on 2026-10-01, before the date"]),
    ],
    ids=["sharp", "blurred", "no-vehicle", "before-the-loss"],
)
def test_each_photo_gets_the_checks_of_the_assessment(
    runtime: Runtime, claim_id: str, data: bytes, expected: list[str]
) -> None:
    # a close-up slot: the drawings read as close-ups (framing: the tests below)
    found = words(runtime, claim_id, uploaded(runtime, claim_id, data, "damage_1"))
    assert len(found) == len(expected), found
    for text, part in zip(found, expected, strict=True):
        assert part in text


def test_a_near_copy_of_an_earlier_shot_is_named(runtime: Runtime, claim_id: str) -> None:
    first = uploaded(runtime, claim_id, photos.farther_car(5), "front_left")
    assert words(runtime, claim_id, first) == []
    # another capture time in its EXIF: other bytes, the same picture
    copy = photos.farther_car(5, taken="2026:11:21 10:00:01")
    second = uploaded(runtime, claim_id, copy, "rear_left")
    assert words(runtime, claim_id, second) == [
        "This is the same photo as “Front and left side”. Take a different one."
    ]


def test_a_photo_removed_meanwhile_is_skipped(runtime: Runtime, claim_id: str) -> None:
    assert run_check(runtime, "no-such-photo") == "gone"


@pytest.mark.parametrize("shot", ["front_left", "rear_right"])
def test_an_overview_shot_taken_close_up_is_told_to_step_back(
    runtime: Runtime, claim_id: str, shot: str
) -> None:
    # given the drawn car the gate reads as a close-up, taken as an overview shot
    found = words(runtime, claim_id, uploaded(runtime, claim_id, photos.car(0), shot))
    # then the claimant is told how to frame it, and nothing else
    assert len(found) == 1 and found[0].startswith(STEP_BACK), found


@pytest.mark.parametrize("shot", ["front_left", "damage_2", "extra"])
def test_a_photo_framed_between_the_bars_gets_no_advice(
    runtime: Runtime, claim_id: str, shot: str
) -> None:
    data = photos.farther_car(photos.FARTHER[1])
    assert words(runtime, claim_id, uploaded(runtime, claim_id, data, shot)) == []


def test_an_extra_photo_taken_close_up_gets_no_advice(runtime: Runtime, claim_id: str) -> None:
    assert words(runtime, claim_id, uploaded(runtime, claim_id, photos.car(3), "extra")) == []


def _real(data_root: Path, source: str, count: int) -> list[bytes]:
    if not (data_root / source).is_dir():
        pytest.skip(f"{source} not available")
    return [p.path.read_bytes() for p in vehicle_photos(source, "test", data_root)[:count]]


def test_real_photos_in_the_wrong_slot_are_told_how_to_frame_them(
    runtime: Runtime, claim_id: str, data_root: Path
) -> None:
    # given real close-ups of damage taken as overview shots, and real whole cars as close-ups
    closeups = _real(data_root, "car-parts-damage", 2)
    cars = _real(data_root, "car-parts", 2)
    overview = ["front_left", "front_right", "rear_left", "rear_right"]
    asked = [(d, s, STEP_BACK) for d, s in zip(closeups, overview, strict=False)]
    asked += [(d, s, MOVE_CLOSER) for d, s in zip(cars, ["damage_1", "damage_2"], strict=True)]
    for data, shot, advice in asked:
        # when each is checked
        found = words(runtime, claim_id, uploaded(runtime, claim_id, data, shot))
        # then each is told to step back or to move closer
        assert len(found) == 1 and found[0].startswith(advice), (shot, found)


def test_real_photos_in_their_own_slot_get_no_framing_advice(
    runtime: Runtime, claim_id: str, data_root: Path
) -> None:
    asked = list(zip(_real(data_root, "car-parts", 2), ["front_left", "rear_right"], strict=True))
    asked += zip(_real(data_root, "car-parts-damage", 2), ["damage_1", "damage_2"], strict=True)
    for data, shot in asked:
        found = words(runtime, claim_id, uploaded(runtime, claim_id, data, shot))
        assert not any(m.startswith((STEP_BACK, MOVE_CLOSER)) for m in found), (shot, found)


def test_a_blurred_overview_shot_is_told_only_to_retake(runtime: Runtime, claim_id: str) -> None:
    # given a blurred drawing (read as a close-up) taken as an overview shot
    photo = uploaded(runtime, claim_id, photos.blurred_car(), "front_left")
    # then the claimant is told one thing to fix: the blur, not the framing as well
    found = words(runtime, claim_id, photo)
    assert len(found) == 1 and "blurred" in found[0], found
