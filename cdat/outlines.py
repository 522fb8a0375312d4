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
    return _crossed(x, y, _edges(outline))


Edge = tuple[float, float, float, float, float]
"""x1, y1, y2, x2 - x1, y2 - y1 of one side of a polygon."""


def _edges(outline: Sequence[Point]) -> list[Edge]:
    pairs = zip(outline, [*outline[1:], outline[0]], strict=True)
    return [(x1, y1, y2, x2 - x1, y2 - y1) for (x1, y1), (x2, y2) in pairs]


def _crossed(x: float, y: float, edges: list[Edge]) -> bool:
    """Whether a ray from (x, y) crosses the edges an odd number of times."""
    found = False
    for x1, y1, y2, dx, dy in edges:
        if (y1 > y) != (y2 > y) and x < x1 + (y - y1) * dx / dy:
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
    return HeldShares([outline, *others], samples).fresh(0, range(1, len(others) + 1))


class HeldShares:
    """`fresh_share` for many pairs of one photo's outlines: each outline's grid points found
    once, and each tested once against each other outline. A photo the analyzer's looks
    outline dozens of times asks thousands of pairs (`cdat.merge`), each a pure-Python
    polygon test."""

    def __init__(self, outlines: Sequence[Sequence[Point]], samples: int = SAMPLES) -> None:
        self.outlines = outlines
        self.samples = samples
        self._points: dict[int, list[Point]] = {}
        self._held: dict[tuple[int, int], int] = {}
        self._edge_lists: dict[int, list[Edge]] = {}

    def held(self, index: int, others: Sequence[int]) -> float:
        """Share of outline `index`'s area inside any of the outlines `others`."""
        return 1.0 - self.fresh(index, others)

    def fresh(self, index: int, others: Sequence[int]) -> float:
        """`fresh_share` of outline `index` beside the outlines `others`."""
        near = [k for k in others if self._near(index, k)]
        if not near:
            return 1.0
        points = self._inside(index)
        if not points:
            return 1.0
        union = 0
        for k in near:
            union |= self._held_by(index, k)
        return (len(points) - union.bit_count()) / len(points)

    def _near(self, index: int, other: int) -> bool:
        outline = self.outlines[other]
        return len(outline) >= 3 and not _apart(bounds(self.outlines[index]), bounds(outline))

    def _inside(self, index: int) -> list[Point]:
        if index not in self._points:
            outline = self.outlines[index]
            x0, y0, x1, y1 = bounds(outline)
            dx, dy = (x1 - x0) / self.samples, (y1 - y0) / self.samples
            grid = (
                (x0 + (j + 0.5) * dx, y0 + (i + 0.5) * dy)
                for i in range(self.samples)
                for j in range(self.samples)
            )
            edges = self._edges(index)
            self._points[index] = [(x, y) for x, y in grid if _crossed(x, y, edges)]
        return self._points[index]

    def _held_by(self, index: int, other: int) -> int:
        """The points of `index` inside `other`, as bits."""
        key = (index, other)
        if key not in self._held:
            x0, y0, x1, y1 = bounds(self.outlines[other])
            edges = self._edges(other)
            bits = 0
            for bit, (x, y) in enumerate(self._inside(index)):
                # off the other's box a point is outside it, as `inside` would find
                if x0 <= x <= x1 and y0 <= y <= y1 and _crossed(x, y, edges):
                    bits |= 1 << bit
            self._held[key] = bits
        return self._held[key]

    def _edges(self, index: int) -> list[Edge]:
        if index not in self._edge_lists:
            self._edge_lists[index] = _edges(self.outlines[index])
        return self._edge_lists[index]
