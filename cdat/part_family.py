"""What a damage's own crop says about the part it lies on, weighed against the part masks.

The part model segments whole cars well, but on a close-up of a damaged panel it sees only
a piece of one or two parts and often names the wrong one (a fender called the front
bumper, a door called a bumper: issue 29). A second opinion looks at the damage itself: a
classifier on the crop around each damage gives the probability of each part *family*
(`PartFamily`: hood, bumper, door, light, glass, boot, mirror, wheel, fender).

`FamilyRule` says when that opinion overrules the masks: only when the crop's most likely
family is at least `min_probability`, differs from the family of the part the masks gave, and
the crop gives the masks' family at most `max_masks_probability` (where the masks gave no
part, every family no model segments counts as theirs: `masks_probability`).
The damage then goes to the part of that family the masks rank nearest to it; to the one
part a family has when it has one (hood, boot); to the bumper, glass, door, lamp or fender
at the end (and side) of the car the photo's parts point to (no model segments a fender, so
one is always placed this way); or, for an unlisted panel, to no part (kept for the
adjuster, never priced as its neighbour). The side comes from a seen part's name, else from
where the damage sits beside a part across one end of the car (`side_in_view`). Where the
crop's family still cannot be placed (a door beside a wheel alone: no end of the car seen)
the masks' answer stands, except for a fender: that damage goes on no part, never on the
neighbour the masks chose. Where the masks gave no part and the crop says fender, the two
agree and the crop only says which panel: the damage goes on the fender the parts point to.

The threshold belongs to one classifier's scores: it is chosen on val (`python -m
training.family_sweep`) and stored with the classifier in the part model's registry entry.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from cdat.rule_record import rule_from_record
from cdat.taxonomy import CarPart, DamageType, PartFamily, Position, Side, damage_fits_part


@dataclass(frozen=True)
class FamilyRule:
    min_probability: float
    """The crop's family overrules the masks' only at or above this probability..."""
    max_masks_probability: float = 1.0
    """...and only where the crop gives the masks' own family at most this probability: the
    crop must contradict the masks, not merely prefer another family (1.0: any)."""

    def __post_init__(self) -> None:
        for name in ("min_probability", "max_masks_probability"):
            value = getattr(self, name)
            if not isinstance(value, int | float) or isinstance(value, bool):
                raise ValueError(f"{name} {value!r}: need a number")
            if not 0.0 < value <= 1.0:
                raise ValueError(f"{name} {value}: need 0 < probability <= 1")

    def to_record(self) -> dict[str, Any]:
        """As a registry entry stores it."""
        return asdict(self)

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> FamilyRule:
        """The one reader of a stored rule; an unknown or missing field is a ValueError."""
        return rule_from_record(cls, record, ("min_probability",), "part-family rule")


def family_of(part: CarPart | None) -> PartFamily:
    """A damage on no listed part lies on an unlisted panel."""
    return PartFamily.UNLISTED_PANEL if part is None else part.family


def family_right(label: PartFamily, part: CarPart | None) -> bool:
    """Whether a damage put on `part` is on the family a close-up's label names. A fender's
    damage is right on no part too: before fenders were listed that is where it went, for
    the adjuster to place, and the claim figures have counted it so since issue 29."""
    if part is None:
        return not label.segmented
    return part.family is label


def choose_part(
    assigned: CarPart | None,
    probabilities: Mapping[PartFamily, float],
    nearby: Sequence[CarPart],
    rule: FamilyRule,
    side: Side | None = None,
) -> CarPart | None:
    """The part a damage is put on: the masks' `assigned` part, unless the crop's family
    overrules it (module docstring). `nearby` are the parts the part model found in the
    photo, nearest to the damage first; `side` the car's side the damage sits on where the
    parts' names give none (`side_in_view`)."""
    if not probabilities:
        return assigned
    family = max(probabilities, key=lambda f: probabilities[f])
    if probabilities[family] < rule.min_probability or family is family_of(assigned):
        return assigned
    if assigned is None and not family.segmented:
        # the crop agrees with the masks that no listed part holds it, and names the panel
        return _placed(family, nearby, side) if family is PartFamily.FENDER else None
    if masks_probability(assigned, probabilities) > rule.max_masks_probability:
        return assigned
    if family is PartFamily.UNLISTED_PANEL:
        return None
    for part in nearby:
        if part.family is family:
            return part
    placed = _placed(family, [p for p in (assigned, *nearby) if p is not None], side)
    if placed is None and family is PartFamily.FENDER:
        return None  # a fender the photo cannot place is still not its neighbour
    return assigned if placed is None else placed


def masks_probability(assigned: CarPart | None, probabilities: Mapping[PartFamily, float]) -> float:
    """What the crop gives the masks' answer: the family of their part, or, where they
    found none, every family no part model segments (a fender as much as an unlisted panel:
    "no part" is all the masks can say of either)."""
    if assigned is None:
        return sum(p for family, p in probabilities.items() if not family.segmented)
    return probabilities.get(assigned.family, 0.0)


_FAMILY_OF_TYPE = {
    DamageType.LAMP_BROKEN: PartFamily.LIGHT,
    DamageType.GLASS_SHATTER: PartFamily.GLASS,
    DamageType.TIRE_FLAT: PartFamily.WHEEL,
}


def part_by_type(
    damage: DamageType,
    assigned: CarPart | None,
    nearby: Sequence[CarPart],
    side: Side | None = None,
) -> CarPart | None:
    """The part a damage the masks put on no part is on, where its type says which kind of
    part it can be on (`damage_fits_part`: a broken lamp on a lamp, shattered glass on glass
    or a lamp's lens, a flat tyre on the wheel): the nearest such part the part model found,
    else the one its family has at the end and side of the car the photo's parts point to
    (`nearby`, nearest first; `side` where their names give none). On a close-up of a
    smashed headlamp the part model often sees no lamp at all (issue 29: a headlamp out of
    its socket went unpriced as "no part"). A damage already on a part keeps it, fitting or
    not: triage asks an adjuster about those (`damage_part_mismatch`), since on val the part
    was as often right as the type."""
    family = _FAMILY_OF_TYPE.get(damage)
    if assigned is not None or family is None:
        return assigned
    fitting = next((p for p in nearby if damage_fits_part(damage, p)), None)
    if fitting is not None:
        return fitting
    return CarPart.WHEEL if family is PartFamily.WHEEL else _placed(family, nearby, side)


_ONLY_PART = {PartFamily.HOOD: CarPart.HOOD, PartFamily.BOOT: CarPart.TRUNK}
_MIRROR = {Side.LEFT: CarPart.LEFT_MIRROR, Side.RIGHT: CarPart.RIGHT_MIRROR}
_BY_END = {
    PartFamily.BUMPER: {Position.FRONT: CarPart.FRONT_BUMPER, Position.REAR: CarPart.BACK_BUMPER},
    PartFamily.GLASS: {Position.FRONT: CarPart.FRONT_GLASS, Position.REAR: CarPart.BACK_GLASS},
}
_BY_END_AND_SIDE = {
    PartFamily.DOOR: {
        (Position.FRONT, Side.LEFT): CarPart.FRONT_LEFT_DOOR,
        (Position.FRONT, Side.RIGHT): CarPart.FRONT_RIGHT_DOOR,
        (Position.REAR, Side.LEFT): CarPart.BACK_LEFT_DOOR,
        (Position.REAR, Side.RIGHT): CarPart.BACK_RIGHT_DOOR,
    },
    PartFamily.LIGHT: {
        (Position.FRONT, Side.LEFT): CarPart.FRONT_LEFT_LIGHT,
        (Position.FRONT, Side.RIGHT): CarPart.FRONT_RIGHT_LIGHT,
        (Position.REAR, Side.LEFT): CarPart.BACK_LEFT_LIGHT,
        (Position.REAR, Side.RIGHT): CarPart.BACK_RIGHT_LIGHT,
    },
    PartFamily.FENDER: {
        (Position.FRONT, Side.LEFT): CarPart.FRONT_LEFT_FENDER,
        (Position.FRONT, Side.RIGHT): CarPart.FRONT_RIGHT_FENDER,
        (Position.REAR, Side.LEFT): CarPart.BACK_LEFT_QUARTER_PANEL,
        (Position.REAR, Side.RIGHT): CarPart.BACK_RIGHT_QUARTER_PANEL,
    },
}


def side_in_view(end: Position, left_in_photo: bool) -> Side | None:
    """The car's side of a damage seen left or right of a part across the middle of one end
    (a bumper, the hood, a windscreen): facing the front of a car its left side is on the
    photo's right, facing the rear on the photo's left (so `car-parts` names its lamps: 375
    of 384 front lamps and 153 of 168 rear ones beside a bumper in its train photos)."""
    if end is Position.MIDDLE:
        return None
    return Side.LEFT if left_in_photo is (end is Position.REAR) else Side.RIGHT


def _placed(
    family: PartFamily, hints: Sequence[CarPart], seen_side: Side | None = None
) -> CarPart | None:
    """A part of `family` not seen in the photo, placed by the parts that were (nearest
    first): the end of the car they lie at, and their side, else `seen_side`. None where
    they do not say."""
    if family in _ONLY_PART:
        return _ONLY_PART[family]
    end = next((p.position for p in hints if p.position is not Position.MIDDLE), None)
    side = next((p.side for p in hints if p.side is not Side.CENTRE), seen_side)
    if family is PartFamily.MIRROR:
        return None if side is None else _MIRROR[side]
    if end is None:
        return None
    if family in _BY_END:
        return _BY_END[family][end]
    if family not in _BY_END_AND_SIDE or side is None:
        return None
    return _BY_END_AND_SIDE[family][(end, side)]
