"""Where a damage lies, asked of a second damage model: the placer.

The served damage model decides whether there is damage; its masks often spread across the
neighbouring panel, so the part masks put close-up damage on the wrong part (issue 29). A
model fine-tuned from it on intact close-ups as well puts its masks on the damaged panel
(docs/model-experiments.md: on car-parts-damage val the right part family from the masks
alone 0.71 against 0.57), but reports more damage on intact cars. So the served model keeps
the first question and the placer answers the second: each damage takes the part of the
placer's detection whose box overlaps it most, where that overlap (box IoU) is at least
`min_iou`; a damage no placer detection overlaps that much keeps its own part.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from cdat.findings import Box
from cdat.rule_record import rule_from_record


@dataclass(frozen=True)
class PlacementRule:
    min_iou: float = 0.5
    """The box IoU a placer detection needs with a damage to place it."""

    def __post_init__(self) -> None:
        value = self.min_iou
        if not isinstance(value, int | float) or isinstance(value, bool):
            raise ValueError(f"min_iou {value!r}: need a number")
        if not 0.0 < value <= 1.0:
            raise ValueError(f"min_iou {value}: need a value above 0, at most 1")

    def to_record(self) -> dict[str, Any]:
        """As a registry entry stores it."""
        return asdict(self)

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> PlacementRule:
        """The one reader of a stored rule; an unknown field is a ValueError."""
        return rule_from_record(cls, record, ("min_iou",), "placement rule")


def placing_detection(box: Box, placer_boxes: Sequence[Box], rule: PlacementRule) -> int | None:
    """Index of the placer detection that places a damage with this box: the one with the
    highest box IoU, if that is at least `rule.min_iou` (the first of equals); else None."""
    best, best_iou = None, 0.0
    for k, other in enumerate(placer_boxes):
        iou = box.iou(other)
        if iou > best_iou:
            best, best_iou = k, iou
    return best if best is not None and best_iou >= rule.min_iou else None
