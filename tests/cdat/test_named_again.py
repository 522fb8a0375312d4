"""One damage the model names twice (a dent and, over it, a scratch) is one repair."""

from __future__ import annotations

from decimal import Decimal

from cdat.assessment import Operation
from cdat.corrections import Corrections
from cdat.findings import Box, DamageInstance, PhotoAnalysis
from cdat.merge import merge_findings
from cdat.pipeline import AssessmentPolicy, assess_claim
from cdat.taxonomy import CarPart, DamageType, Severity
from tests.cdat.conftest import context, meta, photo

DOOR, HOOD = CarPart.FRONT_LEFT_DOOR, CarPart.HOOD
DENT, SCRATCH = DamageType.DENT, DamageType.SCRATCH


def square(x: float, y: float, side: float) -> tuple[tuple[float, float], ...]:
    return ((x, y), (x + side, y), (x + side, y + side), (x, y + side))


def damage(
    kind: DamageType,
    confidence: float,
    outline: tuple[tuple[float, float], ...],
    part: CarPart = DOOR,
    review: str = "",
) -> DamageInstance:
    xs, ys = [x for x, _ in outline], [y for _, y in outline]
    box = Box(min(xs), min(ys), max(xs), max(ys))
    return DamageInstance(kind, Severity.MODERATE, confidence, box, outline, part, 0.2, review)


def finding_of(photos: list[PhotoAnalysis], kind: DamageType, part: CarPart = DOOR):
    return next(f for f in merge_findings(photos) if f.damage_type is kind and f.part is part)


def test_a_scratch_inside_a_surer_dent_names_that_dent_again() -> None:
    # given a dent and, mostly inside it, a less sure scratch on the same door
    seen = photo(
        damages=(damage(DENT, 0.6, square(0, 0, 100)), damage(SCRATCH, 0.3, square(10, 10, 60)))
    )
    # then the scratch is the dent named again, and the dent is not
    assert finding_of([seen], SCRATCH).named_again
    assert not finding_of([seen], DENT).named_again


def test_damages_apart_on_other_parts_or_reviewed_are_separate() -> None:
    dent = damage(DENT, 0.6, square(0, 0, 100))
    # given a scratch beside the dent (a fifth of it inside)
    beside = photo(damages=(dent, damage(SCRATCH, 0.3, square(80, 0, 100))))
    # and one over it but on another part
    elsewhere = photo(damages=(dent, damage(SCRATCH, 0.3, square(10, 10, 60), HOOD)))
    # and one over it that an adjuster confirmed
    confirmed = photo(damages=(dent, damage(SCRATCH, 0.3, square(10, 10, 60), review="confirmed")))
    # and a less sure dent inside a surer scratch (the dent is the second name there)
    small_dent = damage(DENT, 0.6, square(10, 10, 60))
    surer_scratch = photo(damages=(small_dent, damage(SCRATCH, 0.9, square(0, 0, 100))))
    # then each is a damage of its own, except the less sure dent
    assert not finding_of([beside], SCRATCH).named_again
    assert not finding_of([elsewhere], SCRATCH, HOOD).named_again
    assert not finding_of([confirmed], SCRATCH).named_again
    assert not finding_of([surer_scratch], SCRATCH).named_again
    assert finding_of([surer_scratch], DENT).named_again


def test_a_finding_seen_alone_in_another_photo_is_its_own_damage() -> None:
    # given the scratch inside the dent in one photo, and on its own in a second
    first = photo(
        "p1",
        damages=(damage(DENT, 0.6, square(0, 0, 100)), damage(SCRATCH, 0.3, square(10, 10, 60))),
    )
    second = photo("p2", damages=(damage(SCRATCH, 0.5, square(300, 300, 60)),))
    # then the claim's scratch is a damage of its own
    assert not finding_of([first, second], SCRATCH).named_again


def _assessed(policy: AssessmentPolicy, *damages: DamageInstance):
    seen = photo("p1", damages=damages)
    return assess_claim((seen,), Corrections(), context(photos=(meta("p1"),)), (), {}, policy)


def test_one_damage_named_twice_is_priced_as_one_repair(inr_policy: AssessmentPolicy) -> None:
    dent = damage(DENT, 0.6, square(0, 0, 100))
    # given a door dent, and the same dent also reported as a less sure scratch
    twice = _assessed(inr_policy, dent, damage(SCRATCH, 0.3, square(10, 10, 60)))
    once = _assessed(inr_policy, dent)
    # when both are priced
    assert twice.estimate is not None and once.estimate is not None
    door = [line for line in twice.estimate.lines if line.part is DOOR]
    # then the door has one repair line, which names the scratch, and costs what the dent alone does
    assert [line.operation for line in door] == [Operation.REPAIR_AND_REFINISH]
    assert "scratch" in door[0].description and "another name" in door[0].description
    assert twice.estimate.subtotal == once.estimate.subtotal
    # and the adjuster still sees both names among the findings
    assert {f.damage_type for f in twice.findings} == {DENT, SCRATCH}


def test_two_damages_apart_on_one_door_are_both_repaired(inr_policy: AssessmentPolicy) -> None:
    # given a dent and a scratch at two places on one door
    apart = _assessed(
        inr_policy, damage(DENT, 0.6, square(0, 0, 100)), damage(SCRATCH, 0.3, square(300, 0, 60))
    )
    once = _assessed(inr_policy, damage(DENT, 0.6, square(0, 0, 100)))
    # then each is repaired, and the claim costs more than the dent alone
    assert apart.estimate is not None and once.estimate is not None
    assert apart.estimate.subtotal > once.estimate.subtotal
    assert Decimal(0) < once.estimate.subtotal


def test_a_damage_outlined_again_inside_a_surer_one_of_its_type_is_grouped_under_it() -> None:
    from cdat.merge import outlined_again

    # given a dent, the same dent outlined smaller and less sure, a third outline inside both,
    # a dent beside it, a scratch inside it, one on the hood, and one an adjuster confirmed
    damages = (
        damage(DENT, 0.3, square(10, 10, 60)),
        damage(DENT, 0.6, square(0, 0, 100)),
        damage(DENT, 0.2, square(20, 20, 30)),
        damage(DENT, 0.5, square(80, 0, 100)),
        damage(SCRATCH, 0.4, square(10, 10, 60)),
        damage(DENT, 0.4, square(10, 10, 60), HOOD),
        damage(DENT, 0.1, square(10, 10, 60), review="confirmed"),
    )
    # then each outline inside the surest dent of the door is grouped under it, nothing else
    assert outlined_again(damages) == {0: 1, 2: 1}
    # and the surer outline of a pair is never grouped under the less sure one
    assert outlined_again((damages[1], damages[0])) == {1: 0}


def test_a_photos_repeats_are_each_grouped_under_the_damage_they_repeat() -> None:
    from cdat.merge import SeenAgain, seen_again

    # given a dent, a less sure scratch inside it (the dent named again), a scratch inside
    # that scratch (the scratch outlined again), a scratch beside the dent, one on the hood
    # and one an adjuster confirmed
    damages = (
        damage(DENT, 0.9, square(0, 0, 100)),
        damage(SCRATCH, 0.6, square(10, 10, 60)),
        damage(SCRATCH, 0.3, square(15, 15, 40)),
        damage(SCRATCH, 0.5, square(150, 0, 50)),
        damage(SCRATCH, 0.4, square(10, 10, 60), HOOD),
        damage(SCRATCH, 0.2, square(10, 10, 60), review="confirmed"),
    )
    # then the named scratch and its own outline are both grouped under the dent, each
    # saying how it repeats it, and nothing else is grouped
    assert seen_again(damages) == {1: SeenAgain(0, "name"), 2: SeenAgain(0, "outline")}


def test_a_damage_named_again_is_grouped_under_the_surer_one_holding_most_of_it() -> None:
    from cdat.merge import named_again_under

    # given a scratch over a sure dent and a less sure crack, which holds four times as
    # much of it as the dent
    damages = (
        damage(DENT, 0.9, square(0, 0, 30)),
        damage(DamageType.CRACK, 0.7, square(30, 0, 60)),
        damage(SCRATCH, 0.3, square(0, 0, 90)),
    )
    # then it is named again under the crack, which holds most of it
    assert named_again_under(damages) == {2: 1}


def test_one_damage_on_no_part_outlined_twice_asks_for_its_part_once(
    inr_policy: AssessmentPolicy,
) -> None:
    from cdat.merge import SeenAgain, seen_again

    # given a dent on no part, a less sure scratch mostly inside it (the dent again, under
    # another name), a less sure dent inside it (outlined again), and a scratch apart
    damages = (
        damage(DENT, 0.6, square(0, 0, 100), part=None),
        damage(SCRATCH, 0.3, square(10, 10, 60), part=None),
        damage(DENT, 0.2, square(20, 20, 40), part=None),
        damage(SCRATCH, 0.4, square(300, 0, 60), part=None),
    )
    # when the claim is assessed
    claim = _assessed(inr_policy, *damages)
    # then the two repeats are findings named again, and the photo's view groups them under the dent
    again = [(f.damage_type, f.evidence[0].damage_index) for f in claim.findings if f.named_again]
    assert sorted(again) == [(DENT, 2), (SCRATCH, 1)]
    assert seen_again(damages) == {1: SeenAgain(0, "name"), 2: SeenAgain(0, "outline")}
    # and the adjuster is asked for a part once for the dent and once for the scratch apart
    asked = [r.message for r in claim.triage.reasons if r.code == "unpriced_damage"]
    assert len(asked) == 2
    assert asked[0].startswith("moderate dent on no part") and "scratch" in asked[1]
    # and of the three under the bar a finding needs, only the scratch apart is named unsure:
    # the repeats are the dent, which passes it
    unsure = [r.message for r in claim.triage.reasons if r.code == "low_confidence"]
    assert [m.split(",")[0] for m in unsure] == ["moderate scratch on no part"]
    assert "confidence 0.40" in unsure[0]


def test_a_damage_on_no_part_inside_a_surer_one_on_a_part_still_asks_for_its_part(
    inr_policy: AssessmentPolicy,
) -> None:
    # given a door dent and, mostly inside it, a less sure scratch the photo puts on no part
    claim = _assessed(
        inr_policy,
        damage(DENT, 0.6, square(0, 0, 100)),
        damage(SCRATCH, 0.3, square(10, 10, 60), part=None),
    )
    # then the scratch is a damage of its own, to be placed by an adjuster
    scratch = next(f for f in claim.findings if f.part is None)
    assert not scratch.named_again
    assert [r.code for r in claim.triage.reasons].count("unpriced_damage") == 1
