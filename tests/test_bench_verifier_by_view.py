"""The verifier-by-view bench (bench/bench_verifier_by_view.py): which verifier answers where."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from bench.bench_verifier_by_view import by_view, get_args_parser, main, views_per_source
from cdat.findings import Box, PartInstance, PhotoAnalysis
from cdat.taxonomy import CarPart
from cdat.whole_car import WholeCarRule
from training.errors import TrainingError
from training.rule_sweep import PhotoRecord

RULE = WholeCarRule(min_parts=3, max_part_share=0.5)


def _photo(source: str, name: str, parts: int) -> PhotoRecord:
    """A 100 x 100 photo on which the part model found `parts` small parts."""
    found = tuple(
        PartInstance(part, 0.9, Box(10.0 * k, 10.0, 10.0 * k + 8, 18.0))
        for k, part in enumerate(list(CarPart)[:parts])
    )
    return PhotoRecord(source, name, PhotoAnalysis(name, 100, 100, parts=found))


def test_whole_car_views_are_read_by_one_verifier_and_every_other_photo_by_the_other() -> None:
    from bench.bench_verifier_by_view import whole_car_views

    # given a whole-car view and a close-up, each with answers from both verifiers
    whole, close = _photo("car-parts", "car.jpg", parts=4), _photo("cpd", "dent.jpg", parts=1)
    records = [whole, close]
    served = {id(r.analysis): np.array([0.1, 0.2], np.float32) for r in records}
    tuned = {id(r.analysis): np.array([0.8, 0.9], np.float32) for r in records}
    # when the table is made by view
    views = whole_car_views(records, RULE)
    table = by_view(served, tuned, views)
    # then the whole-car view keeps the served answers and the close-up takes the tuned ones
    assert views == {id(whole.analysis): True, id(close.analysis): False}
    assert table[id(whole.analysis)].tolist() == pytest.approx([0.1, 0.2])
    assert table[id(close.analysis)].tolist() == pytest.approx([0.8, 0.9])
    # and a photo neither verifier read (no detections) is in neither table nor the result
    assert set(table) == set(served)


def test_a_view_read_by_the_gate_decides_where_the_rule_asked_names_one() -> None:
    from dataclasses import replace

    from bench.bench_verifier_by_view import whole_car_views

    # given a photo of four small parts the gate read as a close-up, and one of one part
    # the gate read as a whole car
    many, few = _photo("car-parts", "car.jpg", parts=4), _photo("cpd", "far.jpg", parts=1)
    many = replace(many, analysis=replace(many.analysis, whole_car_view_probability=0.2))
    few = replace(few, analysis=replace(few.analysis, whole_car_view_probability=0.7))
    # then a rule that reads views follows the gate, and one that does not counts parts
    by_view = replace(RULE, view_probability=0.5)
    assert whole_car_views([many, few], by_view) == {
        id(many.analysis): False,
        id(few.analysis): True,
    }
    assert whole_car_views([many, few], RULE) == {id(many.analysis): True, id(few.analysis): False}


def test_a_large_part_makes_a_photo_a_close_up_however_many_parts_it_shows() -> None:
    from bench.bench_verifier_by_view import whole_car_views

    # given a photo with four parts, one of which fills most of the frame
    photo = _photo("car-parts", "near.jpg", parts=3)
    big = PartInstance(CarPart.HOOD, 0.9, Box(0.0, 0.0, 90.0, 90.0))
    near = PhotoRecord(
        "car-parts",
        "near.jpg",
        PhotoAnalysis("near.jpg", 100, 100, parts=(*photo.analysis.parts, big)),
    )
    # then it is no whole-car view, and it is counted so per source
    views = whole_car_views([near, _photo("car-parts", "car.jpg", parts=4)], RULE)
    assert sorted(views.values()) == [False, True]
    records = [near, _photo("car-parts", "car.jpg", parts=4)]
    counted = views_per_source(records, whole_car_views(records, RULE))
    assert counted == {"car-parts": {"photos": 2, "whole_car_views": 1}}


def test_a_missing_closeup_verifier_is_one_error_before_any_work(tmp_path: Path) -> None:
    args = get_args_parser().parse_args(
        [
            "--cache",
            str(tmp_path / "none.pkl"),
            "--closeup-verifier",
            str(tmp_path / "v.onnx"),
            "--out",
            str(tmp_path / "out.json"),
        ]
    )
    with pytest.raises(TrainingError, match=r"--closeup-verifier .*v\.onnx: no such file"):
        main(args)
    assert not (tmp_path / "out.json").exists()


def test_a_missing_whole_car_verifier_is_one_error_before_any_work(tmp_path: Path) -> None:
    # given a close-up verifier that exists and a whole-car verifier that does not
    near = tmp_path / "near.onnx"
    near.write_bytes(b"stage")
    args = get_args_parser().parse_args(
        ["--cache", str(tmp_path / "none.pkl"), "--closeup-verifier", str(near),
         "--whole-car-verifier", str(tmp_path / "head.onnx"), "--whole-car-probabilities",
         "0.8", "0.9", "--out", str(tmp_path / "out.json")]
    )  # fmt: skip
    # then the bench stops on it before reading the pass, and writes nothing
    with pytest.raises(TrainingError, match=r"--whole-car-verifier .*head\.onnx: no such file"):
        main(args)
    assert not (tmp_path / "out.json").exists()
    assert args.whole_car_probabilities == [0.8, 0.9]


def test_a_closeup_rule_from_another_base_conf_is_refused(tmp_path: Path) -> None:
    # given a close-up rule whose base_conf is not the served rule's (0.1 as promoted)
    near = tmp_path / "near.onnx"
    near.write_bytes(b"stage")
    args = get_args_parser().parse_args(
        ["--cache", str(tmp_path / "none.pkl"), "--closeup-verifier", str(near),
         "--closeup-rule", '{"base_conf": 0.3, "min_probability": 0.4}',
         "--whole-car-probabilities", "0.8", "--out", str(tmp_path / "out.json")]
    )  # fmt: skip
    # then it is one error naming both, before any work
    with pytest.raises(TrainingError, match=r"--closeup-rule: base_conf 0\.3 is not the served"):
        main(args)
    assert not (tmp_path / "out.json").exists()


def test_a_closeup_rule_with_no_bar_to_serve_it_at_is_refused(tmp_path: Path) -> None:
    # given a close-up rule asked without the whole-car bars whose rows it serves
    near = tmp_path / "near.onnx"
    near.write_bytes(b"stage")
    given = ["--cache", str(tmp_path / "none.pkl"), "--closeup-verifier", str(near),
             "--out", str(tmp_path / "out.json")]  # fmt: skip
    rule = '{"base_conf": 0.1, "min_probability": 0.4}'
    args = get_args_parser().parse_args([*given, "--closeup-rule", rule])
    # then it is one error rather than a rule silently unused
    with pytest.raises(TrainingError, match="--closeup-rule serves the rows of"):
        main(args)
    # and a bar outside 0-1 is refused too
    args = get_args_parser().parse_args([*given, "--whole-car-probabilities", "0.8", "1.5"])
    with pytest.raises(TrainingError, match=r"--whole-car-probabilities 1\.5: need 0 <= p <= 1"):
        main(args)
    assert not (tmp_path / "out.json").exists()


def _row(found: tuple[float, float, float], cars: float, closeups: float) -> dict[str, object]:
    sources = ("car-parts-damage", "damaged-parts", "damage-severity")
    return {"damage_recall_iou30": dict(zip(sources, found, strict=True)),
            "intact_photos_with_damage": cars, "intact_closeups_with_damage": closeups}  # fmt: skip


def test_the_closeup_rule_chosen_finds_most_within_the_intact_bounds() -> None:
    from bench.bench_verifier_by_view import choose_closeup_rule

    # given rows that find more the more intact photos they flag
    within = _row((0.8, 0.7, 0.3), 0.02, 0.20)
    rows = [
        _row((0.9, 0.8, 0.4), 0.04, 0.10),  # too many intact cars
        _row((0.9, 0.8, 0.4), 0.02, 0.25),  # too many intact close-ups
        within,
        _row((0.8, 0.7, 0.3), 0.00, 0.15),  # as much found, fewer close-ups: the tie's winner
        _row((0.7, 0.7, 0.3), 0.00, 0.05),
    ]
    # then the most found within the bounds wins, fewer intact close-ups breaking the tie
    assert choose_closeup_rule(rows) is rows[3]
    assert choose_closeup_rule(rows[:3]) is within
    # and where no row is within the bounds, none is chosen
    assert choose_closeup_rule(rows[:2]) is None


def test_each_view_is_served_by_its_own_rule() -> None:
    from bench.bench_verifier_by_view import by_view_rule, whole_car_views

    # given a whole-car view and a close-up, and a rule for each that marks what it served
    whole, close = _photo("car-parts", "car.jpg", parts=4), _photo("cpd", "dent.jpg", parts=1)
    views = whole_car_views([whole, close], RULE)

    def marked(name: str) -> Callable[[PhotoAnalysis], PhotoAnalysis]:
        return lambda analysis: PhotoAnalysis(name, analysis.width, analysis.height)

    rule = by_view_rule(marked("whole-car rule"), marked("close-up rule"), views)
    # then each photo is served by its view's rule
    assert rule(whole.analysis).photo_id == "whole-car rule"
    assert rule(close.analysis).photo_id == "close-up rule"


def test_the_whole_car_rule_asked_decides_which_verifier_reads_a_photo() -> None:
    from dataclasses import replace

    from bench.bench_verifier_by_view import served_by_view
    from cdat.findings import DamageInstance
    from cdat.taxonomy import DamageType, Severity
    from cdat.verified import VerifierRule

    # given a photo showing four parts with one faint dent, which the whole-car verifier
    # scores under its whole-car bar and the close-up verifier over its rule
    photo = _photo("damaged-parts", "dent.jpg", parts=4)
    dent = DamageInstance(DamageType.DENT, Severity.MINOR, 0.05, Box(40.0, 40.0, 60.0, 60.0))
    records = [replace(photo, analysis=replace(photo.analysis, damages=(dent,)))]
    key = id(records[0].analysis)
    whole_car = {key: np.array([0.7], np.float32)}
    closeup = {key: np.array([0.7], np.float32)}
    rule = VerifierRule(base_conf=0.1, min_probability=0.5, whole_car_probability=0.8)
    # when it is served with views read at 3+ parts and at 5+ parts
    at_three = served_by_view(whole_car, closeup, records, RULE, rule, 0.02)
    at_five = served_by_view(whole_car, closeup, records, replace(RULE, min_parts=5), rule, 0.02)
    # then at 3+ it is a whole car, where the bar drops the dent; at 5+ a close-up, kept
    assert at_three(records[0].analysis).damages == ()
    assert at_five(records[0].analysis).damages == (dent,)


def test_a_whole_car_rule_that_is_not_json_is_refused_by_the_parser(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit):
        get_args_parser().parse_args(
            ["--cache", "c.pkl", "--closeup-verifier", "v.onnx", "--whole-car-rules", "six"]
        )
    assert "argument --whole-car-rules: 'six'" in capsys.readouterr().err
