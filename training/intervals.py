"""How far a share measured on a few dozen source photos can be trusted.

A claim figure such as `damage_recall_iou30` counts regions, but regions are not
independent: a photo's regions are found or missed together, and the Roboflow sets hold up to
three augmented copies of each source photo in one split (car-parts-damage's 118 val photos
are 73 source photos). So the interval resamples source photos (`training.convert.
source_group`), each with all its regions, and reads the share of every resample: a
percentile bootstrap, seeded, so that one report always gives one interval.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

RESAMPLES = 2000
LEVEL = 0.9
"""The interval holds this share of the resampled figures (5th to 95th percentile)."""


def share_interval(
    counts: Mapping[str, tuple[int, int]], seed: int = 0
) -> tuple[float, float] | None:
    """The `LEVEL` interval of sum(part) / sum(whole), `counts` giving each source photo's
    (part, whole); photos whose whole is 0 say nothing, and with none left it is None."""
    pairs = np.array([c for c in counts.values() if c[1] > 0], np.float64).reshape(-1, 2)
    if not len(pairs):
        return None
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, len(pairs), size=(RESAMPLES, len(pairs)))
    shares = pairs[picks, 0].sum(1) / pairs[picks, 1].sum(1)
    tail = (1.0 - LEVEL) / 2 * 100
    low, high = np.percentile(shares, [tail, 100 - tail])
    return round(float(low), 4), round(float(high), 4)
