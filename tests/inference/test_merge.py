"""The claim view: one damage seen in several photos becomes one finding."""

from __future__ import annotations

import pytest

from cdat.findings import Box, DamageInstance, PhotoAnalysis, QualityIssue
from cdat.merge import merge_findings
from cdat.taxonomy import CarPart, DamageType, Severity

DOOR, HOOD = CarPart.FRONT_LEFT_DOOR, CarPart.HOOD


def dmg(kind, severity, confidence, part, coverage=0.1) -> DamageInstance:
    return DamageInstance(kind, severity, confidence, Box(0, 0, 1, 1), (), part, coverage)


def shot(photo_id, *damages, blocking=False) -> PhotoAnalysis:
    issues = (QualityIssue("duplicate_photo", "dup", "retake", blocking=True),) if blocking else ()
    return PhotoAnalysis(photo_id, 100, 100, damages=damages, quality_issues=issues)


def test_one_dent_in_three_photos_is_one_finding_with_all_evidence():
    photos = [
        shot("a", dmg(DamageType.DENT, Severity.MODERATE, 0.6, DOOR, 0.2)),
        shot("b", dmg(DamageType.DENT, Severity.MINOR, 0.5, DOOR, 0.3)),
        shot("c", dmg(DamageType.DENT, Severity.MODERATE, 0.7, DOOR, 0.25)),
    ]
    (finding,) = merge_findings(photos)
    assert (finding.part, finding.damage_type) == (DOOR, DamageType.DENT)
    assert finding.severity is Severity.MODERATE
    assert finding.confidence == pytest.approx(1 - 0.4 * 0.5 * 0.3)
    assert finding.part_coverage == pytest.approx(0.3)
    assert [(e.photo_id, e.confidence, e.damage_index) for e in finding.evidence] == [
        ("c", 0.7, 0),
        ("a", 0.6, 0),
        ("b", 0.5, 0),
    ]


def test_severity_is_the_worst_credible_sighting():
    weak_severe = [
        shot("a", dmg(DamageType.DENT, Severity.MINOR, 0.9, DOOR)),
        shot("b", dmg(DamageType.DENT, Severity.SEVERE, 0.3, DOOR)),
    ]
    assert merge_findings(weak_severe)[0].severity is Severity.MINOR
    strong_severe = [weak_severe[0], shot("b", dmg(DamageType.DENT, Severity.SEVERE, 0.5, DOOR))]
    assert merge_findings(strong_severe)[0].severity is Severity.SEVERE


def test_types_and_parts_stay_apart_and_unassigned_damage_stays_per_photo():
    photos = [
        shot(
            "a",
            dmg(DamageType.DENT, Severity.MINOR, 0.8, DOOR),
            dmg(DamageType.SCRATCH, Severity.MINOR, 0.7, DOOR),
            dmg(DamageType.DENT, Severity.MINOR, 0.6, None),
        ),
        shot(
            "b",
            dmg(DamageType.DENT, Severity.MINOR, 0.8, HOOD),
            dmg(DamageType.DENT, Severity.MINOR, 0.5, None),
        ),
    ]
    findings = merge_findings(photos)
    keys = [(f.part, f.damage_type) for f in findings]
    assert keys == [
        (DOOR, DamageType.DENT),
        (DOOR, DamageType.SCRATCH),
        (HOOD, DamageType.DENT),
        (None, DamageType.DENT),
        (None, DamageType.DENT),
    ]
    assert [f.evidence[0].photo_id for f in findings[3:]] == ["a", "b"]
    assert findings[3].evidence[0].damage_index == 2


def test_two_instances_in_one_photo_add_coverage_but_not_confidence():
    photos = [
        shot(
            "a",
            dmg(DamageType.SCRATCH, Severity.MINOR, 0.6, DOOR, 0.1),
            dmg(DamageType.SCRATCH, Severity.MINOR, 0.5, DOOR, 0.15),
        )
    ]
    (finding,) = merge_findings(photos)
    assert finding.confidence == pytest.approx(0.6)
    assert finding.part_coverage == pytest.approx(0.25)
    assert len(finding.evidence) == 2


def test_photos_with_blocking_issues_are_ignored():
    photos = [
        shot("a", dmg(DamageType.DENT, Severity.MINOR, 0.6, DOOR)),
        shot("b", dmg(DamageType.DENT, Severity.SEVERE, 0.9, DOOR), blocking=True),
    ]
    (finding,) = merge_findings(photos)
    assert [e.photo_id for e in finding.evidence] == ["a"] and finding.severity is Severity.MINOR
    assert merge_findings([]) == ()


def _with_part(analysis: PhotoAnalysis, part: CarPart, box: Box) -> PhotoAnalysis:
    from dataclasses import replace

    from cdat.findings import PartInstance

    return replace(analysis, parts=(PartInstance(part, 0.9, box),))


def test_coverage_comes_from_a_photo_that_shows_the_part_whole():
    # given a close-up that cuts the door off (its box reaches the photo's edge), where the
    # dent covers most of what is shown, and a wider photo that shows the whole door
    closeup = _with_part(
        shot("close", dmg(DamageType.DENT, Severity.SEVERE, 0.8, DOOR, 0.9)),
        DOOR,
        Box(0, 5, 100, 95),
    )
    wide = _with_part(
        shot("wide", dmg(DamageType.DENT, Severity.SEVERE, 0.6, DOOR, 0.2)),
        DOOR,
        Box(20, 30, 60, 70),
    )
    # when merged, the close-up alone and both together
    (alone,) = merge_findings([closeup])
    (both,) = merge_findings([closeup, wide])
    # then the close-up's share is kept as a bound, and the whole view measures it
    assert (alone.part_coverage, alone.coverage_cut_off) == (0.9, True)
    assert (both.part_coverage, both.coverage_cut_off) == (0.2, False)
    assert {e.photo_id for e in both.evidence} == {"close", "wide"}


def test_a_part_the_part_model_did_not_outline_counts_as_seen_whole():
    # given damage placed on a door with no door outline in the photo (a stage placed it)
    photo = shot("a", dmg(DamageType.DENT, Severity.SEVERE, 0.8, DOOR, 0.5))
    # when merged
    (finding,) = merge_findings([photo])
    # then nothing says the door is cut off
    assert (finding.part_coverage, finding.coverage_cut_off) == (0.5, False)


def test_a_finding_says_whether_any_photo_outlines_its_part():
    # given a dent on a door the part model did not outline (a stage placed it) and one on
    # a door it outlined in another photo
    placed = shot("placed", dmg(DamageType.DENT, Severity.MINOR, 0.8, DOOR, 0.0))
    outlined = _with_part(
        shot("outlined", dmg(DamageType.DENT, Severity.MINOR, 0.6, DOOR, 0.2)),
        DOOR,
        Box(20, 30, 60, 70),
    )
    # when merged alone and together
    (alone,) = merge_findings([placed])
    (both,) = merge_findings([placed, outlined])
    # then the placed one alone has no measured coverage; with the outlined photo it has
    assert (alone.part_outlined, alone.part_coverage) == (False, 0.0)
    assert (both.part_outlined, both.part_coverage) == (True, 0.2)
    # and a damage on no part has no part to outline
    (unplaced,) = merge_findings([shot("none", dmg(DamageType.DENT, Severity.MINOR, 0.5, None))])
    assert unplaced.part_outlined is False
