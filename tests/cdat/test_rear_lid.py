"""A car has one rear lid: a sedan a trunk, a hatchback or SUV a tailgate. The estimate
prices and blends the one the policy's body type says it has."""

from __future__ import annotations

from decimal import Decimal

import pytest

from cdat.assessment import Operation
from cdat.catalog import ClassDecision, VehicleClass
from cdat.claims import BodyType, Vehicle, as_fitted, boot_lid
from cdat.corrections import Corrections
from cdat.estimate import build_estimate
from cdat.findings import Box, DamageInstance, PartInstance
from cdat.merge import merge_findings
from cdat.pipeline import AssessmentPolicy, assess_claim
from cdat.pricing import Pricing
from cdat.taxonomy import CarPart, DamageType, Severity
from tests.cdat.conftest import context, finding, meta, photo

TRUNK, TAILGATE = CarPart.TRUNK, CarPart.TAILGATE


def _pricing(policy: AssessmentPolicy, body: BodyType | None) -> Pricing:
    decision = ClassDecision(VehicleClass.MIDSIZE, "test")
    return Pricing(policy.catalog, policy.rules, policy.region, decision, body)


def _blended(policy: AssessmentPolicy, body: BodyType | None) -> set[CarPart | None]:
    bumper = finding(CarPart.BACK_BUMPER, DamageType.DENT, Severity.MODERATE, coverage=0.2)
    estimate = build_estimate([bumper], _pricing(policy, body))
    return {line.part for line in estimate.lines if line.operation is Operation.BLEND}


@pytest.mark.parametrize(
    ("body", "has", "lacks"),
    [
        (BodyType.SEDAN, TRUNK, TAILGATE),
        (BodyType.COUPE, TRUNK, TAILGATE),
        (BodyType.HATCHBACK, TAILGATE, TRUNK),
        (BodyType.SUV, TAILGATE, TRUNK),
        (BodyType.PICKUP, TAILGATE, TRUNK),
    ],
)
def test_a_rear_bumper_repair_blends_into_the_lid_the_car_has_only(
    inr_policy: AssessmentPolicy, body: BodyType, has: CarPart, lacks: CarPart
) -> None:
    # given a repainted rear bumper on a car of this body type
    # when it is priced
    blended = _blended(inr_policy, body)
    # then the colour is blended into its own rear lid, never into the one it does not have
    assert has in blended
    assert lacks not in blended
    assert boot_lid(body) is has


def test_without_a_body_type_both_lids_stay_neighbours(inr_policy: AssessmentPolicy) -> None:
    # given no body type (the load checks price parts with no vehicle), then nothing is left out
    assert {TRUNK, TAILGATE} <= _blended(inr_policy, None)


def _lid_dent(part: CarPart, confidence: float) -> DamageInstance:
    box = Box(0, 0, 10, 10)
    return DamageInstance(DamageType.DENT, Severity.MODERATE, confidence, box, (), part, 0.2)


def test_a_lid_the_model_names_wrongly_is_the_cars_own_lid() -> None:
    # given the part model calling a lid "tailgate" in one photo and "trunk" in another
    photos = [
        photo("a", damages=(_lid_dent(TAILGATE, 0.6),)),
        photo("b", damages=(_lid_dent(TRUNK, 0.5),)),
    ]
    # when the claim is of a sedan, then one finding on its trunk holds both sightings
    (sedan,) = merge_findings(photos, BodyType.SEDAN)
    assert sedan.part is TRUNK
    assert [e.photo_id for e in sedan.evidence] == ["a", "b"]
    # and of an SUV, on its tailgate
    (suv,) = merge_findings(photos, BodyType.SUV)
    assert suv.part is TAILGATE
    # and with no body type each keeps the model's name
    assert {f.part for f in merge_findings(photos)} == {TRUNK, TAILGATE}
    # and a part that is not a lid is never renamed
    assert as_fitted(CarPart.HOOD, BodyType.SEDAN) is CarPart.HOOD


def test_a_sedans_claim_prices_its_trunk_for_a_tailgate_sighting(
    inr_policy: AssessmentPolicy,
) -> None:
    # given a sedan's photo whose lid the part model called a tailgate
    sedan = Vehicle("Honda", "City", 2021, BodyType.SEDAN, None, Decimal(900000))
    seen = photo("p1", damages=(_lid_dent(TAILGATE, 0.8),))
    claim = context(photos=(meta("p1"),), vehicle=sedan)
    # when the claim is assessed
    assessment = assess_claim((seen,), Corrections(), claim, (), {}, inr_policy)
    # then the finding and every line name the trunk, and no tailgate is priced
    assert [f.part for f in assessment.findings] == [TRUNK]
    priced = {line.part for line in assessment.estimate.lines}
    assert TRUNK in priced
    assert TAILGATE not in priced


def test_a_sedans_photos_name_the_trunk_the_finding_names(inr_policy: AssessmentPolicy) -> None:
    # given a sedan's photo whose lid, and the dent on it, the part model called a tailgate
    sedan = Vehicle("Honda", "City", 2021, BodyType.SEDAN, None, Decimal(900000))
    lid = PartInstance(TAILGATE, 0.9, Box(0, 0, 20, 20))
    bumper = PartInstance(CarPart.BACK_BUMPER, 0.9, Box(0, 20, 20, 30))
    seen = photo("p1", damages=(_lid_dent(TAILGATE, 0.8),), parts=(lid, bumper))
    claim = context(photos=(meta("p1"),), vehicle=sedan)
    # when the claim is assessed
    assessment = assess_claim((seen,), Corrections(), claim, (), {}, inr_policy)
    # then the photo the adjuster reads names the trunk, as the finding does: its damage row
    # and its part label, and nothing else in it changed
    (shown,) = assessment.photos
    assert [d.part for d in shown.damages] == [TRUNK]
    assert [p.part for p in shown.parts] == [TRUNK, CarPart.BACK_BUMPER]
    assert shown.damages[0].confidence == 0.8 and shown.parts[0].box == lid.box
    # and an SUV's photo keeps its tailgate
    suv = Vehicle("Tata", "Nexon", 2021, BodyType.SUV, None, Decimal(900000))
    suv_claim = context(photos=(meta("p1"),), vehicle=suv)
    (kept,) = assess_claim((seen,), Corrections(), suv_claim, (), {}, inr_policy).photos
    assert kept == seen
