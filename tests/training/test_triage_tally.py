"""Each held-out photo triaged as a claim of its own, on photos whose answer is known."""

from __future__ import annotations

import pytest

from cdat.findings import NO_VEHICLE, Box, DamageInstance, PhotoAnalysis, QualityIssue
from cdat.taxonomy import CarPart, DamageType, Severity
from training.claim_eval import headline, triage_markdown
from training.triage_tally import TriageTally


def photo(*damages: DamageInstance, refused: bool = False) -> PhotoAnalysis:
    issues = (QualityIssue(NO_VEHICLE, "none", "retake", blocking=True),) if refused else ()
    return PhotoAnalysis("p", 640, 480, damages=damages, quality_issues=issues)


def scratch(confidence: float, chance: float | None = None) -> DamageInstance:
    return DamageInstance(
        DamageType.SCRATCH, Severity.MINOR, confidence, Box(100, 100, 140, 120),
        part=CarPart.FRONT_LEFT_DOOR, part_coverage=0.05, chance=chance,
    )  # fmt: skip


@pytest.fixture(scope="module")
def tally_of():
    def tally(*photos: PhotoAnalysis) -> dict:
        counted = TriageTally.shipped()
        for analysis in photos:
            counted.add(analysis)
        return counted.report()

    return tally


def test_a_sure_small_scratch_goes_straight_through_and_an_unsure_one_does_not(tally_of):
    # given four photos: a scratch scored 0.9, one scored 0.3, one scored 0.3 that curves
    # read at 0.9, and a photo with no damage
    report = tally_of(photo(scratch(0.9)), photo(scratch(0.3)), photo(scratch(0.3, 0.9)), photo())
    # then the two sure scratches go straight through (priced under the limit), the unsure
    # one goes to an adjuster for its confidence, the undamaged photo for finding nothing
    assert report["photos"] == 4 and report["found_damaged"] == 3
    assert report["straight_through"] == pytest.approx(2 / 4)
    assert report["damaged_straight_through"] == pytest.approx(2 / 3)
    assert report["reasons"] == {"low_confidence": 0.25, "no_damage_found": 0.25}


def test_a_photo_refused_as_showing_no_vehicle_never_goes_straight_through(tally_of):
    report = tally_of(photo(refused=True))
    assert report["straight_through"] == 0.0 and report["damaged_straight_through"] is None
    assert "no_vehicle" in report["reasons"]


def test_the_headline_names_intact_cars_going_straight_through_where_it_was_asked(tally_of):
    # given per-source figures with the intact cars triaged: one of two paid for nothing
    triaged = tally_of(photo(scratch(0.9)), photo())
    per_source = {
        "car-parts-damage": {"photos": 1, "closeups_refused": 0.0, "damage_recall_iou30": 1.0},
        "damaged-parts": {"photos": 1, "closeups_refused": 0.0, "damage_recall_iou30": 1.0},
        "damage-severity": {"damage_recall_iou30": 0.5},
        "car-parts": {"intact_photos_with_damage": 0.5, "photos": 2, "triage": triaged},
        "no-vehicle": {"non_vehicle_refused": 1.0},
    }
    # then the headline says so, and the table has a row for it
    assert headline(per_source)["intact_straight_through"] == 0.5
    (row,) = [line for line in triage_markdown(per_source) if line.startswith("| car-parts |")]
    assert row.startswith("| car-parts | 2 | 0.500 | 1 | 1.000 | no_damage_found 0.50 |")
    # and where it was not asked, neither
    del per_source["car-parts"]["triage"]
    assert "intact_straight_through" not in headline(per_source)
    assert triage_markdown(per_source) == []


def test_intact_cars_are_triaged_each_as_its_own_claim_where_asked(tmp_path, monkeypatch):
    import training.claim_eval as claim_eval

    # given two intact cars, the analyzer finding a sure scratch on the first only
    cars = [tmp_path / "a.jpg", tmp_path / "b.jpg"]
    for car in cars:
        car.write_bytes(car.name.encode())
    monkeypatch.setattr(claim_eval, "typed_photos", lambda *args: [(c, []) for c in cars])

    class Analyzer:
        def analyze(self, photos):
            return [photo(scratch(0.9)) if p.data == b"a.jpg" else photo() for p in photos]

    # when measured with and without a tally
    policy = TriageTally.shipped().policy
    asked = claim_eval.intact_report(Analyzer(), "val", 0, tmp_path, TriageTally(policy))
    plain = claim_eval.intact_report(Analyzer(), "val", 0, tmp_path)
    # then both count the damaged car, and only the one asked says it was paid for nothing
    assert asked["intact_photos_with_damage"] == plain["intact_photos_with_damage"] == 0.5
    assert asked["triage"]["straight_through"] == 0.5
    assert asked["triage"]["damaged_straight_through"] == 1.0
    assert "triage" not in plain
