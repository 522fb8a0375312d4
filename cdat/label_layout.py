"""Where to write labels on a photo so that none covers another.

Both overlays use it: the workspace's SVG and the JPEG that `inference.overlay` renders.
Boxes found on one panel often share a corner, and their labels, each written at its
box's corner, used to print over each other. Plain geometry, no drawing library.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class LabelSpot:
    """A label's wanted baseline start, and its size in the same pixels."""

    x: float
    y: float
    width: float
    height: float


def place_labels(
    wanted: Sequence[LabelSpot], line: float, limit: float | None = None
) -> list[tuple[float, float]]:
    """Baseline positions, in order: each label where wanted, or `line` lower at a time
    until it overlaps no label placed before it (never past `limit`, if given)."""
    placed: list[tuple[float, float, float, float]] = []
    out = []
    for spot in wanted:
        y = spot.y
        while any(_overlaps(_rect(spot, y), other) for other in placed):
            if limit is not None and y + line > limit:
                break
            y += line
        placed.append(_rect(spot, y))
        out.append((spot.x, y))
    return out


def _rect(spot: LabelSpot, y: float) -> tuple[float, float, float, float]:
    return (spot.x, y - spot.height, spot.x + spot.width, y)


def _overlaps(a: tuple[float, float, float, float], b: tuple[float, float, float, float]) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]
