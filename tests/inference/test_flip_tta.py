"""The mirrored second look: views merged geometry-exact, on detections whose answer is known."""

from __future__ import annotations

import numpy as np
import pytest

from cdat.taxonomy import CarPart
from inference.flip_tta import FlipMergedRuntime, merge_views, mirrored
from inference.loading import build_analyzer
from inference.postprocess import PostprocessConfig, RawDetections

from .conftest import textured, write_registry
from .test_pipeline import IMGSZ, H, W, damage_det, part_det, photo

CONFIG = PostprocessConfig(conf=0.1, iou=0.7)


def raw(boxes: list[tuple[float, float, float, float]], scores: list[float], width: int = 10
        ) -> RawDetections:  # fmt: skip
    """Detections on a 10-wide, 4-high grid, each mask its box's columns."""
    masks = np.zeros((len(boxes), 4, width), bool)
    for k, (x1, _, x2, _) in enumerate(boxes):
        masks[k, :, int(x1) : int(x2)] = True
    return RawDetections(
        np.array(boxes, np.float32).reshape(-1, 4),
        np.array(scores, np.float32),
        np.zeros(len(boxes), np.int64),
        masks,
        best_score=max(scores, default=0.0),
    )


def test_a_detection_on_the_mirrored_photo_is_mirrored_back() -> None:
    # given a detection over columns 1-3 of a 10-wide mirrored photo
    back = mirrored(raw([(1, 0, 3, 4)], [0.5]), width=10)
    # then on the photo itself it covers columns 7-9, box and mask alike
    assert back.boxes.tolist() == [[7, 0, 9, 4]]
    assert np.flatnonzero(back.masks[0, 0]).tolist() == [7, 8]


def test_the_views_merge_to_one_detection_per_damage_at_the_higher_score() -> None:
    # given the upright view finds a damage at columns 0-4 (0.3); the mirrored view finds
    # the same one (columns 6-10 as it saw them, 0.6) and another only it sees (0.2)
    upright = raw([(0, 0, 4, 4)], [0.3])
    flipped = raw([(6, 0, 10, 4), (0, 0, 2, 4)], [0.6, 0.2])
    # when merged
    merged = merge_views(upright, flipped, 10, CONFIG)
    # then the shared damage is reported once, at 0.6, and the other one mirrored back
    assert sorted(merged.scores.tolist()) == pytest.approx([0.2, 0.6])
    assert sorted(merged.boxes.tolist()) == [[0, 0, 4, 4], [8, 0, 10, 4]]
    assert merged.best_score == pytest.approx(0.6)
    # and with nothing in the mirrored view the upright detections stand as they were
    alone = merge_views(upright, raw([], []), 10, CONFIG)
    assert alone.boxes.tolist() == upright.boxes.tolist() and alone.scores.tolist() == [
        pytest.approx(0.3)
    ]


def test_the_served_analyzer_reports_damage_either_view_finds(tmp_path) -> None:
    # given a damage model that always answers "dent at the left edge" (a fake model: the
    # same output whatever it is shown), a door across the photo, and the mirrored look on
    parts = [part_det(CarPart.FRONT_LEFT_DOOR, (0, 0, 400, 200))]
    damages = [damage_det("moderate-dent", (20, 50, 100, 150), 0.8)]
    settings = write_registry(tmp_path / "models", IMGSZ, damages, parts)
    tta = settings.model_copy(update={"damage_flip_tta": True})
    # when the photo is analysed with and without it
    (plain,) = build_analyzer(settings).analyze([photo(textured(W, H))])
    analyzer = build_analyzer(tta)
    (looked_twice,) = analyzer.analyze([photo(textured(W, H))])
    # then the mirrored view's dent (at the right edge once mirrored back) is reported too
    assert isinstance(analyzer.damage.runtime, FlipMergedRuntime)
    assert [round(d.box.x1) for d in plain.damages] == [20]
    assert sorted(round(d.box.x1) for d in looked_twice.damages) == [20, 300]
    assert all(d.part is CarPart.FRONT_LEFT_DOOR for d in looked_twice.damages)
