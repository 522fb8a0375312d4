"""Damage -> car part, by mask overlap on the shared analysis grid.

A damage belongs to the part whose mask it overlaps most. Coverage is the share of
that part's visible area the damage covers. A damage whose overlap with every part
is below `min_overlap` of its own area lies on no visible part (`part=None`) and is
kept for the adjuster rather than guessed.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from cdat.findings import DamageInstance, PartInstance


def assign_parts(
    damages: tuple[DamageInstance, ...],
    damage_masks: np.ndarray,
    parts: tuple[PartInstance, ...],
    part_masks: np.ndarray,
    min_overlap: float = 0.05,
) -> tuple[DamageInstance, ...]:
    """Fill `part` and `part_coverage` of each damage; masks are (N, gh, gw) bool."""
    if not damages:
        return damages
    if not parts:
        return tuple(replace(d, part=None, part_coverage=0.0) for d in damages)
    dmg = damage_masks.reshape(len(damages), -1).astype(np.float32)
    prt = part_masks.reshape(len(parts), -1).astype(np.float32)
    overlap = dmg @ prt.T  # (damages, parts) pixel counts
    damage_area = dmg.sum(1)
    part_area = prt.sum(1)
    out = []
    for i, damage in enumerate(damages):
        j = int(overlap[i].argmax())
        if damage_area[i] == 0 or overlap[i, j] < min_overlap * damage_area[i]:
            out.append(replace(damage, part=None, part_coverage=0.0))
            continue
        coverage = float(overlap[i, j] / max(part_area[j], 1.0))
        out.append(replace(damage, part=parts[j].part, part_coverage=round(min(coverage, 1.0), 4)))
    return tuple(out)
