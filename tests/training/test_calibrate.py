"""`python -m training.calibrate`: curves fitted to known samples, measured, and refused."""

from __future__ import annotations

import json
import math
from dataclasses import replace

import numpy as np
import pytest

from cdat.findings import Box, DamageInstance, PhotoAnalysis
from cdat.taxonomy import DamageType, Severity
from training.calibrate import (
    CalibrationParams,
    Sample,
    calibration_error,
    fit,
    fit_curve,
    get_args_parser,
    main,
    photo_samples,
)
from training.errors import TrainingError
from training.outline_tally import Outline


def drawn(slope: float, intercept: float, n: int, view: float | None, seed: int) -> list[Sample]:
    """Samples whose on-a-label is drawn from a known curve of the score's log-odds."""
    rng = np.random.default_rng(seed)
    scores = rng.uniform(0.02, 0.98, n)
    chance = 1 / (1 + np.exp(-(slope * np.log(scores / (1 - scores)) + intercept)))
    on = rng.uniform(size=n) < chance
    return [Sample("s", float(s), view, bool(o)) for s, o in zip(scores, on, strict=True)]


def test_the_fit_recovers_the_curve_the_samples_were_drawn_from():
    # given close-ups drawn from slope 0.6, intercept 1.5 and whole cars from 1.4, -2
    samples = drawn(0.6, 1.5, 6000, 0.1, seed=1) + drawn(1.4, -2.0, 6000, 0.9, seed=2)
    # when a calibration is fitted
    calibration = fit(samples, CalibrationParams())
    # then each view's curve is its own, within sampling error
    assert calibration.close_up.slope == pytest.approx(0.6, abs=0.1)
    assert calibration.close_up.intercept == pytest.approx(1.5, abs=0.15)
    assert calibration.whole_car.slope == pytest.approx(1.4, abs=0.15)
    assert calibration.whole_car.intercept == pytest.approx(-2.0, abs=0.2)
    # and the chances it gives are calibrated where the scores are not
    close = [s for s in samples if s.view == 0.1]
    chances = [calibration.close_up.chance(s.score) for s in close]
    actual = [s.on_label for s in close]
    assert calibration_error(chances, actual, 10) < 0.03
    assert calibration_error([s.score for s in close], actual, 10) > 0.15


def test_a_view_whose_damages_all_lie_on_labels_fits_no_curve():
    with pytest.raises(TrainingError, match="both on and off"):
        fit_curve([Sample("s", 0.3, 0.1, True), Sample("s", 0.6, 0.1, True)], 1e-3)
    with pytest.raises(TrainingError, match="whole_car: 0 damages"):
        fit(drawn(1.0, 0.0, 200, 0.1, seed=3), CalibrationParams())


def test_a_score_that_falls_with_the_chance_fits_no_curve():
    with pytest.raises(TrainingError, match="does not rise"):
        fit_curve(drawn(-1.0, 0.0, 2000, 0.1, seed=4), 1e-3)


def test_the_calibration_error_of_known_bins():
    # nine of ten at 0.9 lie on a label: calibrated; four at 0.5, all on: off by a half
    assert calibration_error([0.9] * 10, [True] * 9 + [False], 10) == pytest.approx(0.0)
    assert calibration_error([0.5] * 4, [True] * 4, 10) == pytest.approx(0.5)
    # weighted by each bin's damages
    both = calibration_error([0.9] * 10 + [0.5] * 10, [True] * 9 + [False] + [True] * 10, 10)
    assert both == pytest.approx(0.25)
    assert math.isnan(calibration_error([], [], 10))


def square(x: int, y: int, side: int) -> tuple[tuple[float, float], ...]:
    return ((x, y), (x + side, y), (x + side, y + side), (x, y + side))


def test_a_photo_s_samples_are_its_damages_an_adjuster_reads_each_on_or_off_its_labels():
    # given a photo with a dent on the labelled region, the same dent outlined again less
    # surely, and a scratch far off it
    on = DamageInstance(
        DamageType.DENT, Severity.MINOR, 0.4, Box(10, 10, 40, 40), square(10, 10, 30)
    )
    again = DamageInstance(
        DamageType.DENT, Severity.MINOR, 0.1, Box(10, 10, 40, 40), square(10, 10, 30)
    )
    off = DamageInstance(
        DamageType.SCRATCH, Severity.MINOR, 0.2, Box(60, 60, 90, 90), square(60, 60, 30)
    )
    analysis = PhotoAnalysis(
        "p", 100, 100, damages=(on, again, off), whole_car_view_probability=0.2
    )
    label = np.zeros((100, 100), dtype=bool)
    label[8:45, 8:45] = True
    # when sampled
    samples = list(photo_samples("damaged-parts", analysis, [Outline(label)]))
    # then the repeat is left out and the other two say whether they lie on the label
    assert samples == [
        Sample("damaged-parts", 0.4, 0.2, True),
        Sample("damaged-parts", 0.2, 0.2, False),
    ]
    # and on an intact car (no labels) every damage lies off
    assert [s.on_label for s in photo_samples("car-parts", analysis, [])] == [False, False]


def test_a_fit_from_samples_writes_the_record_and_a_check_reads_it(tmp_path, capsys):
    # given samples an earlier run wrote
    near = [replace(s, source="near") for s in drawn(0.7, 1.0, 800, 0.2, seed=5)]
    samples = near + [replace(s, source="far") for s in drawn(1.0, -1.0, 800, 0.8, seed=6)]
    path = tmp_path / "samples.json"
    path.write_text(json.dumps([s.__dict__ for s in samples]))
    # when a calibration is fitted from them
    args = get_args_parser().parse_args(["--samples", str(path), "--out", str(tmp_path / "fit")])
    assert main(args) == 0
    # then it is written as a registry record, with a report of each view
    record = json.loads((tmp_path / "fit" / "calibration.json").read_text())
    assert set(record) == {"close_up", "whole_car", "view_unread", "whole_car_view_from"}
    report = json.loads((tmp_path / "fit" / "report.json").read_text())
    assert report["views"]["close_up"]["damages"] == 800
    assert report["views"]["view_unread"]["damages"] == 1600
    assert report["views"]["whole_car"]["ece_chance"] < report["views"]["whole_car"]["ece_score"]
    # and each source's own figures, so a source the curve reads wrongly shows
    assert set(report["views"]["close_up"]["per_source"]) == {"near"}
    assert set(report["views"]["view_unread"]["per_source"]) == {"near", "far"}
    near = report["views"]["close_up"]["per_source"]["near"]
    assert near["damages"] == 800 and near["on_label"] == pytest.approx(
        sum(s.on_label for s in samples[:800]) / 800, abs=1e-4
    )
    # and checking it on other samples reports, and fits nothing
    check = ["--samples", str(path), "--check", str(tmp_path / "fit" / "calibration.json"),
             "--split", "test", "--out", str(tmp_path / "check")]  # fmt: skip
    assert main(get_args_parser().parse_args(check)) == 0
    checked = json.loads((tmp_path / "check" / "report.json").read_text())
    assert checked["checked"] == record
    assert not (tmp_path / "check" / "calibration.json").exists()


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--split", "test"], "--split test fits nothing"),
        (["--whole-car-view-from", "0"], "--whole-car-view-from 0.0"),
        (["--l2", "-1"], "--l2 -1.0"),
        (["--samples", "{missing}"], "no samples file"),
        (["--samples", "{bad}"], "no samples file"),
        (["--check", "{bad}"], "not a calibration"),
    ],
)
def test_a_bad_option_is_an_error_before_any_photo_is_read(tmp_path, argv, message):
    bad = tmp_path / "bad.json"
    bad.write_text('{"close_up": 1}')
    argv = [a.format(missing=tmp_path / "none.json", bad=bad) for a in argv]
    args = get_args_parser().parse_args([*argv, "--out", str(tmp_path / "out")])
    with pytest.raises(TrainingError, match=message):
        main(args)
    assert not (tmp_path / "out").exists()


def test_an_out_that_is_a_file_is_refused(tmp_path):
    taken = tmp_path / "taken"
    taken.write_text("")
    with pytest.raises(TrainingError, match="is a file"):
        main(get_args_parser().parse_args(["--out", str(taken)]))
