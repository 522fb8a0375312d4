"""The policyholder sees one finding per damage; the adjuster sees every name the model gave."""

from __future__ import annotations

from datetime import UTC, date, datetime

from cdat.corrections import Corrections
from cdat.findings import Box, DamageInstance, PhotoAnalysis
from cdat.pipeline import assess_claim, load_policy
from cdat.record import encode
from cdat.taxonomy import CarPart, DamageType, Severity
from mobile_api.api.claim_views import _for_policyholder
from mobile_api.api.serialize import assessment_public
from mobile_api.storage import models
from tests.cdat.conftest import context, meta, photo, settings

SQUARE = ((0.0, 0.0), (100.0, 0.0), (100.0, 100.0), (0.0, 100.0))
INSIDE = ((10.0, 10.0), (70.0, 10.0), (70.0, 70.0), (10.0, 70.0))


def _damage(kind: DamageType, confidence: float, outline) -> DamageInstance:
    return DamageInstance(
        kind, Severity.MODERATE, confidence, Box(0, 0, 100, 100), outline, CarPart.HOOD, 0.2
    )


def test_a_damage_named_twice_is_one_finding_for_the_policyholder() -> None:
    # given a stored assessment whose hood dent the model also called a scratch
    seen = photo("p1", damages=(_damage(DamageType.DENT, 0.6, SQUARE),
                                _damage(DamageType.SCRATCH, 0.3, INSIDE)))  # fmt: skip
    assessment = assess_claim(
        (seen,), Corrections(), context(photos=(meta("p1"),)), (), {}, load_policy(settings())
    )
    record = models.AssessmentRecord(
        claim_id="c1", version=1, job_id="j1", photo_ids=["p1"], body=encode(assessment),
        source="model", author=None, created_at=datetime(2026, 1, 1, tzinfo=UTC),
    )  # fmt: skip
    claim = models.Claim(id="c1", status="needs_review", current_version=1,
                         loss_date=date(2026, 1, 1))  # fmt: skip
    # when the policyholder and the adjuster are shown it
    mine = _for_policyholder(claim, record)
    staff = assessment_public(record)
    # then the policyholder sees one hood dent, and the adjuster both names, the second marked
    assert [(f.part, f.damage_type) for f in mine.findings] == [("hood", "dent")]
    assert [(f.damage_type, f.named_again) for f in staff.findings] == [
        ("dent", False),
        ("scratch", True),
    ]


def test_a_type_that_cannot_be_on_its_part_is_marked_for_the_policyholder() -> None:
    # given a stored assessment with a broken lamp put on the hood, and a dent on the hood
    seen = photo("p1", damages=(_damage(DamageType.LAMP_BROKEN, 0.6, SQUARE),))
    dented = photo("p2", damages=(_damage(DamageType.DENT, 0.6, SQUARE),))
    assessment = assess_claim(
        (seen, dented), Corrections(), context(photos=(meta("p1"), meta("p2"))), (), {},
        load_policy(settings()),
    )  # fmt: skip
    record = models.AssessmentRecord(
        claim_id="c1", version=1, job_id="j1", photo_ids=["p1", "p2"], body=encode(assessment),
        source="model", author=None, created_at=datetime(2026, 1, 1, tzinfo=UTC),
    )  # fmt: skip
    claim = models.Claim(id="c1", status="needs_review", current_version=1,
                         loss_date=date(2026, 1, 1))  # fmt: skip
    # when the policyholder is shown it
    mine = _for_policyholder(claim, record)
    # then the broken lamp is marked for an adjuster to confirm, the dent is not, and triage
    # gave the same reason for review
    marked = {(f.damage_type, f.to_confirm) for f in mine.findings}
    assert marked == {("lamp_broken", True), ("dent", False)}
    assert assessment.triage is not None
    assert "damage_part_mismatch" in {r.code for r in assessment.triage.reasons}


def _stored(*seen: PhotoAnalysis) -> models.AssessmentRecord:
    ids = [p.photo_id for p in seen]
    assessment = assess_claim(
        seen, Corrections(), context(photos=tuple(meta(i) for i in ids)), (), {},
        load_policy(settings()),
    )  # fmt: skip
    return models.AssessmentRecord(
        claim_id="c1", version=1, job_id="j1", photo_ids=ids, body=encode(assessment),
        source="model", author=None, created_at=datetime(2026, 1, 1, tzinfo=UTC),
    )  # fmt: skip


def test_a_severity_read_only_on_close_ups_is_marked_for_the_policyholder() -> None:
    claim = models.Claim(id="c1", status="needs_review", current_version=1,
                         loss_date=date(2026, 1, 1))  # fmt: skip
    dent = (_damage(DamageType.DENT, 0.6, SQUARE),)
    # given a hood dent seen on one photo read as a close-up
    close = photo("p1", damages=dent, severity_read_close_up=True)
    mine = _for_policyholder(claim, _stored(close))
    # then its severity is for an adjuster to confirm
    assert [f.severity_to_confirm for f in mine.findings] == [True]
    # and seen on a photo read whole too, it is not
    whole = photo("p2", phash="f0f0f0f0f0f0f0f0", damages=dent)
    assert [
        f.severity_to_confirm for f in _for_policyholder(claim, _stored(close, whole)).findings
    ] == [False]
    # nor where an adjuster corrected the close-up
    reviewed = photo("p1", damages=dent, severity_read_close_up=True, reviewed=True)
    assert [
        f.severity_to_confirm for f in _for_policyholder(claim, _stored(reviewed)).findings
    ] == [False]
