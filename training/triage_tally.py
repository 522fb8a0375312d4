"""Each held-out photo as a claim of its own, triaged as the service triages one: how many go
straight through (no adjuster sees them) and why the rest do not.

A photo is assessed by `cdat.pipeline.assess_claim` with the shipped policy (`Settings()`'s
catalog, rules and triage), no corrections, no fraud signals (held-out photos carry no
capture time or place, which would send every one to an adjuster for that alone), and one
fixed vehicle (`VEHICLE`: it sets the price class, and so whether a total passes the
straight-through limit). What it answers: a damaged photo that goes straight through is
priced without an adjuster; an intact one (`car-parts`, its close-up windows) that goes
straight through is a claim paid for damage the car does not have.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from cdat.assessment import TriageDecision
from cdat.claims import BodyType, ClaimContext, Vehicle
from cdat.corrections import Corrections
from cdat.findings import PhotoAnalysis
from cdat.pipeline import AssessmentPolicy, assess_claim, load_policy

VEHICLE = Vehicle("Maruti Suzuki", "Swift", 2020, BodyType.HATCHBACK)
CONTEXT = ClaimContext("held-out", VEHICLE, date(2026, 1, 1), None, ())


def shipped_policy() -> AssessmentPolicy:
    """The policy the service assesses with by default (`Settings()`'s catalog and rules)."""
    from cdat.settings import Settings

    return load_policy(Settings())


@dataclass
class TriageTally:
    policy: AssessmentPolicy
    photos: int = 0
    through: int = 0
    damaged: int = 0
    damaged_through: int = 0
    reasons: Counter[str] = field(default_factory=Counter)
    """Reason code -> photos it fires on (once a photo, however many findings give it)."""

    @classmethod
    def shipped(cls) -> TriageTally:
        return cls(shipped_policy())

    def add(self, analysis: PhotoAnalysis) -> None:
        decided = assess_claim([analysis], Corrections(), CONTEXT, (), {}, self.policy).triage
        assert decided is not None  # assess_claim always triages
        through = decided.decision is TriageDecision.STRAIGHT_THROUGH
        self.photos += 1
        self.through += through
        self.damaged += bool(analysis.damages)
        self.damaged_through += through and bool(analysis.damages)
        self.reasons.update({reason.code for reason in decided.reasons})

    def report(self) -> dict[str, Any]:
        def share(part: int, whole: int) -> float | None:
            return part / whole if whole else None

        return {
            "photos": self.photos,
            "straight_through": share(self.through, self.photos),
            "found_damaged": self.damaged,
            "damaged_straight_through": share(self.damaged_through, self.damaged),
            "reasons": {code: share(n, self.photos) for code, n in sorted(self.reasons.items())},
        }
