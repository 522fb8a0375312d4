"""The project's one vocabulary for damage, severity and car parts.

Every data set, model and estimate maps into these enums; nothing else in the
code base spells a class name as a bare string.
"""

from __future__ import annotations

from enum import Enum


class DamageType(str, Enum):
    DENT = "dent"
    SCRATCH = "scratch"
    CRACK = "crack"
    GLASS_SHATTER = "glass_shatter"
    LAMP_BROKEN = "lamp_broken"
    TIRE_FLAT = "tire_flat"
    BROKEN_PART = "broken_part"


class Severity(str, Enum):
    MINOR = "minor"
    MODERATE = "moderate"
    SEVERE = "severe"

    @property
    def rank(self) -> int:
        return _SEVERITY_RANK[self]


_SEVERITY_RANK = {Severity.MINOR: 0, Severity.MODERATE: 1, Severity.SEVERE: 2}


class Side(str, Enum):
    LEFT = "left"
    RIGHT = "right"
    CENTRE = "centre"


class Position(str, Enum):
    FRONT = "front"
    REAR = "rear"
    MIDDLE = "middle"


class CarPart(str, Enum):
    """The 18 parts of the `car-parts` data set, named as that set names them (the part
    model's classes: `SEGMENTED_PARTS`), then the fenders, which no model segments: the
    part-family stage places a damage on one (`cdat.part_family`), or an adjuster does."""

    BACK_BUMPER = "back_bumper"
    BACK_GLASS = "back_glass"
    BACK_LEFT_DOOR = "back_left_door"
    BACK_LEFT_LIGHT = "back_left_light"
    BACK_RIGHT_DOOR = "back_right_door"
    BACK_RIGHT_LIGHT = "back_right_light"
    FRONT_BUMPER = "front_bumper"
    FRONT_GLASS = "front_glass"
    FRONT_LEFT_DOOR = "front_left_door"
    FRONT_LEFT_LIGHT = "front_left_light"
    FRONT_RIGHT_DOOR = "front_right_door"
    FRONT_RIGHT_LIGHT = "front_right_light"
    HOOD = "hood"
    LEFT_MIRROR = "left_mirror"
    RIGHT_MIRROR = "right_mirror"
    TAILGATE = "tailgate"
    TRUNK = "trunk"
    WHEEL = "wheel"
    FRONT_LEFT_FENDER = "front_left_fender"
    FRONT_RIGHT_FENDER = "front_right_fender"
    BACK_LEFT_QUARTER_PANEL = "back_left_quarter_panel"
    """The rear fender, welded to the body: `car-parts-damage` labels it `Fender` too."""
    BACK_RIGHT_QUARTER_PANEL = "back_right_quarter_panel"

    @property
    def side(self) -> Side:
        if "left" in self.value:
            return Side.LEFT
        if "right" in self.value:
            return Side.RIGHT
        return Side.CENTRE

    @property
    def position(self) -> Position:
        if self.value.startswith("front") or self in (CarPart.HOOD,):
            return Position.FRONT
        if self.value.startswith("back") or self in (CarPart.TAILGATE, CarPart.TRUNK):
            return Position.REAR
        return Position.MIDDLE

    @property
    def is_glass(self) -> bool:
        return self in (CarPart.FRONT_GLASS, CarPart.BACK_GLASS)

    @property
    def is_lamp(self) -> bool:
        return self.value.endswith("_light")

    @property
    def is_painted_panel(self) -> bool:
        return not (self.is_glass or self.is_lamp or self is CarPart.WHEEL)

    @property
    def family(self) -> PartFamily:
        return _FAMILY_OF[self]


class PartFamily(str, Enum):
    """What a part is, whatever its side: how close-up labels name parts ("a door")."""

    HOOD = "hood"
    BUMPER = "bumper"
    DOOR = "door"
    LIGHT = "light"
    GLASS = "glass"
    BOOT = "boot"
    """Trunk lid or tailgate."""
    MIRROR = "mirror"
    WHEEL = "wheel"
    FENDER = "fender"
    """A front fender or a rear quarter panel, as the close-up sets' `Fender` names both."""
    UNLISTED_PANEL = "unlisted_panel"
    """A panel no part names (pillar, sill, roof) or a damage on no part: an adjuster's to
    place, never priced as a neighbouring part."""

    @property
    def segmented(self) -> bool:
        """Whether a part model's masks can show a part of this family (`car-parts`
        outlines no fender)."""
        return self not in (PartFamily.FENDER, PartFamily.UNLISTED_PANEL)


def _family(part: CarPart) -> PartFamily:
    if part.is_glass:
        return PartFamily.GLASS
    if part.is_lamp:
        return PartFamily.LIGHT
    for family in (PartFamily.BUMPER, PartFamily.DOOR, PartFamily.MIRROR):
        if part.value.endswith(family.value):
            return family
    if part in (CarPart.TRUNK, CarPart.TAILGATE):
        return PartFamily.BOOT
    if part.value.endswith(("_fender", "_quarter_panel")):
        return PartFamily.FENDER
    return PartFamily(part.value)  # hood, wheel


_FAMILY_OF = {part: _family(part) for part in CarPart}

SEGMENTED_PARTS: tuple[CarPart, ...] = tuple(
    p for p in CarPart if p.family is not PartFamily.FENDER
)
"""The parts `car-parts` names, in its order: what a part model's classes may be."""


DAMAGE_CLASSES: tuple[tuple[DamageType, Severity], ...] = tuple(
    (damage, severity) for damage in DamageType for severity in Severity
)
"""Damage model classes: one per (type, severity) pair, in this fixed order."""


def damage_fits_part(damage: DamageType, part: CarPart) -> bool:
    """Whether `damage` can occur on `part`: a broken lamp needs a lamp, shattered glass
    glass (a lamp's lens included), a flat tyre the wheel; other damage any part."""
    if damage is DamageType.LAMP_BROKEN:
        return part.is_lamp
    if damage is DamageType.GLASS_SHATTER:
        return part.is_glass or part.is_lamp
    if damage is DamageType.TIRE_FLAT:
        return part is CarPart.WHEEL
    return True


def damage_class_name(damage: DamageType, severity: Severity) -> str:
    return f"{severity.value}-{damage.value}"


def parse_damage_class(name: str) -> tuple[DamageType, Severity]:
    """Inverse of `damage_class_name`; raises ValueError on an unknown name."""
    severity, _, damage = name.partition("-")
    return DamageType(damage), Severity(severity)
