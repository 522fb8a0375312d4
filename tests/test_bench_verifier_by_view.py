"""The verifier-by-view bench (bench/bench_verifier_by_view.py): which verifier answers where."""

from __future__ import annotations

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
