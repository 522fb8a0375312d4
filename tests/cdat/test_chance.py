"""A damage's chance (its calibrated score) is what triage, the range and the workspace read;
its score still decides everything chosen on scores."""

from __future__ import annotations

from dataclasses import replace

import pytest

from cdat.corrections import DamageFields, confirm_damage, edit_damage
from cdat.estimate import build_estimate
from cdat.findings import Box, DamageInstance, PhotoAnalysis
from cdat.merge import merge_findings
from cdat.taxonomy import CarPart, DamageType, Severity
from cdat.triage import finding_reasons
from tests.cdat.conftest import finding, sedan_pricing

DOOR = CarPart.FRONT_LEFT_DOOR


def dent(score: float, chance: float | None, severity: Severity = Severity.MODERATE):
    return DamageInstance(
        DamageType.DENT, severity, score, Box(10, 10, 50, 50), part=DOOR, part_coverage=0.2,
        chance=chance,
    )  # fmt: skip


def photo(photo_id: str, *damages: DamageInstance) -> PhotoAnalysis:
    return PhotoAnalysis(photo_id, 640, 480, damages=damages)


def test_a_finding_s_chance_is_combined_over_its_photos_as_its_confidence_is():
    # given one dent seen on two photos, read by curves at 0.8 and 0.7 (scores 0.04 and 0.03)
    (found,) = merge_findings([photo("a", dent(0.04, 0.8)), photo("b", dent(0.03, 0.7))])
    # then the finding's chance is that either photo saw real damage, its score kept apart
    assert found.chance == pytest.approx(1 - 0.2 * 0.3)
    assert found.certainty == found.chance
    assert found.confidence == pytest.approx(1 - 0.96 * 0.97, abs=1e-4)
    # and where no curves read any sighting, there is no chance: the confidence stands
    (unread,) = merge_findings([photo("a", dent(0.04, None))])
    assert unread.chance is None and unread.certainty == unread.confidence == 0.04


def test_an_adjuster_s_sighting_is_certain_beside_a_model_s_chance():
    (found,) = merge_findings([photo("a", dent(0.04, 0.6)), photo("b", dent(1.0, None))])
    assert found.chance == pytest.approx(1.0, abs=0.01)


def test_the_worst_severity_is_still_chosen_among_sightings_credible_by_score():
    # given a confident moderate dent and a weak severe one on the same door, read by curves
    # as nearly as likely real (0.85 and 0.8): the weak one's score is under half the other's
    sure, weak = dent(0.6, 0.85), dent(0.05, 0.8, Severity.SEVERE)
    # when merged, then the severe guess does not decide the severity: scores decide that
    (found,) = merge_findings([photo("a", sure, weak)])
    assert found.severity is Severity.MODERATE


def test_triage_asks_for_review_of_a_finding_by_its_chance(inr_policy):
    bar = inr_policy.triage.min_confidence
    # given a finding the detector scored low but its curves read as likely real
    likely = replace(finding(confidence=0.04), chance=bar + 0.2)
    # and one scored high whose curves read as likely false
    doubtful = replace(finding(confidence=0.95), chance=bar - 0.1)
    # then only the doubtful one is low confidence, the chance named in its reason
    assert finding_reasons([likely], inr_policy.triage) == []
    (reason,) = finding_reasons([doubtful], inr_policy.triage)
    assert reason.code == "low_confidence" and f"confidence {bar - 0.1:.2f}" in reason.message


def _line_confidence(f, inr_policy) -> float:
    estimate = build_estimate([f], sedan_pricing(inr_policy))
    assert estimate.lines
    return estimate.lines[0].confidence


def test_an_estimate_line_is_as_certain_as_its_finding_s_chance(inr_policy):
    scored = finding(confidence=0.1)
    read = replace(scored, chance=0.85)
    assert _line_confidence(scored, inr_policy) == pytest.approx(0.1)
    assert _line_confidence(read, inr_policy) == pytest.approx(0.85)


def test_an_adjuster_s_word_leaves_no_chance_of_the_model_s(inr_policy):
    from cdat.assessment import Assessment

    # given a photo whose dent the curves read at 0.7
    assessment = Assessment((photo("a", dent(0.05, 0.7)),), (), {})
    # when an adjuster confirms it, or edits it
    confirmed = confirm_damage(assessment, "a", 0).photos[0].damages[0]
    fields = DamageFields(DamageType.DENT, Severity.SEVERE, DOOR)
    edited = edit_damage(assessment, "a", 0, fields).photos[0].damages[0]
    # then it is certain: the model's chance no longer stands
    for damage in (confirmed, edited):
        assert damage.chance is None and damage.certainty == 1.0
