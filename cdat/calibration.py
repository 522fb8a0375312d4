"""A damage's chance of being damage: the detector's score calibrated on val, per view.

The damage model's score ranks damages but is no chance: on val close-ups three in four of
the damages it scores under 0.05 lie on a labelled region (docs/model-experiments.md), so
triage's `min_confidence` flagged nearly every finding of a damaged claim and an estimate's
range widened over damage that was there. A calibration maps a score, by the photo's view,
onto the share of val damages so scored that lay on a labelled region: a logistic curve in
the score's log-odds (Platt scaling), fitted by `python -m training.calibrate` and stored
in the damage model's registry entry. A damage keeps its score as `confidence`, which every
rule chosen on scores reads (the analyzer's, the merge's credible severity, the estimate's
credible replacement), and carries the chance beside it (`DamageInstance.chance`), which
triage's `min_confidence`, the estimate's range and the workspace read. The curve rises
strictly, so the chances rank damages as their scores do.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any

from cdat.findings import DamageInstance
from cdat.rule_record import rule_from_record

SCORE_FLOOR = 1e-4
"""Scores are read as at least this and at most 1 minus it: a log-odds must be finite."""


@dataclass(frozen=True)
class LogisticCurve:
    """chance = 1 / (1 + exp(-(slope * logit(score) + intercept)))."""

    slope: float
    intercept: float

    def __post_init__(self) -> None:
        for name in ("slope", "intercept"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ValueError(f"{name} {value!r}: need a number")
            if not math.isfinite(value):
                raise ValueError(f"{name} {value!r}: need a finite number")
        # A flat or falling curve would reorder damages the analyzer ranked, or tie them.
        if self.slope <= 0:
            raise ValueError(f"slope {self.slope}: need a rising curve (slope above 0)")

    def chance(self, score: float) -> float:
        s = min(max(score, SCORE_FLOOR), 1.0 - SCORE_FLOOR)
        z = self.slope * math.log(s / (1.0 - s)) + self.intercept
        return 1.0 / (1.0 + math.exp(-z)) if z >= 0 else math.exp(z) / (1.0 + math.exp(z))

    @classmethod
    def from_record(cls, record: Any, what: str) -> LogisticCurve:
        if not isinstance(record, dict):
            raise ValueError(f"{what}: need a mapping of slope and intercept")
        try:
            return rule_from_record(cls, record, ("slope", "intercept"), what)
        except (ValueError, TypeError) as exc:
            raise ValueError(str(exc) if str(exc).startswith(what) else f"{what}: {exc}") from None


@dataclass(frozen=True)
class ConfidenceCalibration:
    """One curve per view: a score means less on a whole car, where a damage is a few pixels
    and an intact car's reflections look like scuffs, than on a close-up."""

    close_up: LogisticCurve
    whole_car: LogisticCurve
    view_unread: LogisticCurve
    """For a photo whose view the gate did not read: fitted on every view together."""
    whole_car_view_from: float
    """A photo whose whole-car view the gate reads at this probability or more takes the
    whole-car curve."""

    def __post_init__(self) -> None:
        bar = self.whole_car_view_from
        if isinstance(bar, bool) or not isinstance(bar, int | float) or not 0.0 < bar <= 1.0:
            raise ValueError(f"whole_car_view_from {bar!r}: need a number with 0 < p <= 1")

    def curve(self, view_probability: float | None) -> LogisticCurve:
        if view_probability is None:
            return self.view_unread
        return self.whole_car if view_probability >= self.whole_car_view_from else self.close_up

    def chance(self, score: float, view_probability: float | None) -> float:
        return self.curve(view_probability).chance(score)

    def calibrated(
        self, damages: Sequence[DamageInstance], view_probability: float | None
    ) -> tuple[DamageInstance, ...]:
        """A photo's damages, each with the chance its score reads as (its score kept)."""
        curve = self.curve(view_probability)
        return tuple(replace(d, chance=round(curve.chance(d.confidence), 4)) for d in damages)

    def to_record(self) -> dict[str, Any]:
        """As a registry entry stores it (`confidence_calibration`)."""
        return asdict(self)

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> ConfidenceCalibration:
        """The one reader of a stored calibration; an unknown or missing field is a
        ValueError naming it."""
        what = "confidence calibration"
        if not isinstance(record, dict):
            raise ValueError(f"{what}: need a mapping of curves, not {type(record).__name__}")
        views = ("close_up", "whole_car", "view_unread")
        raw = rule_from_record(_Stored, record, (*views, "whole_car_view_from"), what)
        curves = {name: LogisticCurve.from_record(getattr(raw, name), f"{what} {name}")
                  for name in views}  # fmt: skip
        return cls(**curves, whole_car_view_from=raw.whole_car_view_from)


@dataclass(frozen=True)
class _Stored:
    """A stored calibration's fields before its curves are read."""

    close_up: Any
    whole_car: Any
    view_unread: Any
    whole_car_view_from: Any
