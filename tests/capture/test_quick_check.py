"""The quick check a worker runs on each photo the capture page uploads."""

from __future__ import annotations

import pytest

from mobile_api.capture import checks
from mobile_api.capture.quick_check import run_check
from mobile_api.claims import submission
from mobile_api.claims.images import check_photo
from mobile_api.runtime import Runtime
from tests.capture import photos
from tests.conftest import open_claim


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
    found = words(runtime, claim_id, uploaded(runtime, claim_id, data, "front_left"))
    assert len(found) == len(expected), found
    for text, part in zip(found, expected, strict=True):
        assert part in text


def test_a_near_copy_of_an_earlier_shot_is_named(runtime: Runtime, claim_id: str) -> None:
    first = uploaded(runtime, claim_id, photos.car(0), "front_left")
    assert words(runtime, claim_id, first) == []
    # another capture time in its EXIF: other bytes, the same picture
    copy = photos.car(0, taken="2026:11:21 10:00:01")
    second = uploaded(runtime, claim_id, copy, "rear_left")
    assert words(runtime, claim_id, second) == [
        "This is the same photo as “Front and left side”. Take a different one."
    ]


def test_a_photo_removed_meanwhile_is_skipped(runtime: Runtime, claim_id: str) -> None:
    assert run_check(runtime, "no-such-photo") == "gone"
