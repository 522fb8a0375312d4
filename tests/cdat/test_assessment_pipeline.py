"""A claim's first assessment end to end (`fraud_signals`, then `assess_claim`), with the
real shipped policy and an in-memory index."""

from __future__ import annotations

from collections.abc import Sequence

from cdat.assessment import Assessment, FraudSignal, TriageDecision
from cdat.claims import ClaimContext
from cdat.corrections import Corrections
from cdat.findings import Box, DamageInstance, PhotoAnalysis
from cdat.phash import InMemoryPhotoHashIndex
from cdat.pipeline import AssessmentPolicy, assess_claim, fraud_signals
from cdat.taxonomy import CarPart, DamageType, Severity
from tests.cdat.conftest import context, meta, photo

VERSIONS = {"damage": "damage-test-1", "parts": "parts-test-1"}


def seen(
    photo_id: str,
    phash: str,
    part: CarPart = CarPart.FRONT_LEFT_DOOR,
    kind: DamageType = DamageType.DENT,
    severity: Severity = Severity.MODERATE,
    confidence: float = 0.9,
    coverage: float = 0.2,
) -> PhotoAnalysis:
    damage = DamageInstance(
        kind, severity, confidence, Box(10, 10, 200, 200), part=part, part_coverage=coverage
    )
    return photo(photo_id, phash, damages=(damage,))


def first_assessment(
    analyses: Sequence[PhotoAnalysis],
    claim: ClaimContext,
    policy: AssessmentPolicy,
    index: InMemoryPhotoHashIndex,
    history: Sequence[tuple[int, Sequence[FraudSignal]]] = (),
) -> Assessment:
    signals = fraud_signals(analyses, claim, index, history, policy)
    return assess_claim(analyses, Corrections(), claim, signals, VERSIONS, policy)


def test_small_clean_claim_goes_straight_through(inr_policy) -> None:
    # given one good photo of a minor scratch on a door
    analyses = [
        seen(
            "p1",
            "0123456789abcdef",
            kind=DamageType.SCRATCH,
            severity=Severity.MINOR,
            confidence=0.92,
            coverage=0.1,
        )
    ]
    index = InMemoryPhotoHashIndex()
    # when assessed
    result = first_assessment(analyses, context(), inr_policy, index)
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
    first = [seen("a1", "00000000ffffffff", CarPart.HOOD)]
    first_assessment(first, context("claim-A"), inr_policy, index)
    # when another claim submits the same picture
    later = first_assessment(
        [seen("b1", "00000000fffffffe", CarPart.HOOD)],
        context("claim-B", photos=(meta("b1"),)),
        inr_policy,
        index,
    )
    # then the signal names the first claim, and the claim goes to an adjuster
    assert [s.evidence["other_claim_id"] for s in later.fraud_signals] == ["claim-A"]
    assert later.triage is not None and later.triage.decision is TriageDecision.NEEDS_REVIEW
    assert "fraud_signal" in [r.code for r in later.triage.reasons]


def test_retrying_the_same_claim_does_not_flag_itself(inr_policy) -> None:
    index = InMemoryPhotoHashIndex()
    analyses = [seen("p1", "1111111111111111", confidence=0.95)]
    first_assessment(analyses, context(), inr_policy, index)
    again = first_assessment(analyses, context(), inr_policy, index)
    assert again.fraud_signals == ()


def test_a_signal_an_earlier_version_raised_stands_in_the_next(inr_policy) -> None:
    # given a claim whose version 1 raised a signal on a photo since retaken
    raised = FraudSignal("duplicate_photo", "reused", "old-photo", {"other_claim_id": "c9"})
    # when its new photos are assessed
    later = first_assessment(
        [seen("p2", "2222222222222222")],
        context(),
        inr_policy,
        InMemoryPhotoHashIndex(),
        history=[(1, (raised,))],
    )
    # then the signal stands, saying which version raised it, and the claim is reviewed
    assert [(s.code, s.evidence.get("raised_in_version")) for s in later.fraud_signals] == [
        ("duplicate_photo", "1")
    ]
    assert later.triage is not None and later.triage.decision is TriageDecision.NEEDS_REVIEW
