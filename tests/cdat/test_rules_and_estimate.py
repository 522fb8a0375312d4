"""Each shipped repair rule fires where it should, and lines name their rule."""

from __future__ import annotations

import dataclasses
from decimal import Decimal

import pytest

from cdat.assessment import Operation
from cdat.catalog import ClassDecision, VehicleClass
from cdat.estimate import build_estimate
from cdat.findings import PartFinding
from cdat.pipeline import AssessmentPolicy
from cdat.pricing import Pricing
from cdat.taxonomy import CarPart, DamageType, Severity
from tests.cdat.conftest import finding

D, S = DamageType, Severity


def _pricing(policy: AssessmentPolicy, klass: VehicleClass = VehicleClass.MIDSIZE) -> Pricing:
    return Pricing(policy.catalog, policy.rules, policy.region, ClassDecision(klass, "test"))


def _cheap(
    policy: AssessmentPolicy, part: CarPart, klass: VehicleClass = VehicleClass.MIDSIZE
) -> Pricing:
    """Prices where a new `part` costs 1 (a repair of all of it then always costs more)."""
    cheap = policy.catalog.parts[part].model_copy(
        update={"prices": dict.fromkeys(VehicleClass, Decimal(1))}
    )
    catalog = policy.catalog.model_copy(update={"parts": {**policy.catalog.parts, part: cheap}})
    return Pricing(catalog, policy.rules, policy.region, ClassDecision(klass, "test"))


@pytest.mark.parametrize(
    ("part", "damage", "severity", "coverage", "rule_id"),
    [
        (CarPart.FRONT_GLASS, D.GLASS_SHATTER, S.MINOR, 0.1, "GLASS-LAMP-BREAK-REPLACE"),
        (CarPart.BACK_LEFT_LIGHT, D.LAMP_BROKEN, S.MINOR, 0.05, "GLASS-LAMP-BREAK-REPLACE"),
        (CarPart.FRONT_GLASS, D.SCRATCH, S.MINOR, 0.1, "GLASS-MINOR-SCRATCH-POLISH"),
        (CarPart.FRONT_GLASS, D.SCRATCH, S.MODERATE, 0.1, "GLASS-LAMP-REPLACE"),
        (CarPart.WHEEL, D.TIRE_FLAT, S.MODERATE, 0.5, "TYRE-PUNCTURE-REPAIR"),
        (CarPart.WHEEL, D.TIRE_FLAT, S.SEVERE, 0.5, "WHEEL-SEVERE-REPLACE"),
        (CarPart.WHEEL, D.SCRATCH, S.MINOR, 0.2, "WHEEL-REFURBISH"),
        (CarPart.HOOD, D.BROKEN_PART, S.MODERATE, 0.1, "BROKEN-PART-REPLACE"),
        (CarPart.HOOD, D.DENT, S.SEVERE, 0.3, "SEVERE-COVERAGE-REPLACE"),
        (CarPart.HOOD, D.DENT, S.SEVERE, 0.29, "PANEL-REPAIR-REFINISH"),
        (CarPart.LEFT_MIRROR, D.SCRATCH, S.MODERATE, 0.2, "MIRROR-REPLACE"),
        (CarPart.TRUNK, D.SCRATCH, S.MINOR, 0.2, "PANEL-MINOR-SCRATCH-REFINISH"),
        (CarPart.TRUNK, D.DENT, S.MINOR, 0.05, "PANEL-SMALL-DENT-PDR"),
        (CarPart.TRUNK, D.DENT, S.MINOR, 0.1, "PANEL-REPAIR-REFINISH"),
        (CarPart.TRUNK, D.TIRE_FLAT, S.MINOR, 0.1, "OTHER-DAMAGE-REPAIR"),
    ],
)
def test_first_matching_rule_decides(
    inr_policy: AssessmentPolicy, part, damage, severity, coverage, rule_id
) -> None:
    # given a finding, when the rule book is asked, then the expected rule answers
    rule = inr_policy.rules.match(finding(part, damage, severity, coverage=coverage))
    assert rule is not None and rule.id == rule_id


def test_replacing_a_panel_buys_the_part_fits_it_and_paints_it(inr_policy) -> None:
    pricing = _pricing(inr_policy, VehicleClass.PREMIUM)
    hood = finding(CarPart.HOOD, D.DENT, S.SEVERE, coverage=0.6)
    estimate = build_estimate([hood], pricing)
    hood_lines = [line for line in estimate.lines if line.part is CarPart.HOOD]
    ops = [line.operation for line in hood_lines]
    assert ops == [Operation.REPLACE, Operation.REMOVE_AND_INSTALL, Operation.REFINISH]
    assert {line.rule_id for line in hood_lines} == {"SEVERE-COVERAGE-REPLACE"}
    entry = inr_policy.catalog.parts[CarPart.HOOD]
    assert hood_lines[0].parts_cost == entry.prices[VehicleClass.PREMIUM]
    assert hood_lines[1].labour_hours == entry.remove_install_hours
    assert hood_lines[2].paint_hours == entry.refinish_hours


def test_replacing_glass_paints_nothing_and_blends_nothing(inr_policy) -> None:
    estimate = build_estimate(
        [finding(CarPart.FRONT_GLASS, D.GLASS_SHATTER, S.SEVERE)], _pricing(inr_policy)
    )
    assert [line.operation for line in estimate.lines] == [
        Operation.REPLACE,
        Operation.REMOVE_AND_INSTALL,
    ]
    assert all(line.paint_cost == 0 for line in estimate.lines)
    assert estimate.lines[1].labour_kind == "mechanical"


def test_refinished_panel_blends_painted_neighbours_only(inr_policy) -> None:
    # given a repaired and refinished front left door
    door = finding(CarPart.FRONT_LEFT_DOOR, D.DENT, S.MODERATE, coverage=0.2)
    estimate = build_estimate([door], _pricing(inr_policy))
    blends = {line.part: line for line in estimate.lines if line.operation is Operation.BLEND}
    # then the rear door and the front fender are blended, the mirror (excluded) and the
    # wheel (unpainted) are not
    assert set(blends) == {CarPart.BACK_LEFT_DOOR, CarPart.FRONT_LEFT_FENDER}
    line = blends[CarPart.BACK_LEFT_DOOR]
    expected = (
        inr_policy.catalog.parts[CarPart.BACK_LEFT_DOOR].refinish_hours
        * inr_policy.rules.blend.fraction
    )
    assert line.paint_hours == expected
    assert line.rule_id == inr_policy.rules.blend.id


def test_no_blend_into_a_panel_that_is_refinished_anyway(inr_policy) -> None:
    estimate = build_estimate(
        [
            finding(CarPart.FRONT_LEFT_DOOR, D.DENT, S.MODERATE),
            finding(CarPart.BACK_LEFT_DOOR, D.SCRATCH, S.MINOR),
        ],
        _pricing(inr_policy),
    )
    blended = {line.part for line in estimate.lines if line.operation is Operation.BLEND}
    # neither door is blended into the other; only their outer neighbours, the fenders
    assert blended == {CarPart.FRONT_LEFT_FENDER, CarPart.BACK_LEFT_QUARTER_PANEL}


def test_paintless_repair_blends_nothing(inr_policy) -> None:
    estimate = build_estimate(
        [finding(CarPart.TRUNK, D.DENT, S.MINOR, coverage=0.05)], _pricing(inr_policy)
    )
    assert [line.operation for line in estimate.lines] == [Operation.REPAIR]
    assert estimate.lines[0].paint_cost == 0


def test_two_findings_on_one_panel_are_painted_once(inr_policy) -> None:
    dent = finding(CarPart.HOOD, D.DENT, S.MODERATE, coverage=0.2)
    scratch = finding(CarPart.HOOD, D.SCRATCH, S.MODERATE, coverage=0.1, confidence=0.7)
    estimate = build_estimate([dent, scratch], _pricing(inr_policy))
    hood = [line for line in estimate.lines if line.part is CarPart.HOOD]
    assert [line.operation for line in hood] == [Operation.REPAIR_AND_REFINISH, Operation.REPAIR]
    assert hood[1].paint_hours == 0
    hours = inr_policy.rules.repair_hours[S.MODERATE]
    assert hood[0].labour_hours == hours.hours(0.2)
    assert hood[1].labour_hours == hours.hours(0.1)


def test_a_parts_damages_add_up_to_at_most_a_repair_of_all_of_it(inr_policy) -> None:
    # given the crash claim's hood: a dent over all of what one photo shows of it, and a
    # broken part over most of what another shows (the two may be the same metal)
    dent = finding(CarPart.HOOD, D.DENT, S.MINOR, confidence=0.28, coverage=1.0)
    broken = finding(CarPart.HOOD, D.BROKEN_PART, S.MINOR, confidence=0.05, coverage=0.69)
    hours = inr_policy.rules.repair_hours
    # when estimated
    hood = [
        x
        for x in build_estimate([dent, broken], _pricing(inr_policy)).lines
        if x.part is CarPart.HOOD
    ]
    # then the hood is repaired once, for all of it, the broken part named on its line
    assert [x.operation for x in hood] == [Operation.REPAIR_AND_REFINISH]
    assert hood[0].labour_hours == hours[S.MINOR].hours(1.0)
    assert "also covers minor broken part" in hood[0].description
    assert "within the repair of all of the hood" in hood[0].description
    # and a second damage past what is left of a whole repair gets only what is left, at
    # the worst of the two severities, saying so
    dent = finding(CarPart.HOOD, D.DENT, S.MODERATE, confidence=0.6, coverage=0.5)
    scratch = finding(CarPart.HOOD, D.DENT, S.MINOR, confidence=0.5, coverage=0.9)
    hood = [
        x
        for x in build_estimate([dent, scratch], _pricing(inr_policy)).lines
        if x.part is CarPart.HOOD
    ]
    assert [x.labour_hours for x in hood] == [
        hours[S.MODERATE].hours(0.5),
        hours[S.MODERATE].hours(1.0) - hours[S.MODERATE].hours(0.5),
    ]
    assert "hours cut: with the hood's other damages, a repair of all of it" in hood[1].description
    # and a remainder under a tenth of an hour is priced too, so the hood's hours still add
    # up to a repair of all of it (dropped, a severity rising could lower the estimate)
    dent = finding(CarPart.HOOD, D.DENT, S.MODERATE, confidence=0.6, coverage=0.99)
    hood = [
        x
        for x in build_estimate([dent, scratch], _pricing(inr_policy)).lines
        if x.part is CarPart.HOOD
    ]
    assert [x.labour_hours for x in hood] == [Decimal("6.46"), Decimal("0.04")]
    assert sum(x.labour_hours for x in hood) == hours[S.MODERATE].hours(1.0)


def test_raising_a_severity_never_lowers_a_parts_share_of_a_whole_repair(
    inr_policy: AssessmentPolicy,
) -> None:
    # given a door with a minor scratch on half of it beside a dent over all of it, which
    # together are priced as a repair of all of the door
    scratch = finding(CarPart.BACK_RIGHT_DOOR, D.SCRATCH, S.MINOR, confidence=0.0, coverage=0.547)
    dent = finding(CarPart.BACK_RIGHT_DOOR, D.DENT, S.MODERATE, confidence=0.0, coverage=1.0)
    before = build_estimate([scratch, dent], _pricing(inr_policy, VehicleClass.ECONOMY))
    # when the scratch is found moderate, and so is priced first with hours of its own
    worse = dataclasses.replace(scratch, severity=S.MODERATE)
    after = build_estimate([worse, dent], _pricing(inr_policy, VehicleClass.ECONOMY))
    # then the door's hours still add up to the whole repair, and the estimate does not fall
    door = [x.labour_hours for x in after.lines if x.part is CarPart.BACK_RIGHT_DOOR]
    assert door == [Decimal("4.69"), Decimal("1.81")]
    assert after.total >= before.total


def test_a_damage_the_part_cannot_have_adds_no_hours_beside_damage_it_can(inr_policy) -> None:
    # given a hood with a dent, and a broken lamp the photos put on the hood too (most
    # likely the headlamp's own damage, its outline spilling over)
    dent = finding(CarPart.HOOD, D.DENT, S.MINOR, confidence=0.29, coverage=0.99)
    lamp = finding(CarPart.HOOD, D.LAMP_BROKEN, S.MODERATE, confidence=0.22, coverage=0.94)
    lines = build_estimate([dent, lamp], _pricing(inr_policy)).lines
    hood = [line for line in lines if line.part is CarPart.HOOD]
    # then the hood is repaired and refinished for the dent alone, the lamp named on its
    # line rather than priced as a second repair of the hood
    assert [line.operation for line in hood] == [Operation.REPAIR_AND_REFINISH]
    assert hood[0].labour_hours == inr_policy.rules.repair_hours[S.MINOR].hours(0.99)
    assert "also covers moderate lamp broken" in hood[0].description
    assert "the hood cannot have" in hood[0].description
    # and alone on the hood, the same finding is still priced by the catch-all rule
    alone = build_estimate([lamp], _pricing(inr_policy)).lines
    assert [(line.operation, line.rule_id) for line in alone if line.part is CarPart.HOOD] == [
        (Operation.REPAIR, "OTHER-DAMAGE-REPAIR")
    ]


def test_a_part_replaced_for_its_repair_cost_is_not_named_for_a_stray(inr_policy) -> None:
    # given the crash claim's hood, whose dent and scratch over all of it cost more to repair
    # than a new hood (here nearly free), and a sure, severe broken lamp the photos put on
    # the hood too
    dent = finding(CarPart.HOOD, D.DENT, S.MODERATE, confidence=0.28, coverage=1.0)
    scratch = finding(CarPart.HOOD, D.SCRATCH, S.MODERATE, confidence=0.24, coverage=1.0)
    guess = finding(CarPart.HOOD, D.BROKEN_PART, S.SEVERE, confidence=0.05, coverage=1.0)
    lamp = finding(CarPart.HOOD, D.LAMP_BROKEN, S.SEVERE, confidence=0.9, coverage=1.0)
    lines = build_estimate([dent, guess, scratch, lamp], _cheap(inr_policy, CarPart.HOOD)).lines
    # then the new hood is for the dent, not for the lamp the estimate does not price
    replaced = lines[0]
    assert replaced.operation is Operation.REPLACE
    assert replaced.rule_id == inr_policy.rules.economic_replace.id
    assert "for moderate dent" in replaced.description
    assert "also covers severe lamp broken" in replaced.description


def test_finding_without_part_is_not_priced(inr_policy) -> None:
    estimate = build_estimate([finding(None, D.DENT, S.SEVERE)], _pricing(inr_policy))
    assert estimate.lines == ()
    assert estimate.total == 0


def test_economic_replace_when_repair_costs_more_than_a_new_part(inr_policy) -> None:
    # given a catalog where a new trunk lid is nearly free
    pricing = _cheap(inr_policy, CarPart.TRUNK)
    dent = finding(CarPart.TRUNK, D.DENT, S.MODERATE, coverage=0.5)
    # when estimated
    lines = build_estimate([dent], pricing).lines
    # then the trunk is replaced under the economic rule, which it is not at normal prices
    assert lines[0].operation is Operation.REPLACE
    assert lines[0].rule_id == inr_policy.rules.economic_replace.id
    normal = build_estimate([dent], _pricing(inr_policy)).lines
    assert normal[0].operation is Operation.REPAIR_AND_REFINISH


def test_a_weak_broken_guess_beside_a_sure_dent_does_not_replace_the_part(inr_policy) -> None:
    # given the crash claim's hood: a sure moderate dent and a weak "severe broken part"
    # guess (the verifier's kind of finding, 0.05 beside 0.23)
    dent = finding(CarPart.HOOD, D.DENT, S.MODERATE, confidence=0.23, coverage=0.2)
    guess = finding(CarPart.HOOD, D.BROKEN_PART, S.SEVERE, confidence=0.05, coverage=0.1)
    # when estimated
    lines = build_estimate([dent, guess], _pricing(inr_policy)).lines
    hood = [line for line in lines if line.part is CarPart.HOOD]
    # then the hood is repaired, not replaced: the guess is priced as the repair its
    # damage would need and says an adjuster decides on a replacement
    assert Operation.REPLACE not in {line.operation for line in hood}
    assert {line.rule_id for line in hood} == {"PANEL-REPAIR-REFINISH"}
    guessed = [line for line in hood if "broken part" in line.description]
    assert len(guessed) == 1 and "an adjuster decides" in guessed[0].description
    assert guessed[0].labour_hours == inr_policy.rules.repair_hours[S.SEVERE].hours(0.1)


def test_a_part_replaced_for_its_repair_cost_is_named_for_a_sure_finding(inr_policy) -> None:
    # given the crash claim's hood: a sure dent and a weak "severe broken part" guess, both
    # over most of the hood, whose repair costs more than a new hood (here nearly free)
    dent = finding(CarPart.HOOD, D.DENT, S.MODERATE, confidence=0.28, coverage=1.0)
    guess = finding(CarPart.HOOD, D.BROKEN_PART, S.SEVERE, confidence=0.05, coverage=1.0)
    scratch = finding(CarPart.HOOD, D.SCRATCH, S.MODERATE, confidence=0.24, coverage=1.0)
    lines = build_estimate([dent, guess, scratch], _cheap(inr_policy, CarPart.HOOD)).lines
    # then the hood is replaced under the economic rule, the new hood being for the dent
    # (the most severe of the findings sure enough to decide), the guess only absorbed
    replaced = lines[0]
    assert replaced.operation is Operation.REPLACE
    assert replaced.rule_id == inr_policy.rules.economic_replace.id
    assert "for moderate dent" in replaced.description
    assert "also covers severe broken part" in replaced.description
    assert replaced.confidence == 0.28


def test_a_credible_broken_part_still_replaces(inr_policy) -> None:
    # given a broken-part finding at exactly half the confidence of the part's surest
    dent = finding(CarPart.HOOD, D.DENT, S.MODERATE, confidence=0.4, coverage=0.2)
    broken = finding(CarPart.HOOD, D.BROKEN_PART, S.SEVERE, confidence=0.2, coverage=0.1)
    # when estimated, then it is credible enough to decide: the hood is replaced
    lines = build_estimate([dent, broken], _pricing(inr_policy)).lines
    assert lines[0].operation is Operation.REPLACE
    assert lines[0].rule_id == "BROKEN-PART-REPLACE"
    assert "an adjuster decides" not in lines[0].description


def test_a_weak_lamp_guess_alone_with_its_own_kind_stays_a_replacement(inr_policy) -> None:
    # given one weak broken-lamp finding and nothing surer on the lamp
    lamp = finding(CarPart.FRONT_LEFT_LIGHT, D.LAMP_BROKEN, S.MODERATE, confidence=0.05)
    # then it is the part's surest finding and its rule decides
    lines = build_estimate([lamp], _pricing(inr_policy)).lines
    assert lines[0].operation is Operation.REPLACE


def test_a_repaired_panel_that_would_be_blended_is_replaced_when_that_costs_less(
    inr_policy,
) -> None:
    # given a bumper whose damage the rules repair without paint (broken glass and a broken
    # lamp on a panel: the catch-all), next to a hood that is repainted, so the bumper would
    # also get a blend line; and a new bumper priced between the repair alone and the
    # repair with its blend
    def bumper(kind, severity, confidence, coverage):
        return finding(CarPart.FRONT_BUMPER, kind, severity, confidence, coverage)

    on_bumper = [
        bumper(D.GLASS_SHATTER, S.MODERATE, 0.2, 1.0),
        bumper(D.LAMP_BROKEN, S.MINOR, 1.0, 0.2),
    ]
    hood = finding(CarPart.HOOD, D.SCRATCH, S.SEVERE, 0.5, 0.0)
    findings = [*on_bumper, hood]

    def subtotal(lines, operations=None) -> Decimal:
        return sum(
            (
                x.total
                for x in lines
                if x.part is CarPart.FRONT_BUMPER
                and (operations is None or x.operation in operations)
            ),
            Decimal(0),
        )

    repair = subtotal(build_estimate(on_bumper, _pricing(inr_policy)).lines)
    blended = build_estimate(findings, _pricing(inr_policy)).lines
    blend = subtotal(blended, {Operation.BLEND})
    assert blend > 0
    replaced_at_1 = subtotal(
        build_estimate(on_bumper, _cheap(inr_policy, CarPart.FRONT_BUMPER)).lines
    )
    price = repair + blend / 2 - (replaced_at_1 - 1)
    entry = inr_policy.catalog.parts[CarPart.FRONT_BUMPER].model_copy(
        update={"prices": dict.fromkeys(VehicleClass, price)}
    )
    catalog = inr_policy.catalog.model_copy(
        update={"parts": {**inr_policy.catalog.parts, CarPart.FRONT_BUMPER: entry}}
    )
    pricing = Pricing(
        catalog, inr_policy.rules, inr_policy.region, ClassDecision(VehicleClass.MIDSIZE, "test")
    )
    # when estimated, alone and beside the repainted hood
    alone = build_estimate(on_bumper, pricing).lines
    lines = build_estimate(findings, pricing).lines
    # then alone the bumper is repaired; beside the hood, repair plus blend costs more than a
    # new bumper: it is replaced under the economic rule, and gets no blend
    assert alone[0].operation is Operation.REPAIR
    bumper_lines = [line for line in lines if line.part is CarPart.FRONT_BUMPER]
    assert bumper_lines[0].operation is Operation.REPLACE
    assert {line.rule_id for line in bumper_lines} == {inr_policy.rules.economic_replace.id}
    assert Operation.BLEND not in {line.operation for line in bumper_lines}
    # and the broken glass growing worse (which tips repair alone over a new part) does
    # not make the estimate cheaper
    worse = [bumper(D.GLASS_SHATTER, S.SEVERE, 0.2, 1.0), *findings[1:]]
    assert build_estimate(worse, pricing).total >= build_estimate(findings, pricing).total


def test_region_prices_apply(usd_policy) -> None:
    dent = finding(CarPart.HOOD, D.DENT, S.SEVERE, coverage=0.8)
    base = build_estimate([dent], _pricing(usd_policy))
    metro = build_estimate(
        [dent],
        Pricing(
            usd_policy.catalog,
            usd_policy.rules,
            "high_cost_metro",
            ClassDecision(VehicleClass.MIDSIZE, "test"),
        ),
    )
    assert metro.lines[0].parts_cost > base.lines[0].parts_cost
    assert metro.total > base.total
    assert metro.region == "high_cost_metro"


@pytest.mark.parametrize(
    ("part", "rule_id"),
    [
        (CarPart.FRONT_LEFT_FENDER, "PANEL-REPAIR-REFINISH"),
        (CarPart.FRONT_RIGHT_FENDER, "PANEL-REPAIR-REFINISH"),
        (CarPart.BACK_LEFT_QUARTER_PANEL, "QUARTER-PANEL-REPAIR"),
        (CarPart.BACK_RIGHT_QUARTER_PANEL, "QUARTER-PANEL-REPAIR"),
    ],
)
def test_a_dented_fender_is_repaired_and_refinished_at_its_catalog_price(
    inr_policy: AssessmentPolicy, part: CarPart, rule_id: str
) -> None:
    # given a moderate dent placed on a fender or quarter panel (no mask: coverage unknown)
    estimate = build_estimate(
        [finding(part, D.DENT, S.MODERATE, coverage=0.0)], _pricing(inr_policy)
    )
    # then it is priced on that part, repaired and refinished, not left for the adjuster
    own = [line for line in estimate.lines if line.part is part]
    assert [line.rule_id for line in own] == [rule_id] * len(own)
    assert own and all(line.total > 0 for line in own)
    refinish = sum((line.paint_hours for line in own), Decimal(0))
    assert refinish == Decimal(str(inr_policy.catalog.parts[part].refinish_hours))


def test_a_broken_front_fender_is_replaced_and_a_broken_quarter_panel_repaired(
    inr_policy: AssessmentPolicy,
) -> None:
    # given the same severe broken part on a bolt-on fender and on a welded quarter panel
    def lines(part: CarPart) -> list:
        estimate = build_estimate([finding(part, D.BROKEN_PART, S.SEVERE)], _pricing(inr_policy))
        return [line for line in estimate.lines if line.part is part]

    # then the fender is replaced, as any broken part is
    fender = lines(CarPart.FRONT_LEFT_FENDER)
    assert Operation.REPLACE in {line.operation for line in fender}
    # and the quarter panel, which only cutting out and welding in would replace, is quoted
    # as repair and refinish, the adjuster's to override
    quarter = lines(CarPart.BACK_LEFT_QUARTER_PANEL)
    assert {line.rule_id for line in quarter} == {"QUARTER-PANEL-REPAIR"}
    assert Operation.REPLACE not in {line.operation for line in quarter}
    assert sum((line.total for line in quarter), Decimal(0)) > 0


def _cut_off(f: PartFinding) -> PartFinding:
    return dataclasses.replace(f, coverage_cut_off=True)


def test_a_part_cut_off_by_the_photos_is_not_replaced_for_its_coverage(
    inr_policy: AssessmentPolicy,
) -> None:
    pricing = _pricing(inr_policy)
    severe = finding(CarPart.HOOD, D.DENT, S.SEVERE, coverage=0.8)
    # given a severe dent over 80% of the hood, seen whole, and the same measured only on
    # close-ups that cut the hood off
    whole = build_estimate([severe], pricing)
    cut = build_estimate([_cut_off(severe)], pricing)
    # then seen whole it is replaced; cut off it is repaired and refinished, the adjuster
    # told why and that the share is of what the photos show
    assert whole.lines[0].operation is Operation.REPLACE
    (line,) = [line for line in cut.lines if line.part is CarPart.HOOD]
    assert line.operation is Operation.REPAIR_AND_REFINISH
    assert line.rule_id == "PANEL-REPAIR-REFINISH"
    assert "80% of what the photos show of it" in line.description
    assert "the photos cut the part off" in line.description
    assert cut.total < whole.total


@pytest.mark.parametrize(
    ("part", "damage", "severity", "rule_id"),
    [
        (CarPart.HOOD, D.BROKEN_PART, S.SEVERE, "BROKEN-PART-REPLACE"),
        (CarPart.LEFT_MIRROR, D.DENT, S.SEVERE, "MIRROR-REPLACE"),
        (CarPart.FRONT_LEFT_LIGHT, D.LAMP_BROKEN, S.MINOR, "GLASS-LAMP-BREAK-REPLACE"),
    ],
)
def test_a_replacement_that_does_not_stand_on_coverage_holds_on_a_cut_off_part(
    inr_policy: AssessmentPolicy,
    part: CarPart,
    damage: DamageType,
    severity: Severity,
    rule_id: str,
) -> None:
    # given damage whose replacement is decided by what it is, not how much of the part it
    # covers, measured on photos that cut the part off
    cut = _cut_off(finding(part, damage, severity, coverage=0.9))
    # when priced
    lines = build_estimate([cut], _pricing(inr_policy)).lines
    # then the part is still replaced
    assert (lines[0].operation, lines[0].rule_id) == (Operation.REPLACE, rule_id)


def test_a_new_part_cheaper_than_a_repair_of_a_cut_off_share_is_a_cap_not_a_decision(
    inr_policy: AssessmentPolicy,
) -> None:
    from cdat.triage import triage

    pricing = _cheap(inr_policy, CarPart.FRONT_LEFT_DOOR, VehicleClass.ECONOMY)
    # given a severe dent and a moderate scratch filling close-ups that cut an economy
    # car's door off, and a new door nearly free: repairing what they show costs more
    shown = [
        _cut_off(finding(CarPart.FRONT_LEFT_DOOR, D.DENT, S.SEVERE, 0.95, coverage=1.0)),
        _cut_off(finding(CarPart.FRONT_LEFT_DOOR, D.SCRATCH, S.MODERATE, 0.9, coverage=1.0)),
    ]
    # when priced and triaged
    estimate = build_estimate(shown, pricing)
    result = triage([], shown, estimate, None, [], inr_policy.triage)
    # then the new door caps the price, each of its lines left for an adjuster to decide
    door = [line for line in estimate.lines if line.part is CarPart.FRONT_LEFT_DOOR]
    assert door[0].operation is Operation.REPLACE and door[0].rule_id == "ECONOMIC-REPLACE"
    assert all(line.repair_or_replace_undecided for line in door)
    assert "an adjuster decides repair or replace" in door[0].description
    # once for the door, however many of its lines wait on the decision
    assert [r.code for r in result.reasons].count("replacement_undecided") == 1
    # and the same seen whole is replaced for its coverage, decided
    whole = build_estimate([dataclasses.replace(f, coverage_cut_off=False) for f in shown], pricing)
    assert not any(line.repair_or_replace_undecided for line in whole.lines)
    assert whole.lines[0].rule_id == "SEVERE-COVERAGE-REPLACE"


def test_a_damage_on_a_part_no_photo_outlines_is_not_described_as_covering_none(
    inr_policy,
) -> None:
    pricing = _pricing(inr_policy)
    # given a dent on a fender no photo outlines (the part-family stage placed it), and a
    # small dent on a door the part model outlined
    fender = dataclasses.replace(
        finding(CarPart.FRONT_LEFT_FENDER, D.DENT, S.MINOR, coverage=0.0), part_outlined=False
    )
    door = finding(CarPart.FRONT_LEFT_DOOR, D.DENT, S.MINOR, coverage=0.004)
    # when they are priced
    estimate = build_estimate([fender, door], pricing)
    # then the fender's lines say its size was not measured, not that it covers 0%
    fender_text = [ln.description for ln in estimate.lines if ln.part is fender.part]
    door_text = [ln.description for ln in estimate.lines if ln.part is door.part]
    assert fender_text and all("of unmeasured size" in text for text in fender_text)
    assert not any("covering" in text for text in fender_text)
    # and the door's measured share still reads as one, however small
    assert door_text and all("covering 0%" in text for text in door_text)
