"""Shares of one photo's outlines counted once per pair give what counting each query
afresh gives, to the last bit (the merge's rules compare them with a bar)."""

from __future__ import annotations

import math
import random
from collections.abc import Sequence

from cdat.outlines import HeldShares, fresh_share

Point = tuple[float, float]


def counted_afresh(outline: Sequence[Point], others: Sequence[Sequence[Point]], n: int) -> float:
    """The share as first written: every grid point tested against every near outline."""

    def inside(x: float, y: float, polygon: Sequence[Point]) -> bool:
        found = False
        for (x1, y1), (x2, y2) in zip(polygon, [*polygon[1:], polygon[0]], strict=True):
            if (y1 > y) != (y2 > y) and x < x1 + (y - y1) * (x2 - x1) / (y2 - y1):
                found = not found
        return found

    def box(polygon: Sequence[Point]) -> tuple[float, float, float, float]:
        xs, ys = [x for x, _ in polygon], [y for _, y in polygon]
        return min(xs), min(ys), max(xs), max(ys)

    a = box(outline)
    near = [
        o
        for o in others
        if len(o) >= 3
        and not (a[2] <= box(o)[0] or box(o)[2] <= a[0] or a[3] <= box(o)[1] or box(o)[3] <= a[1])
    ]
    if not near:
        return 1.0
    dx, dy = (a[2] - a[0]) / n, (a[3] - a[1]) / n
    covered = fresh = 0
    for i in range(n):
        for j in range(n):
            x, y = a[0] + (j + 0.5) * dx, a[1] + (i + 0.5) * dy
            if inside(x, y, outline):
                covered += 1
                fresh += not any(inside(x, y, o) for o in near)
    return fresh / covered if covered else 1.0


def blob(rng: random.Random) -> tuple[Point, ...]:
    """A star-ish polygon (concave at times), or an axis-aligned box as an adjuster draws."""
    cx, cy = rng.uniform(0, 200), rng.uniform(0, 200)
    if rng.random() < 0.3:
        w, h = rng.randint(5, 90), rng.randint(5, 90)
        return ((cx, cy), (cx + w, cy), (cx + w, cy + h), (cx, cy + h))
    sides = rng.randint(3, 40)
    return tuple(
        (
            cx + rng.uniform(10, 70) * math.cos(2 * math.pi * k / sides),
            cy + rng.uniform(10, 70) * math.sin(2 * math.pi * k / sides),
        )
        for k in range(sides)
    )


def test_every_pair_and_union_is_the_share_counted_afresh() -> None:
    rng = random.Random(7)
    for _ in range(20):
        # given a photo's outlines, one of them too short to be a polygon
        outlines = [blob(rng) for _ in range(12)] + [((5.0, 5.0), (9.0, 9.0))]
        shares = HeldShares(outlines, 16)
        for index in range(len(outlines) - 1):
            others = rng.sample([k for k in range(len(outlines)) if k != index], 5)
            polygons = [outlines[k] for k in others]
            # then a union, and each pair, is the share counted afresh
            assert shares.fresh(index, others) == counted_afresh(outlines[index], polygons, 16)
            for k in others:
                expected = 1.0 - counted_afresh(outlines[index], [outlines[k]], 16)
                assert shares.held(index, [k]) == expected
            assert fresh_share(outlines[index], polygons) == counted_afresh(
                outlines[index], polygons, 48
            )
