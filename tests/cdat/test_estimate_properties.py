"""Estimator invariants over arbitrary findings, for both shipped catalogs."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cdat.assessment import Estimate
from cdat.catalog import ClassDecision, VehicleClass
from cdat.estimate import build_estimate
from cdat.findings import PartFinding
from cdat.pipeline import AssessmentPolicy
from cdat.pricing import Pricing
from cdat.taxonomy import CarPart, DamageType, Severity

RELAXED = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)

findings_strategy = st.lists(
    st.builds(
        PartFinding,
        part=st.one_of(st.none(), st.sampled_from(CarPart)),
        damage_type=st.sampled_from(DamageType),
        severity=st.sampled_from(Severity),
        confidence=st.floats(0.0, 1.0),
        part_coverage=st.floats(0.0, 1.0),
        evidence=st.just(()),
    ),
    max_size=8,
)
classes = st.sampled_from(VehicleClass)


@pytest.fixture(params=["inr", "usd"])
def policy(request: pytest.FixtureRequest) -> AssessmentPolicy:
    return request.getfixturevalue(f"{request.param}_policy")


def _estimate(
    policy: AssessmentPolicy, findings: list[PartFinding], klass: VehicleClass
) -> Estimate:
    pricing = Pricing(policy.catalog, policy.rules, policy.region, ClassDecision(klass, "test"))
    return build_estimate(findings, pricing)


@RELAXED
@given(findings=findings_strategy, klass=classes)
def test_lines_add_up_to_totals(policy: AssessmentPolicy, findings, klass) -> None:
    estimate = _estimate(policy, findings, klass)
    for line in estimate.lines:
        assert line.total == line.parts_cost + line.labour_cost + line.paint_cost
        assert line.labour_cost == policy.catalog.money(line.labour_hours * line.labour_rate)
        assert line.paint_cost == (
            policy.catalog.money(line.paint_hours * line.paint_rate) + line.paint_materials
        )
    assert estimate.subtotal == sum((line.total for line in estimate.lines), Decimal(0))
    assert estimate.subtotal == (
        estimate.parts_subtotal + estimate.labour_subtotal + estimate.paint_subtotal
    )
    assert estimate.total == estimate.subtotal + estimate.tax


@RELAXED
@given(findings=findings_strategy, klass=classes)
def test_nothing_negative_one_currency_and_range_brackets_total(
    policy: AssessmentPolicy, findings, klass
) -> None:
    estimate = _estimate(policy, findings, klass)
    amounts = [estimate.subtotal, estimate.tax, estimate.total, estimate.low, estimate.high]
    for line in estimate.lines:
        amounts += [line.parts_cost, line.labour_cost, line.paint_cost, line.total]
        assert line.labour_hours >= 0 and line.paint_hours >= 0
        assert line.part is not None
    assert all(amount >= 0 for amount in amounts)
    exponent = -policy.catalog.minor_unit
    assert all(amount.as_tuple().exponent == exponent for amount in amounts)
    assert estimate.currency == policy.catalog.currency
    assert estimate.low <= estimate.total <= estimate.high


@RELAXED
@given(findings=findings_strategy, klass=classes, data=st.data())
def test_cost_never_falls_as_severity_rises(
    policy: AssessmentPolicy, findings, klass, data
) -> None:
    # given any claim and one of its findings made more severe
    if not findings:
        return
    index = data.draw(st.integers(0, len(findings) - 1))
    current = findings[index].severity
    worse = data.draw(st.sampled_from([s for s in Severity if s.rank >= current.rank]))
    raised = [*findings[:index], replace(findings[index], severity=worse), *findings[index + 1 :]]
    # then the estimate does not get cheaper
    assert _estimate(policy, raised, klass).total >= _estimate(policy, findings, klass).total


@RELAXED
@given(findings=findings_strategy, klass=classes, factor=st.floats(0.01, 1.0))
def test_lower_confidence_never_narrows_the_range(
    policy: AssessmentPolicy, findings, klass, factor
) -> None:
    # (scaled to zero, a weak guess is no weaker than the rest and may replace its part:
    # which finding is credible depends on the confidences' ratios, kept here)
    unsure = [replace(f, confidence=f.confidence * factor) for f in findings]
    before, after = _estimate(policy, findings, klass), _estimate(policy, unsure, klass)
    assert after.total == before.total
    assert after.high - after.low >= before.high - before.low


def test_range_is_wider_for_a_less_confident_finding(inr_policy: AssessmentPolicy) -> None:
    sure = PartFinding(CarPart.HOOD, DamageType.DENT, Severity.MODERATE, 0.95, 0.2, ())
    unsure = replace(sure, confidence=0.4)
    a = _estimate(inr_policy, [sure], VehicleClass.MIDSIZE)
    b = _estimate(inr_policy, [unsure], VehicleClass.MIDSIZE)
    assert a.total == b.total > 0
    assert b.high - b.low > a.high - a.low
    assert a.low < a.total < a.high
