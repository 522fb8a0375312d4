"""The framing rule: which shot is told to step back or to move closer, at which bars."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mobile_api.capture.framing import MOVE_CLOSER, STEP_BACK, FramingRule, framing_issue
from mobile_api.capture.shots import CLOSEUPS, OVERVIEW

CHOSEN_ON_VAL = Path(__file__).parents[2] / "bench/results/capture-framing-val.json"
RULE = FramingRule(overview_below=0.1, closeup_above=0.8)


@pytest.mark.parametrize("shot", OVERVIEW)
def test_an_overview_shot_read_as_a_close_up_is_told_to_step_back(shot: str) -> None:
    assert framing_issue(shot, 0.05, RULE) == STEP_BACK
    assert framing_issue(shot, 0.1, RULE) is None  # at the bar: no advice
    assert framing_issue(shot, 0.99, RULE) is None


@pytest.mark.parametrize("shot", CLOSEUPS)
def test_a_close_up_read_as_the_whole_car_is_told_to_move_closer(shot: str) -> None:
    assert framing_issue(shot, 0.9, RULE) == MOVE_CLOSER
    assert framing_issue(shot, 0.8, RULE) is None
    assert framing_issue(shot, 0.01, RULE) is None


@pytest.mark.parametrize("shot", ["extra", "requested"])
def test_a_photo_of_no_framed_shot_is_never_advised(shot: str) -> None:
    assert framing_issue(shot, 0.0, RULE) is None
    assert framing_issue(shot, 1.0, RULE) is None


def test_the_served_bars_are_those_chosen_on_val() -> None:
    # the largest step-back bar telling at most 2 % of whole cars to step back, and the
    # smallest move-closer bar telling at most 2 % of each close-up source to move closer
    chosen = json.loads(CHOSEN_ON_VAL.read_text())["chosen"]
    assert FramingRule() == FramingRule(chosen["overview_below"], chosen["closeup_above"])
