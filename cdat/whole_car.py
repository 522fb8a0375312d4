"""Damage on a whole-car view needs more evidence than damage on a close-up.

A claim's damage photos are close-ups: a few large parts fill the frame. A photo that shows
the whole car (many parts, each small in the frame) is where an intact car's reflections,
lettering, wraps and side windows were reported as damage (issue 29), and a damage there is
a few pixels wide, so the damage model's score means less. On such a view a damage is kept
only with a higher score (`whole_car_conf`), and optionally only when it lies on a listed
part (`drop_off_part`): the part model sees the whole car there, so a damage on none of its
parts is mostly background. Close-ups keep the served threshold, so the recall on damage
photos is what it was.

Counting parts misjudges a third of intact whole cars (six or seven parts found) and many
close-ups (a door, a wheel and a mirror in one frame). Where the vehicle gate also reads the
photo's view (a second head on its features: inference/vehicle_gate.py) and the rule names
a `view_probability`, that reading decides instead; without one, the parts decide.

The parameters belong to one damage model's scores: they are chosen on val for it (`python -m
training.claim_rules`; its card has the sweep) and recorded in its registry entry, so a model
is served with its own rule (`Settings.damage_whole_car_rule` overrides it,
`Settings.damage_whole_car` turns it off).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Any

from cdat.findings import DamageInstance, PartInstance, PhotoAnalysis
from cdat.rule_record import rule_from_record


@dataclass(frozen=True)
class WholeCarRule:
    min_parts: int
    """A photo in which the part model finds at least this many parts is a whole-car view."""
    max_part_share: float = 1.0
    """...and whose largest part's box fills at most this share of the frame (1.0: any)."""
    whole_car_conf: float = 0.0
    """Lowest damage score reported on a whole-car view."""
    drop_off_part: bool = False
    """On a whole-car view, drop a damage that lies on no listed part."""
    view_probability: float | None = None
    """A photo whose read view (the gate's whole-car probability) is at least this is a
    whole-car view, whatever its parts; None, or a photo with no view read: the parts decide."""

    def __post_init__(self) -> None:
        if not isinstance(self.min_parts, int) or isinstance(self.min_parts, bool):
            raise ValueError(f"min_parts {self.min_parts!r}: need a whole number")
        if not all(isinstance(v, int | float) for v in (self.max_part_share, self.whole_car_conf)):
            raise ValueError("max_part_share and whole_car_conf: need numbers")
        if not isinstance(self.drop_off_part, bool):
            raise ValueError(f"drop_off_part {self.drop_off_part!r}: need true or false")
        if self.min_parts < 1:
            raise ValueError(f"min_parts {self.min_parts}: need at least 1")
        if not 0.0 < self.max_part_share <= 1.0:
            raise ValueError(f"max_part_share {self.max_part_share}: need 0 < share <= 1")
        if not 0.0 <= self.whole_car_conf < 1.0:
            raise ValueError(f"whole_car_conf {self.whole_car_conf}: need 0 <= conf < 1")
        view = self.view_probability
        if view is not None and (
            isinstance(view, bool) or not isinstance(view, int | float) or not 0.0 < view < 1.0
        ):
            raise ValueError(f"view_probability {view!r}: need a number with 0 < p < 1, or null")

    def to_record(self) -> dict[str, Any]:
        """As a registry entry stores it (`whole_car_rule`); a rule that reads no view is
        stored as it was before rules could."""
        record = asdict(self)
        if self.view_probability is None:
            del record["view_probability"]
        return record

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> WholeCarRule:
        """The one reader of a stored rule; an unknown or missing field is a ValueError."""
        return rule_from_record(cls, record, ("min_parts",), "whole-car rule")


def largest_part_share(parts: tuple[PartInstance, ...], width: int, height: int) -> float:
    """The largest part's box as a share of the frame (0 with no part)."""
    frame = float(width * height)
    if not parts or frame <= 0:
        return 0.0
    return max(p.box.area for p in parts) / frame


def is_whole_car_view(
    parts: tuple[PartInstance, ...],
    width: int,
    height: int,
    rule: WholeCarRule,
    view_probability: float | None = None,
) -> bool:
    """By the photo's read view where the rule names a bar for it and one was read, else by
    its parts."""
    if rule.view_probability is not None and view_probability is not None:
        return view_probability >= rule.view_probability
    return (
        len(parts) >= rule.min_parts
        and largest_part_share(parts, width, height) <= rule.max_part_share
    )


def kept_damages(
    damages: tuple[DamageInstance, ...],
    parts: tuple[PartInstance, ...],
    width: int,
    height: int,
    rule: WholeCarRule,
    view_probability: float | None = None,
) -> tuple[DamageInstance, ...]:
    """The damages a photo reports under the rule; a close-up keeps all of them."""
    if not damages or not is_whole_car_view(parts, width, height, rule, view_probability):
        return damages
    return tuple(
        d
        for d in damages
        if d.confidence >= rule.whole_car_conf and not (rule.drop_off_part and d.part is None)
    )


def apply_whole_car_rule(analysis: PhotoAnalysis, rule: WholeCarRule) -> PhotoAnalysis:
    size = (analysis.width, analysis.height)
    view = analysis.whole_car_view_probability
    kept = kept_damages(analysis.damages, analysis.parts, *size, rule, view)
    return analysis if kept == analysis.damages else replace(analysis, damages=kept)
