"""An adjuster's drawn damage covers its part only where the photo's other damages of its
part and type do not already: a claim adds a photo's coverages of one part and type
(`cdat.merge`), as the analyzer's own damages do (`inference.assign.unique_coverage`)."""

from __future__ import annotations

import pytest

from cdat import corrections
from cdat.assessment import Assessment
from cdat.findings import Box, DamageInstance, PartInstance, PhotoAnalysis
from cdat.outlines import fresh_share, inside
from cdat.pipeline import AssessmentPolicy, assess_claim
from cdat.taxonomy import CarPart, DamageType, Severity
from tests.cdat.conftest import context, meta, photo

HOOD = PartInstance(CarPart.HOOD, 0.9, Box(0, 0, 400, 200))
"""A hood whose box is 80,000 px: a 100 x 100 outline covers 0.125 of it."""


def square(x: float, y: float, side: float = 100) -> list[list[float]]:
    return [[x, y], [x + side, y], [x + side, y + side], [x, y + side]]


def model_dent(x: float, y: float) -> DamageInstance:
    polygon = tuple((float(px), float(py)) for px, py in square(x, y))
    box = Box(x, y, x + 100, y + 100)
    return DamageInstance(
        DamageType.DENT, Severity.MINOR, 0.4, box, polygon, CarPart.HOOD, part_coverage=0.1
    )


def claim_with(policy: AssessmentPolicy, *damages: DamageInstance) -> Assessment:
    seen = photo("p1", damages=damages, parts=(HOOD,))
    return assess_claim((seen,), corrections.Corrections(), context(photos=(meta("p1"),)), (),
                        {"damage": "d-1", "parts": "p-1"}, policy)  # fmt: skip


def draw(assessment: Assessment, kind: str, outline: list[list[float]]) -> PhotoAnalysis:
    fields = corrections.parse_fields(kind, "minor", "hood")
    return corrections.add_damage(assessment, "p1", fields, outline).photos[0]


def test_a_dent_drawn_away_from_the_models_dent_covers_its_whole_outline(inr_policy) -> None:
    # given the model's dent on the left of the hood
    first = claim_with(inr_policy, model_dent(0, 0))
    # when an adjuster draws a dent on the right of it
    drawn = draw(first, "dent", square(250, 50)).damages[-1]
    # then it covers its outline's share of the hood's box
    assert drawn.review == "added" and drawn.part_coverage == pytest.approx(0.125)


def test_a_dent_drawn_over_the_models_dent_adds_only_what_it_does_not_cover(inr_policy) -> None:
    # given the model's dent on the left of the hood
    first = claim_with(inr_policy, model_dent(0, 0))
    # when an adjuster draws the same dent again, and one half over it
    again = draw(first, "dent", square(0, 0)).damages[-1]
    half = draw(first, "dent", square(50, 0)).damages[-1]
    # then the first adds nothing and the second half its outline
    assert again.part_coverage == 0.0
    assert half.part_coverage == pytest.approx(0.0625, abs=0.003)


def test_a_scratch_drawn_over_a_dent_is_its_own_damage(inr_policy) -> None:
    # given the model's dent; when an adjuster draws a scratch over it
    first = claim_with(inr_policy, model_dent(0, 0))
    drawn = draw(first, "scratch", square(0, 0)).damages[-1]
    # then the scratch covers its whole outline: another type is repaired on its own
    assert drawn.part_coverage == pytest.approx(0.125)


def test_deleting_the_dent_a_drawing_overlaps_gives_the_drawing_its_whole_outline(
    inr_policy,
) -> None:
    # given an adjuster's dent drawn half over the model's
    first = claim_with(inr_policy, model_dent(0, 0))
    fields = corrections.parse_fields("dent", "minor", "hood")
    added = corrections.add_damage(first, "p1", fields, square(50, 0))
    second = assess_claim(added.photos, added.corrections, context(photos=(meta("p1"),)), (),
                          {"damage": "d-1", "parts": "p-1"}, inr_policy)  # fmt: skip
    # when the model's dent is deleted
    after = corrections.delete_damage(second, "p1", 0).photos[0]
    # then the drawn dent is alone and covers all of its outline
    assert [d.review for d in after.damages] == ["added"]
    assert after.damages[0].part_coverage == pytest.approx(0.125)


def test_the_audit_records_the_coverage_as_stored(inr_policy) -> None:
    # given the model's dent; when an adjuster draws a dent over it
    first = claim_with(inr_policy, model_dent(0, 0))
    fields = corrections.parse_fields("dent", "minor", "hood")
    edit = corrections.add_damage(first, "p1", fields, square(0, 0))
    # then the audit trail shows the coverage the claim is priced on
    assert edit.after is not None and edit.after["part_coverage"] == 0.0
    assert edit.photos[0].damages[-1].part_coverage == 0.0


def test_points_inside_and_outside_a_polygon() -> None:
    triangle = [(0.0, 0.0), (10.0, 0.0), (0.0, 10.0)]
    assert inside(2.0, 2.0, triangle) and not inside(8.0, 8.0, triangle)
    assert not inside(-1.0, 5.0, triangle) and not inside(5.0, 11.0, triangle)


def test_the_fresh_share_of_an_outline() -> None:
    box = [(0.0, 0.0), (100.0, 0.0), (100.0, 100.0), (0.0, 100.0)]
    left_half = [(0.0, 0.0), (50.0, 0.0), (50.0, 100.0), (0.0, 100.0)]
    far = [(500.0, 500.0), (600.0, 500.0), (600.0, 600.0)]
    assert fresh_share(box, []) == 1.0 and fresh_share(box, [far]) == 1.0
    assert fresh_share(box, [left_half]) == pytest.approx(0.5)
    assert fresh_share(box, [box]) == 0.0
    assert fresh_share(box, [left_half, box]) == 0.0
