"""Each triage reason fires when it should and only then."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

import pytest

from cdat.assessment import Estimate, FraudSignal, TotalLossCheck, TriageDecision
from cdat.findings import Evidence, QualityIssue
from cdat.taxonomy import CarPart, DamageType, Severity
from cdat.triage import REASON_CODES, triage
from tests.cdat.conftest import finding, photo, sedan_pricing


def _estimate(total: str = "5000.00", high: str | None = None) -> Estimate:
    t = Decimal(total)
    return Estimate("INR", (), t, Decimal("0.00"), t, t, Decimal(high or total))


def _total_loss(is_total: bool = False, threshold: str = "300000.00") -> TotalLossCheck:
    value = Decimal("400000.00")
    return TotalLossCheck(
        value, "stated", "default: percentage", is_total, "why", Decimal(0), Decimal(threshold)
    )


def _codes(inr_policy, **overrides) -> tuple[TriageDecision, list[str], int]:
    args = {
        "analyses": [photo()],
        "findings": [finding(confidence=0.95)],
        "estimate": _estimate(),
        "total_loss": _total_loss(),
        "signals": [],
        "policy": inr_policy.triage,
    }
    args.update(overrides)
    result = triage(**args)
    return result.decision, [r.code for r in result.reasons], result.priority


def test_clean_claim_goes_straight_through(inr_policy) -> None:
    decision, codes, priority = _codes(inr_policy)
    assert (decision, codes, priority) == (TriageDecision.STRAIGHT_THROUGH, [], 0)


def test_photo_quality_issue(inr_policy) -> None:
    issue = QualityIssue("blurry", "photo is blurred", "hold still", blocking=False)
    decision, codes, _ = _codes(inr_policy, analyses=[photo(quality_issues=(issue,))])
    assert decision is TriageDecision.NEEDS_REVIEW and codes == ["photo_quality"]


def test_no_photos(inr_policy) -> None:
    assert "no_photos" in _codes(inr_policy, analyses=[])[1]


def test_low_confidence_finding(inr_policy) -> None:
    threshold = inr_policy.triage.min_confidence
    assert _codes(inr_policy, findings=[finding(confidence=threshold - 0.01)])[1] == [
        "low_confidence"
    ]
    assert _codes(inr_policy, findings=[finding(confidence=threshold)])[1] == []


def test_unsure_findings_share_one_explanation_and_keep_their_own_confidence(
    inr_policy,
) -> None:
    from cdat.assessment import grouped_reasons

    bar = inr_policy.triage.min_confidence
    # given two findings under the confidence a finding needs to pass unreviewed
    unsure = [finding(confidence=0.13), finding(CarPart.TRUNK, confidence=0.2)]
    args = {"analyses": [photo()], "findings": unsure, "estimate": _estimate(),
            "total_loss": _total_loss(), "signals": [], "policy": inr_policy.triage}  # fmt: skip
    # when the claim is triaged and its reasons grouped
    (group,) = grouped_reasons(triage(**args).reasons)
    # then the bar is said once, and each finding is named with its own confidence
    assert group.code == "low_confidence"
    assert group.shared_explanation == f"under the {bar:.2f} a finding needs to pass unreviewed"
    assert [item.rsplit(", ", 1)[1] for item in group.items] == [
        "confidence 0.13",
        "confidence 0.20",
    ]


def test_damage_on_no_part_is_unpriced(inr_policy) -> None:
    codes = _codes(inr_policy, findings=[finding(None, DamageType.DENT, Severity.MINOR)])[1]
    assert codes == ["unpriced_damage"]


def test_unpriced_damage_reason_says_what_the_adjuster_must_do(inr_policy) -> None:
    # given a dent that landed on no part (fenders are priced since catalog 2025.2, so
    # only a panel nothing prices or a fender the photos cannot place stays unpriced)
    args = {
        "analyses": [photo()],
        "findings": [finding(None, DamageType.DENT, Severity.MINOR, confidence=0.95)],
        "estimate": _estimate(),
        "total_loss": _total_loss(),
        "signals": [],
        "policy": inr_policy.triage,
    }
    # when it is triaged
    (reason,) = triage(**args).reasons
    # then the reason does not call a fender unlisted, and asks for the part
    assert reason.code == "unpriced_damage"
    assert "(fender" not in reason.message
    assert "choose the part" in reason.message


def test_no_damage_found(inr_policy) -> None:
    assert _codes(inr_policy, findings=[])[1] == ["no_damage_found"]
    lenient = inr_policy.triage.model_copy(update={"review_when_no_damage": False})
    assert _codes(inr_policy, findings=[], policy=lenient)[1] == []


def test_over_the_straight_through_limit(inr_policy) -> None:
    limit = inr_policy.triage.straight_through_limit["INR"]
    assert _codes(inr_policy, estimate=_estimate(str(limit)))[1] == ["over_limit"]
    assert _codes(inr_policy, estimate=_estimate(str(limit - 1)))[1] == []


def test_total_loss_and_near_total_loss(inr_policy) -> None:
    assert _codes(inr_policy, total_loss=_total_loss(True))[1] == ["total_loss"]
    near = _estimate("5000.00", high="300000.00")
    assert _codes(inr_policy, estimate=near)[1] == ["near_total_loss"]
    assert _codes(inr_policy, estimate=replace(near, high=Decimal("299999.99")))[1] == []


def test_fraud_signal_forces_review_at_its_signals_weight(inr_policy) -> None:
    signal = FraudSignal("captured_before_loss", "taken before the loss", "p1", {})
    _decision, codes, priority = _codes(inr_policy, signals=[signal])
    assert codes == ["fraud_signal"]
    assert priority == inr_policy.triage.fraud_weights["captured_before_loss"]


def _signal(code: str) -> FraudSignal:
    return FraudSignal(code, code.replace("_", " "), "p1", {})


def test_priority_ranks_a_reused_photo_total_loss_and_large_estimate_above_a_missing_time(
    inr_policy,
) -> None:
    # given a claim whose only oddity is a photo without capture time (a messaging app)
    _, _, routine = _codes(inr_policy, signals=[_signal("capture_time_missing")])
    # when it is ranked against claims with a reused photo, a total loss, a large estimate
    reused = _codes(inr_policy, signals=[_signal("duplicate_photo_other_claim")])[2]
    wreck = _codes(inr_policy, total_loss=_total_loss(True))[2]
    limit = inr_policy.triage.straight_through_limit["INR"]
    large = _codes(inr_policy, estimate=_estimate(str(limit)))[2]
    # then each of them is reviewed first, the reused photo before all
    assert routine < large and routine < wreck and routine < reused
    assert reused > wreck


def test_every_reason_carries_its_weight_heaviest_first(inr_policy) -> None:
    result = triage(
        [photo()],
        [finding(confidence=0.95)],
        _estimate(),
        _total_loss(True),
        [_signal("capture_time_missing")],
        inr_policy.triage,
    )
    weights = [(r.code, r.weight) for r in result.reasons]
    assert weights == [("total_loss", 4), ("fraud_signal", 1)]
    assert result.priority == 4


def test_unknown_fraud_weight_codes_are_refused(inr_policy) -> None:
    with pytest.raises(ValueError, match="unknown fraud signal codes: made_up"):
        inr_policy.triage.model_validate(
            {**inr_policy.triage.model_dump(), "fraud_weights": {"made_up": 2}}
        )


def test_every_reason_listed_and_priority_is_the_highest(inr_policy) -> None:
    issue = QualityIssue("dark", "too dark", "use light")
    _decision, codes, priority = _codes(
        inr_policy,
        analyses=[photo(quality_issues=(issue,))],
        findings=[finding(CarPart.HOOD, confidence=0.1), finding(None)],
        total_loss=_total_loss(True),
    )
    assert set(codes) == {"photo_quality", "low_confidence", "unpriced_damage", "total_loss"}
    assert priority == max(inr_policy.triage.priorities[c] for c in codes)
    assert set(inr_policy.triage.priorities) == set(REASON_CODES)


NO_VEHICLE = QualityIssue("no_vehicle", "No vehicle could be seen.", "photograph it", True)
TOO_SMALL = QualityIssue("too_small", "The photo is 10x10.", "send the original", True)


def test_a_claim_whose_photos_show_no_vehicle_needs_review_first(inr_policy) -> None:
    # given a claim of two photos refused as showing no vehicle and one unusable photo
    analyses = [
        photo("a", quality_issues=(NO_VEHICLE,)),
        photo("b", quality_issues=(NO_VEHICLE,)),
        photo("c", quality_issues=(TOO_SMALL,)),
    ]
    # when it is triaged with nothing found on it
    decision, codes, priority = _codes(inr_policy, analyses=analyses, findings=[], estimate=None)
    # then it needs review, the no_vehicle reason leading, above photo quality
    assert decision is TriageDecision.NEEDS_REVIEW and codes[0] == "no_vehicle"
    assert priority == inr_policy.triage.priorities["no_vehicle"] == 3
    assert (
        "2 of 3 refused"
        in triage(analyses, [], None, None, [], inr_policy.triage).reasons[0].message
    )


def test_one_photo_showing_a_vehicle_is_enough_for_no_no_vehicle_reason(inr_policy) -> None:
    analyses = [photo("a", quality_issues=(NO_VEHICLE,)), photo("b")]
    codes = _codes(inr_policy, analyses=analyses)[1]
    assert "no_vehicle" not in codes and codes == ["photo_quality"]


def test_a_policy_written_before_the_no_vehicle_reason_still_loads(inr_policy) -> None:
    # given an insurer's triage policy whose priorities predate no_vehicle
    raw = inr_policy.triage.model_dump()
    del raw["priorities"]["no_vehicle"]
    # when it is read, then the reason weighs its shipped weight
    assert inr_policy.triage.model_validate(raw).priorities["no_vehicle"] == 3


@pytest.mark.parametrize(
    ("damage", "part"),
    [
        (DamageType.LAMP_BROKEN, CarPart.FRONT_BUMPER),
        (DamageType.GLASS_SHATTER, CarPart.FRONT_LEFT_DOOR),
        (DamageType.TIRE_FLAT, CarPart.HOOD),
    ],
)
def test_damage_that_cannot_be_on_its_part_needs_review(inr_policy, damage, part) -> None:
    # given a sure finding whose type cannot occur on the part it was placed on
    found = finding(part=part, damage=damage, confidence=0.95)
    # when the claim is triaged
    decision, codes, priority = _codes(inr_policy, findings=[found])
    # then an adjuster sees why: the part or the type is wrong
    assert decision is TriageDecision.NEEDS_REVIEW and codes == ["damage_part_mismatch"]
    assert priority == inr_policy.triage.priorities["damage_part_mismatch"] == 2


def test_a_stray_damage_beside_damage_its_part_can_have_is_said_to_be_unpriced(
    inr_policy,
) -> None:
    # given a hood with a dent, and a broken lamp the photos put on the hood too
    dent = finding(CarPart.HOOD, DamageType.DENT, confidence=0.95)
    lamp = finding(CarPart.HOOD, DamageType.LAMP_BROKEN, confidence=0.95)
    args = {"analyses": [photo()], "estimate": _estimate(), "total_loss": _total_loss(),
            "signals": [], "policy": inr_policy.triage}  # fmt: skip
    # when triaged with and without the dent
    (beside,) = triage(findings=[dent, lamp], **args).reasons
    (alone,) = triage(findings=[lamp], **args).reasons
    # then both go to an adjuster, and each says what the estimate did with the lamp
    assert beside.code == alone.code == "damage_part_mismatch"
    assert "not priced beside the damage the part can have" in beside.message
    assert "and its price with it" in alone.message


@pytest.mark.parametrize(
    ("damage", "part"),
    [
        (DamageType.LAMP_BROKEN, CarPart.FRONT_LEFT_LIGHT),
        (DamageType.GLASS_SHATTER, CarPart.FRONT_GLASS),
        (DamageType.GLASS_SHATTER, CarPart.BACK_RIGHT_LIGHT),  # a lamp's lens is glass
        (DamageType.TIRE_FLAT, CarPart.WHEEL),
        (DamageType.DENT, CarPart.HOOD),
    ],
)
def test_damage_that_fits_its_part_is_no_mismatch(inr_policy, damage, part) -> None:
    found = finding(part=part, damage=damage, confidence=0.95)
    assert "damage_part_mismatch" not in _codes(inr_policy, findings=[found])[1]


@pytest.mark.parametrize(
    "code", ["damage_part_mismatch", "replacement_undecided", "severity_to_confirm"]
)
def test_a_policy_written_before_a_reason_was_added_still_loads(inr_policy, code: str) -> None:
    raw = inr_policy.triage.model_dump()
    del raw["priorities"][code]
    assert inr_policy.triage.model_validate(raw).priorities[code] == 2


def test_a_replacement_the_finding_cannot_decide_goes_to_an_adjuster(inr_policy) -> None:
    from cdat.catalog import ClassDecision, VehicleClass
    from cdat.estimate import build_estimate
    from cdat.pricing import Pricing

    pricing = Pricing(
        inr_policy.catalog,
        inr_policy.rules,
        inr_policy.region,
        ClassDecision(VehicleClass.ECONOMY, "test"),
    )
    # given a sure severe dent over 40% of the hood, seen whole, and the same measured only
    # on close-ups that cut the hood off
    whole = finding(CarPart.HOOD, DamageType.DENT, Severity.SEVERE, 0.95, coverage=0.4)
    cut = replace(whole, coverage_cut_off=True)
    # when each claim is triaged with its estimate
    _, seen_whole, _ = _codes(
        inr_policy, findings=[whole], estimate=build_estimate([whole], pricing)
    )
    decision, codes, _ = _codes(inr_policy, findings=[cut], estimate=build_estimate([cut], pricing))
    # then only the cut-off one waits for an adjuster to decide the replacement
    assert "replacement_undecided" not in seen_whole
    assert decision is TriageDecision.NEEDS_REVIEW and "replacement_undecided" in codes


def test_a_severity_read_only_on_close_ups_goes_to_an_adjuster(inr_policy) -> None:
    # given a sure door dent seen on one photo whose severity the close-up stage read
    close = photo("p1", severity_read_close_up=True)
    sure = finding(confidence=0.95)
    decision, codes, _ = _codes(inr_policy, analyses=[close], findings=[sure])
    # then an adjuster confirms how severe it is
    assert decision is TriageDecision.NEEDS_REVIEW and codes == ["severity_to_confirm"]
    # and seen on a photo read whole too, it goes straight through
    both = replace(sure, evidence=(*sure.evidence, Evidence("p2", 0.95, 0)))
    whole = photo("p2", phash="f0f0f0f0f0f0f0f0")
    assert _codes(inr_policy, analyses=[close, whole], findings=[both])[0] is (
        TriageDecision.STRAIGHT_THROUGH
    )


def test_a_reason_groups_explanation_is_shared_only_where_every_reason_gives_it() -> None:
    from cdat.assessment import Reason, grouped_reasons

    # given reasons that name a finding and explain it alike, differently, or not at all
    alike = [Reason("a", "dent on hood: why"), Reason("a", "dent on trunk: why")]
    unalike = [Reason("b", "dent on hood: 0.1 < 0.6"), Reason("b", "dent on trunk: 0.2 < 0.6")]
    unnamed = [Reason("c", "photo 1 has no time"), Reason("c", "photo 2 has no time")]
    single = [Reason("d", "dent on hood: why")]
    # when they are grouped by code
    groups = {g.code: g for g in grouped_reasons([*alike, *unalike, *unnamed, *single])}
    # then only the alike ones share their explanation, and list what each names
    assert groups["a"].shared_explanation == "why"
    assert groups["a"].items == ("dent on hood", "dent on trunk")
    # and the rest keep their whole messages
    for code, given in (("b", unalike), ("c", unnamed), ("d", single)):
        assert groups[code].shared_explanation is None
        assert groups[code].items == tuple(r.message for r in given)


def test_no_damage_on_whole_car_photos_alone_asks_the_adjuster_for_close_ups(inr_policy) -> None:
    # given a claim whose photos all show the whole car, as the gate read them, and no damage
    whole = [photo(whole_car_view_probability=0.9), photo(whole_car_view_probability=0.6)]
    result = triage(whole, [], None, None, [], inr_policy.triage)
    # then its no-damage reason says so, and what to ask for
    (reason,) = result.reasons
    assert reason.code == "no_damage_found"
    assert "all 2 photos are of the whole car" in reason.message and "close-up" in reason.message
    # and one such photo alone is named as one
    (alone,) = triage(whole[:1], [], None, None, [], inr_policy.triage).reasons
    assert "the one photo is of the whole car" in alone.message
    # and with any usable close-up, or a photo the gate did not read, it says no more
    blurry = QualityIssue("blurry", "photo is blurred", "hold still", blocking=True)
    for mixed in (
        [*whole, photo(whole_car_view_probability=0.2)],
        [*whole, photo()],
    ):
        (reason,) = triage(mixed, [], None, None, [], inr_policy.triage).reasons
        assert reason.message == "no damage was found in the photos"
    # but an unusable close-up beside them does not count
    unusable = [*whole, photo(whole_car_view_probability=0.2, quality_issues=(blurry,))]
    reasons = {
        r.code: r.message for r in triage(unusable, [], None, None, [], inr_policy.triage).reasons
    }
    assert "photo_quality" in reasons
    assert "all 2 photos are of the whole car" in reasons["no_damage_found"]


def test_a_stray_that_names_a_surer_damage_again_asks_nothing_of_an_adjuster(inr_policy) -> None:
    from cdat.estimate import build_estimate

    # given a hood with a dent, and a broken lamp lying inside it (the dent named again),
    # beside a broken lamp elsewhere on the hood that names nothing again
    dent = finding(CarPart.HOOD, DamageType.DENT, confidence=0.95)
    again = replace(finding(CarPart.HOOD, DamageType.LAMP_BROKEN, confidence=0.4), named_again=True)
    args = {"analyses": [photo()], "estimate": _estimate(), "total_loss": _total_loss(),
            "signals": [], "policy": inr_policy.triage}  # fmt: skip
    # when triaged, then the lamp named again gives no mismatch to resolve and no doubt of its
    # own (its confidence is the other name's): it is the dent, sure enough to pass
    codes = [r.code for r in triage(findings=[dent, again], **args).reasons]
    assert codes == []
    # and the estimate says so where it lists it
    lines = build_estimate([dent, again], sedan_pricing(inr_policy)).lines
    text = " ".join(line.description for line in lines)
    assert "lamp broken" in text and "(the same damage under another name)" in text
    assert "says where it belongs" not in text
    # and a broken lamp that names nothing again still does
    stray = finding(CarPart.HOOD, DamageType.LAMP_BROKEN, confidence=0.95)
    (reason,) = triage(findings=[dent, stray], **args).reasons
    assert reason.code == "damage_part_mismatch"


def test_a_damage_named_again_on_a_close_up_asks_its_severity_once(inr_policy) -> None:
    # given a close-up whose severity the close-up stage read, showing a sure dent on the door
    # and a scratch inside it (the dent named again)
    close_up = photo(severity_read_close_up=True)
    dent = finding(CarPart.FRONT_LEFT_DOOR, DamageType.DENT, confidence=0.95)
    again = replace(finding(CarPart.FRONT_LEFT_DOOR, DamageType.SCRATCH), named_again=True)
    # when triaged
    reasons = triage([close_up], [dent, again], _estimate(), _total_loss(), [],
                     inr_policy.triage).reasons  # fmt: skip
    # then the dent's severity is asked once, under the dent's name
    assert [(r.code, r.message.split(":")[0]) for r in reasons] == [
        ("severity_to_confirm", "moderate dent on front_left_door")
    ]
