"""build_assessment end to end, with the real shipped policy and an in-memory index."""

from __future__ import annotations

from cdat.assessment import TriageDecision
from cdat.phash import InMemoryPhotoHashIndex
from cdat.pipeline import build_assessment
from cdat.taxonomy import CarPart, DamageType, Severity
from tests.cdat.conftest import context, finding, meta, photo

VERSIONS = {"damage": "damage-test-1", "parts": "parts-test-1"}


def test_small_clean_claim_goes_straight_through(inr_policy) -> None:
    # given one good photo of a minor scratch on a door
    analyses = [photo("p1", "0123456789abcdef")]
    findings = [finding(CarPart.FRONT_LEFT_DOOR, DamageType.SCRATCH, Severity.MINOR, 0.92, 0.1)]
    index = InMemoryPhotoHashIndex()
    # when assessed
    result = build_assessment(analyses, findings, context(), VERSIONS, inr_policy, index)
    # then it is priced, not a total loss, straight through, and the photo is now indexed
    assert result.estimate is not None and result.estimate.total > 0
    assert result.estimate.currency == "INR"
    assert {line.rule_id for line in result.estimate.lines} == {
        "PANEL-MINOR-SCRATCH-REFINISH",
        "BLEND-ADJACENT",
    }
    assert result.total_loss is not None and not result.total_loss.is_total_loss
    assert result.triage is not None
    assert result.triage.decision is TriageDecision.STRAIGHT_THROUGH, result.triage.reasons
    assert result.model_versions == VERSIONS
    assert [m.claim_id for m in index.near("0123456789abcdef", 0, None)] == ["claim-1"]


def test_reused_photo_in_a_later_claim_is_flagged_for_review(inr_policy) -> None:
    index = InMemoryPhotoHashIndex()
    findings = [finding(CarPart.HOOD, DamageType.DENT, Severity.MODERATE, 0.9, 0.2)]
    build_assessment(
        [photo("a1", "00000000ffffffff")], findings, context("claim-A"), VERSIONS, inr_policy, index
    )
    # when another claim submits the same picture
    later = build_assessment(
        [photo("b1", "00000000fffffffe")],
        findings,
        context("claim-B", photos=(meta("b1"),)),
        VERSIONS,
        inr_policy,
        index,
    )
    # then the signal names the first claim, and the claim goes to an adjuster
    assert [s.evidence["other_claim_id"] for s in later.fraud_signals] == ["claim-A"]
    assert later.triage is not None and later.triage.decision is TriageDecision.NEEDS_REVIEW
    assert "fraud_signal" in [r.code for r in later.triage.reasons]


def test_retrying_the_same_claim_does_not_flag_itself(inr_policy) -> None:
    index = InMemoryPhotoHashIndex()
    args = ([photo("p1", "1111111111111111")], [finding(confidence=0.95)], context())
    build_assessment(*args, VERSIONS, inr_policy, index)
    again = build_assessment(*args, VERSIONS, inr_policy, index)
    assert again.fraud_signals == ()
