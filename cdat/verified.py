"""A second look at each detected damage: is it damage at all?

The damage model finds most labelled damage only well under its served threshold (on val, at
0.02 it finds 0.91 of car-parts-damage regions against 0.71 at 0.1), but there it also
reports reflections, lettering and badges on intact cars. The damage verifier (a classifier
on the crop around each detection, with its score, size and the view it is in:
inference/damage_verifier.py) tells the two apart better than the score alone.

`VerifierRule` says what is kept: every damage the model's own threshold (`base_conf`) and
whole-car rule keep, unless the verifier gives it less than `min_base_probability`; and, of
the damages below that, those the verifier gives at least `min_probability` and whose box
overlaps no surer kept damage at an IoU above `max_overlap` (the verifier is there to add
damage the threshold missed, not another name for damage already reported: on one crash
close-up the model's low scores gave fifteen overlapping guesses at one front end). On a
whole-car view (`cdat/whole_car.py`) damage added under the threshold needs at least
`whole_car_probability` too: the whole-car rule asks more of what the threshold keeps there,
and an intact car seen whole is where added damage was most often false. The model then
runs at a lower threshold than `base_conf` (its registry entry's `served_conf`), so the
verifier has something to add.

The parameters belong to one damage model and one verifier: they are chosen on val together
(`python -m training.verifier_sweep`) and recorded in the damage model's registry entry.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, fields
from typing import Any

from cdat.findings import DamageInstance
from cdat.rule_record import rule_from_record


@dataclass(frozen=True)
class VerifierRule:
    base_conf: float
    """Damage at or above this score is kept as the model's threshold would keep it..."""
    min_probability: float
    """...and damage below it is kept where the verifier gives at least this."""
    min_base_probability: float = 0.0
    """Damage the threshold keeps is dropped where the verifier gives less (0: never)."""
    max_overlap: float = 1.0
    """Damage added under the threshold is dropped where its box overlaps a surer kept one
    at an IoU above this (1: never)."""
    whole_car_probability: float = 0.0
    """On a whole-car view, damage below the threshold also needs at least this (0: as on a
    close-up)."""

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if not isinstance(value, int | float) or isinstance(value, bool):
                raise ValueError(f"{f.name} {value!r}: need a number")
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{f.name} {value}: need a value from 0 to 1")
        if self.base_conf <= 0.0:
            raise ValueError(f"base_conf {self.base_conf}: need a score above 0")

    def to_record(self) -> dict[str, Any]:
        """As a registry entry stores it."""
        return asdict(self)

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> VerifierRule:
        """The one reader of a stored rule; an unknown or missing field is a ValueError."""
        return rule_from_record(cls, record, ("base_conf", "min_probability"), "verifier rule")


def verified(
    damages: Sequence[DamageInstance],
    probabilities: Sequence[float],
    base_kept: Sequence[bool],
    rule: VerifierRule,
    whole_car_view: bool = False,
) -> tuple[DamageInstance, ...]:
    """The damages the rule keeps, in order. `probabilities[k]` is the verifier's answer for
    `damages[k]`; `base_kept[k]` says whether the model's threshold and whole-car rule keep it;
    `whole_car_view`, whether the photo is one (`cdat.whole_car.is_whole_car_view`)."""
    if not len(damages) == len(probabilities) == len(base_kept):
        raise ValueError("one probability and one base verdict per damage")
    add_bar = rule.min_probability
    if whole_car_view:
        add_bar = max(add_bar, rule.whole_car_probability)
    confirmed = [
        (k, base)
        for k, (p, base) in enumerate(zip(probabilities, base_kept, strict=True))
        if (p >= rule.min_base_probability if base else p >= add_bar)
    ]
    kept: list[int] = [k for k, base in confirmed if base]
    added = sorted((k for k, base in confirmed if not base), key=lambda k: -damages[k].confidence)
    for k in added:
        surer = (j for j in kept if damages[j].confidence >= damages[k].confidence)
        if all(damages[k].box.iou(damages[j].box) <= rule.max_overlap for j in surer):
            kept.append(k)
    return tuple(damages[k] for k in sorted(kept))
