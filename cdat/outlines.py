"""Outlines drawn on a photo (an adjuster's box or polygon, a model damage's polygon), in
photo pixels: how much of one lies inside none of the others.

Pure Python, so the domain core measures a correction without a vision library: the share
is counted on a grid of points over the outline's box, close enough for a coverage that
the rules bucket in steps of a tenth or more (`cdat/rules.py`).
"""

from __future__ import annotations

from collections.abc import Sequence

Point = tuple[float, float]

SAMPLES = 48
"""Grid points a side over the outline's box: a share to within about 1/48 of its side."""


def inside(x: float, y: float, outline: Sequence[Point]) -> bool:
    """Whether (x, y) lies inside the polygon (even-odd rule)."""
    found = False
    for (x1, y1), (x2, y2) in zip(outline, [*outline[1:], outline[0]], strict=True):
        if (y1 > y) != (y2 > y) and x < x1 + (y - y1) * (x2 - x1) / (y2 - y1):
            found = not found
    return found


def bounds(outline: Sequence[Point]) -> tuple[float, float, float, float]:
    xs, ys = [x for x, _ in outline], [y for _, y in outline]
    return min(xs), min(ys), max(xs), max(ys)


def _apart(a: tuple[float, ...], b: tuple[float, ...]) -> bool:
    return a[2] <= b[0] or b[2] <= a[0] or a[3] <= b[1] or b[3] <= a[1]


def fresh_share(
    outline: Sequence[Point], others: Sequence[Sequence[Point]], samples: int = SAMPLES
) -> float:
    """Share of `outline`'s area that lies inside none of `others` (1.0 when none touch it),
    counted on `samples` x `samples` points."""
    box = bounds(outline)
    near = [o for o in others if len(o) >= 3 and not _apart(box, bounds(o))]
    if not near:
        return 1.0
    x0, y0, x1, y1 = box
    dx, dy = (x1 - x0) / samples, (y1 - y0) / samples
    covered = fresh = 0
    for i in range(samples):
        y = y0 + (i + 0.5) * dy
        for j in range(samples):
            x = x0 + (j + 0.5) * dx
            if inside(x, y, outline):
                covered += 1
                fresh += not any(inside(x, y, o) for o in near)
    return fresh / covered if covered else 1.0
