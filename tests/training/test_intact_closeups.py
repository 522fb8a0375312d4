"""Close-up windows of intact cars, and the share of them reported with damage."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np
import pytest

from cdat.analysis import PhotoInput
from cdat.findings import Box, DamageInstance, PhotoAnalysis
from cdat.taxonomy import DamageType, Severity
from training.claim_eval import INTACT_CLOSEUPS, claims_markdown, headline
from training.errors import TrainingError
from training.intact_closeups import MIN_CAR_SHARE, MIN_SIDE, closeup_windows, intact_closeups

CAR = [0.1, 0.3, 0.9, 0.3, 0.9, 0.9, 0.1, 0.9]  # a car filling the lower middle of the frame


def _photo(tmp_path: Path, name: str, size: int = 512) -> Path:
    pixels = np.full((size, size, 3), 200, np.uint8)
    path = tmp_path / name
    cv2.imwrite(str(path), pixels)
    return path


def test_windows_are_on_the_car_not_tiny_and_the_same_each_time() -> None:
    # given a 512 px photo whose car fills a band across its lower part
    car = np.zeros((512, 512), bool)
    car[150:460, 50:460] = True
    # when windows are cut for the same photo twice
    first, again = closeup_windows(car, "p.jpg"), closeup_windows(car, "p.jpg")
    # then each is mostly car, no side under the minimum, and the cut is repeatable
    assert first and first == again
    for x0, y0, x1, y1 in first:
        assert min(x1 - x0, y1 - y0) >= MIN_SIDE
        assert car[y0:y1, x0:x1].mean() >= MIN_CAR_SHARE


def test_more_windows_per_photo_keep_the_first_ones() -> None:
    # given a photo whose car fills most of the frame
    car = np.zeros((512, 512), bool)
    car[40:500, 20:500] = True
    # when two windows are cut, and then eight
    two, eight = closeup_windows(car, "p.jpg", 2), closeup_windows(car, "p.jpg", 8)
    # then the finer cut has more windows and begins with the two the coarser one gave
    assert len(two) == 2 and len(eight) == 8
    assert eight[:2] == two


def test_the_windows_per_photo_reach_the_intact_close_up_figure(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from training import claim_eval

    # given one intact-car photo
    photos = [(_photo(tmp_path, "c0.jpg"), [("hood", CAR)])]
    monkeypatch.setattr(claim_eval, "typed_photos", lambda *args: iter(photos))
    # when its close-ups are measured at two windows a photo and at six
    coarse = claim_eval.intact_closeup_report(_FlagsEveryOther(), "val", 0, tmp_path, 2)
    fine = claim_eval.intact_closeup_report(_FlagsEveryOther(), "val", 0, tmp_path, 6)
    # then the finer figure reads more windows of the same photo and says how many it cut
    assert (coarse["photos"], fine["photos"]) == (2, 6)
    assert (coarse["windows_per_photo"], fine["windows_per_photo"]) == (2, 6)


def test_a_photo_of_sky_or_a_thumbnail_gives_no_close_up(tmp_path: Path) -> None:
    # given a photo with no labelled part, and a thumbnail too small for any window
    empty = _photo(tmp_path, "sky.jpg")
    thumb = _photo(tmp_path, "thumb.jpg", size=150)
    # when close-ups are cut
    crops = intact_closeups([(empty, []), (thumb, [("hood", [0, 0, 1, 0, 1, 1, 0, 1])])])
    # then neither gives one
    assert crops == []


def test_an_unreadable_photo_is_one_error_not_a_photo_left_out(tmp_path: Path) -> None:
    # given a "photo" that is not an image
    broken = tmp_path / "car9.jpg"
    broken.write_bytes(b"not a jpeg")
    # when close-ups are cut, then the error names it rather than shrinking the figure
    with pytest.raises(TrainingError, match=r"car9\.jpg: not a readable image"):
        intact_closeups([(broken, [("hood", CAR)])])


def test_close_ups_are_jpegs_of_the_window_named_after_their_photo(tmp_path: Path) -> None:
    photo = _photo(tmp_path, "car7.jpg")
    crops = intact_closeups([(photo, [("front_left_door", CAR)])])
    assert crops and all(c.name.startswith("car7-") for c in crops)
    decoded = cv2.imdecode(np.frombuffer(crops[0].jpeg, np.uint8), cv2.IMREAD_COLOR)
    assert decoded is not None
    assert min(decoded.shape[:2]) >= MIN_SIDE and max(decoded.shape[:2]) < 512


class _FlagsEveryOther:
    """Reports a damage on every second photo it is shown."""

    def __init__(self) -> None:
        self.seen = 0

    def analyze(self, photos: Sequence[PhotoInput]) -> list[PhotoAnalysis]:
        self.seen += 1
        damage = DamageInstance(DamageType.DENT, Severity.MINOR, 0.5, Box(1, 1, 9, 9))
        found = (damage,) if self.seen % 2 == 0 else ()
        return [PhotoAnalysis(photos[0].photo_id, 10, 10, damages=found)]


def test_the_share_of_close_ups_with_damage_is_reported_in_the_headline(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from training import claim_eval

    # given two intact-car photos, each cut into close-ups, and an analyzer that flags every
    # second close-up
    photos = [(_photo(tmp_path, f"c{k}.jpg"), [("hood", CAR)]) for k in range(2)]
    monkeypatch.setattr(claim_eval, "typed_photos", lambda *args: iter(photos))
    # when measured
    report = claim_eval.intact_closeup_report(_FlagsEveryOther(), "val", 0, tmp_path, 2)
    # then half of them are with damage, and the flagged ones are named
    assert report["photos"] == len(intact_closeups(photos)) >= 2
    assert report["intact_closeups_with_damage"] == pytest.approx(
        (report["photos"] // 2) / report["photos"]
    )
    assert len(report["damaged_photo_names"]) == report["photos"] // 2
    per_source = {
        "car-parts-damage": {"photos": 1, "closeups_refused": 0.0, "damage_recall_iou30": 1.0},
        "damaged-parts": {"photos": 1, "closeups_refused": 0.0, "damage_recall_iou30": 1.0},
        "damage-severity": {"photos": 1, "damage_recall_iou30": 0.5},
        "car-parts": {"photos": 2, "intact_photos_with_damage": 0.0},
        INTACT_CLOSEUPS: report,
        "no-vehicle": {"photos": 1, "non_vehicle_refused": 1.0},
    }  # fmt: skip
    figures = headline(per_source)
    assert figures["intact_closeups_with_damage"] == report["intact_closeups_with_damage"]
    table = claims_markdown({"split": "val", "closeups_refused": 0.0, "per_source": per_source})
    row = next(line for line in table if line.startswith(f"| {INTACT_CLOSEUPS} "))
    assert f"| {report['intact_closeups_with_damage']:.3f} |" in row
