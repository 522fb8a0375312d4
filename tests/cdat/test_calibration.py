"""A damage's score read as a chance: one rising curve per view, stored as a record."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest

from cdat.calibration import ConfidenceCalibration, LogisticCurve
from cdat.findings import Box, DamageInstance
from cdat.taxonomy import DamageType, Severity

RECORD = {
    "close_up": {"slope": 0.8, "intercept": 2.0},
    "whole_car": {"slope": 1.2, "intercept": -0.5},
    "view_unread": {"slope": 1.0, "intercept": 1.0},
    "whole_car_view_from": 0.5,
}


def damage(confidence: float) -> DamageInstance:
    return DamageInstance(DamageType.DENT, Severity.MINOR, confidence, Box(0, 0, 10, 10))


def test_a_curve_reads_a_score_by_its_log_odds():
    # given a curve of slope 2 and intercept 1
    curve = LogisticCurve(2.0, 1.0)
    # then a score of 0.5 (log-odds 0) reads as 1 / (1 + e^-1), and 0.2 as its log-odds say
    assert curve.chance(0.5) == pytest.approx(1 / (1 + math.exp(-1)))
    z = 2 * math.log(0.2 / 0.8) + 1
    assert curve.chance(0.2) == pytest.approx(1 / (1 + math.exp(-z)))
    # and scores of 0 and 1 read as finite chances strictly inside (0, 1)
    assert 0 < curve.chance(0.0) < curve.chance(0.02) < curve.chance(0.99) < curve.chance(1.0) < 1


@pytest.mark.parametrize(
    ("slope", "intercept", "message"),
    [(0.0, 1.0, "rising"), (-1.0, 0.0, "rising"), ("1", 0.0, "number"), (1.0, math.inf, "finite"),
     (True, 0.0, "number")],
)  # fmt: skip
def test_a_curve_that_would_reorder_or_break_damages_is_refused(slope, intercept, message):
    with pytest.raises(ValueError, match=message):
        LogisticCurve(slope, intercept)


def test_each_view_takes_its_own_curve_and_the_surer_damage_stays_surer():
    # given the calibration and a photo's three damages, ranked by score
    calibration = ConfidenceCalibration.from_record(RECORD)
    found = (damage(0.04), damage(0.3), damage(0.03))
    # when read on a close-up, at the whole-car bar, and with no view read
    close_up = calibration.calibrated(found, 0.1)
    whole_car = calibration.calibrated(found, 0.5)
    unread = calibration.calibrated(found, None)
    # then each is read by its view's curve, its score kept
    assert close_up[0].chance == pytest.approx(LogisticCurve(0.8, 2.0).chance(0.04), abs=1e-4)
    assert whole_car[0].chance == pytest.approx(LogisticCurve(1.2, -0.5).chance(0.04), abs=1e-4)
    assert unread[0].chance == pytest.approx(LogisticCurve(1.0, 1.0).chance(0.04), abs=1e-4)
    # and the scores' order holds in every view, everything else about a damage unchanged
    for read in (close_up, whole_car, unread):
        assert read[1].certainty > read[0].certainty > read[2].certainty
        assert [replace(d, chance=None) for d in read] == list(found)


def test_a_calibration_is_stored_and_read_back_as_it_was():
    calibration = ConfidenceCalibration.from_record(RECORD)
    assert calibration.to_record() == RECORD
    assert ConfidenceCalibration.from_record(calibration.to_record()) == calibration


@pytest.mark.parametrize(
    ("record", "message"),
    [
        ({**RECORD, "flat": {}}, "unknown field"),
        ({k: v for k, v in RECORD.items() if k != "whole_car"}, "whole_car is required"),
        ({**RECORD, "whole_car": [1, 2]}, "whole_car: need a mapping"),
        ({**RECORD, "close_up": {"slope": 1.0}}, "close_up: intercept is required"),
        ({**RECORD, "view_unread": {"slope": -2.0, "intercept": 0}}, "view_unread: slope"),
        ({**RECORD, "whole_car_view_from": 0}, "whole_car_view_from"),
        ({**RECORD, "whole_car_view_from": "half"}, "whole_car_view_from"),
        ([RECORD], "need a mapping of curves"),
    ],
)
def test_a_damaged_record_is_an_error_naming_what_is_wrong(record, message):
    with pytest.raises(ValueError, match=message):
        ConfidenceCalibration.from_record(record)
