"""Whether a photo is framed as its shot asks: the whole corner of the car, or close to
the damage.

The vehicle gate reads each photo's view in the same pass as the vehicle
(`inference.vehicle_gate.GateReading.whole_car_view`). An overview shot the gate reads as
a close-up leaves the car's end and side unseen (where the estimate places a door or a
fender); a damage close-up read as the whole car shows the damage too small for the damage
model to outline. Either is said to the claimant as advice, never a refusal: the gate can
be wrong, and the photo still goes on the claim. The bars are chosen on val so that few
well-framed photos are told otherwise (`bench/bench_capture_framing.py`).
"""

from __future__ import annotations

from dataclasses import dataclass

from mobile_api.capture.shots import CLOSEUPS, OVERVIEW

STEP_BACK = "not_whole_car"
"""An overview shot that reads as a close-up."""
MOVE_CLOSER = "not_a_closeup"
"""A damage close-up that reads as the whole car."""


@dataclass(frozen=True)
class FramingRule:
    overview_below: float = 0.1
    """An overview shot is told to step back under this whole-car probability."""
    closeup_above: float = 0.8
    """A damage close-up is told to move closer over this whole-car probability."""


def framing_issue(shot: str, whole_car_probability: float, rule: FramingRule) -> str | None:
    """The advice for a photo taken as `shot`, or None when its framing fits the shot (or
    the shot asks for no framing: an extra or requested photo)."""
    if shot in OVERVIEW and whole_car_probability < rule.overview_below:
        return STEP_BACK
    if shot in CLOSEUPS and whole_car_probability > rule.closeup_above:
        return MOVE_CLOSER
    return None
