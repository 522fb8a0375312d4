"""The precision gate's verdict: how much worse than FP32 a candidate may do on val, and
the judgement of one candidate's claim figures against FP32's (training/precision_gate.py
measures them)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

Figures = dict[str, float | None]


@dataclass(frozen=True)
class AccuracyTolerance:
    """How much worse than FP32 a candidate precision may do on val, in absolute points of
    each figure; a figure that gets better never refuses. Stated before any candidate was
    measured, from the size of val and what each figure costs a claim:

    * damage found (recall at IoU 0.3, per source) and the part family it lands on: 0.02.
      The smallest val sources hold ~100-170 regions, so 0.02 is two to three regions, the
      most two runs of one model on re-encoded photos have moved; the goals these figures
      chase (0.85, 0.50) are ten times further away than that;
    * mask mAP50 of the model under test: 0.02, the same reasoning, for masks;
    * intact photos with damage: 0.02, one more photo of ~50 intact val cars (a false
      repair line on an intact car is the costliest error, so no more than one); intact
      close-ups with damage by the same bound, one more of ~89 close-up windows;
    * photos refused (non-vehicle photos refused; damage close-ups refused): 0.01, as the
      vehicle gate's own goals are stated to a hundredth and it runs FP32 either way (a
      change here means the models' evidence of a vehicle moved).
    """

    max_recall_drop: float = 0.02
    max_family_drop: float = 0.02
    max_map50_drop: float = 0.02
    max_intact_rise: float = 0.02
    max_refusal_change: float = 0.01

    def limit(self, figure: str) -> tuple[int, float]:
        """(direction, largest allowed worsening): +1 when higher is better."""
        name = figure.split("/")[0]
        rules = {
            "damage_recall_iou30": (1, self.max_recall_drop),
            "part_family_accuracy": (1, self.max_family_drop),
            "mask_map50": (1, self.max_map50_drop),
            "intact_photos_with_damage": (-1, self.max_intact_rise),
            "intact_closeups_with_damage": (-1, self.max_intact_rise),
            "non_vehicle_refused": (1, self.max_refusal_change),
            "closeups_refused": (-1, self.max_refusal_change),
        }
        if name not in rules:
            raise KeyError(f"no tolerance stated for {figure}")
        return rules[name]


def claim_figures(claims: Mapping[str, Any]) -> Figures:
    """The headline of `claim_eval.claim_report`, flattened: `damage_recall_iou30/<source>`."""
    out: Figures = {}
    for key in ("damage_recall_iou30", "part_family_accuracy"):
        for source, value in (claims.get(key) or {}).items():
            out[f"{key}/{source}"] = value
    for key in (
        "intact_photos_with_damage",
        "intact_closeups_with_damage",
        "non_vehicle_refused",
        "closeups_refused",
    ):
        if key in claims:
            out[key] = claims[key]
    return out


@dataclass(frozen=True)
class AccuracyVerdict:
    reference: Figures
    candidate: Figures
    tolerance: AccuracyTolerance
    reasons: tuple[str, ...]

    @property
    def passed(self) -> bool:
        return not self.reasons

    def as_dict(self) -> dict[str, Any]:
        deltas = {
            k: round(c - r, 4)
            for k, r in self.reference.items()
            if (c := self.candidate.get(k)) is not None and r is not None
        }
        return {
            "passed": self.passed,
            "reasons": list(self.reasons),
            "fp32": self.reference,
            "candidate": self.candidate,
            "deltas": deltas,
            "tolerance": asdict(self.tolerance),
        }


def judge_accuracy(
    reference: Mapping[str, float | None],
    candidate: Mapping[str, float | None],
    tolerance: AccuracyTolerance | None = None,
) -> AccuracyVerdict:
    """Every figure FP32 has, within its tolerance in the candidate, or the reasons not."""
    tol = tolerance or AccuracyTolerance()
    reasons = []
    if not any(v is not None for v in reference.values()):
        reasons.append("FP32 measured nothing on these photos: nothing to compare")
    for figure, ref in sorted(reference.items()):
        if ref is None:
            continue
        got = candidate.get(figure)
        if got is None:
            reasons.append(f"{figure}: FP32 has {ref:.4f}, the candidate nothing")
            continue
        direction, limit = tol.limit(figure)
        worse = (ref - got) * direction
        if worse > limit + 1e-9:
            reasons.append(f"{figure}: {ref:.4f} in FP32, {got:.4f} in the candidate (> {limit})")
    return AccuracyVerdict(dict(reference), dict(candidate), tol, tuple(reasons))
