"""What a crop stage said of each damage of one photo, kept for the photo's second analysis.

A photo analysed again (the zoomed-out look taken where the first look found damage:
`zoom_look_where_found`) hands the verifiers and the part-family stage many of the same
damages again. A crop stage's answer for a damage depends only on the photo, its parts and
the damage's own box, score and type (not on the other damages, except for a verifier that
counts its neighbours, which does not use this), so the answer is looked up rather than
computed again.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence

import numpy as np

CropMemo = dict[Hashable, np.ndarray]
"""One photo's answers, keyed by the stage and what it read of the damage."""


def remembered(
    memo: CropMemo | None,
    keys: Sequence[Hashable],
    compute: Callable[[list[int]], np.ndarray],
) -> np.ndarray:
    """The rows for `keys`, in order: those `memo` holds looked up, the rest computed in one
    batch by `compute` (given their indices) and kept. No memo: all computed."""
    if memo is None:
        return compute(list(range(len(keys))))
    missing = [k for k, key in enumerate(keys) if key not in memo]
    if missing:
        for k, row in zip(missing, compute(missing), strict=True):
            memo[keys[k]] = row
    return np.stack([memo[key] for key in keys]) if keys else compute([])
