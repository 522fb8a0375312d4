"""Intervals over source photos (training/intervals.py) and where a claim report carries them."""

from __future__ import annotations

import numpy as np
import pytest

from cdat.findings import PhotoAnalysis
from training.claim_eval import claims_markdown
from training.intervals import share_interval
from training.outline_tally import Outline, OutlineTally

SIZE = 40


def _outline() -> Outline:
    mask = np.zeros((SIZE, SIZE), bool)
    mask[10:20, 10:20] = True
    return Outline(mask)


def test_a_share_every_photo_agrees_on_has_no_spread() -> None:
    assert share_interval({f"p{k}": (2, 2) for k in range(10)}) == (1.0, 1.0)
    assert share_interval({f"p{k}": (1, 2) for k in range(10)}) == (0.5, 0.5)


def test_two_photos_one_found_one_missed_span_nothing_to_everything() -> None:
    # resamples of two photos read 0, 1/2 or 1 with chances 1/4, 1/2, 1/4
    assert share_interval({"found": (1, 1), "missed": (0, 1)}) == (0.0, 1.0)


def test_photos_without_regions_say_nothing_and_none_at_all_is_no_interval() -> None:
    assert share_interval({}) is None
    assert share_interval({"empty": (0, 0)}) is None
    assert share_interval({"empty": (0, 0), "found": (3, 3)}) == (1.0, 1.0)


def test_more_photos_narrow_the_interval_around_the_share() -> None:
    few = share_interval({f"p{k}": (k % 2, 1) for k in range(20)})
    many = share_interval({f"p{k}": (k % 2, 1) for k in range(400)})
    assert few is not None and many is not None
    assert few[0] < many[0] <= 0.5 <= many[1] < few[1]


def test_copies_of_one_photo_are_resampled_together() -> None:
    # given 10 source photos, each in three Roboflow copies of one region, half of them found
    tally = OutlineTally()
    for k in range(10):
        for copy in ("a1", "b2", "c3"):
            analysis = PhotoAnalysis(f"damage_{k}_jpg.rf.{copy}.jpg", SIZE, SIZE)
            tally.add_outline_ious(_outline(), analysis, [1.0] if k % 2 == 0 else [])
    report = tally.report()
    # then the report counts 10 source photos, not 30, and its interval is theirs
    assert report["regions"] == 30 and report["source_photos_with_regions"] == 10
    assert report["damage_recall_iou30"] == pytest.approx(0.5)
    ten = share_interval({f"p{k}": (3 * (k % 2 == 0), 3) for k in range(10)})
    thirty = share_interval({f"p{k}": (int(k % 6 < 3), 1) for k in range(30)})
    assert report["damage_recall_iou30_interval"] == ten
    assert ten is not None and thirty is not None and ten[1] - ten[0] > thirty[1] - thirty[0]


def test_the_claims_table_shows_the_interval_beside_the_share() -> None:
    claims = {
        "split": "val",
        "closeups_refused": 0.0,
        "per_source": {
            "car-parts-damage": {
                "photos": 118,
                "damage_recall_iou30": 0.853,
                "damage_recall_iou30_interval": (0.8, 0.9),
                "part_family_accuracy": 0.712,
                "part_family_accuracy_interval": (0.61, 0.8),
            }
        },
    }
    row = next(line for line in claims_markdown(claims) if line.startswith("| car-parts-damage"))
    assert row.startswith(
        "| car-parts-damage | 118 | 0.853 (0.80-0.90) | n/a | 0.712 (0.61-0.80) |"
    )
