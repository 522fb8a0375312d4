"""The closer looks at a photo's four corners, taken where the first look finds damage:
crop geometry, pooling and the entry's field, answers known."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from cdat.errors import ModelUnavailable
from inference.crop_look import corner_crops, middle_crop, uncut
from inference.loading import build_analyzer
from inference.postprocess import RawDetections

from .test_pipeline import H, W
from .test_zoom_look import analysed, boxes_of, middle_scene


def test_the_corner_crops_are_the_middle_crops_size_at_each_corner() -> None:
    assert corner_crops(300, 150) == [
        (0, 0, 200, 100), (100, 0, 300, 100), (0, 50, 200, 150), (100, 50, 300, 150),
    ]  # fmt: skip
    x0, y0, x1, y1 = middle_crop(300, 150)
    assert all((c[2] - c[0], c[3] - c[1]) == (x1 - x0, y1 - y0) for c in corner_crops(300, 150))


def test_a_corner_keeps_what_its_inner_edges_do_not_cut() -> None:
    # given the top-left crop (0,0)-(200,100) of a 300x150 photo, whose right and bottom
    # edges lie inside the photo, and four detections on it (crop pixels)
    boxes = [[0, 0, 50, 40], [150, 20, 199.5, 60], [60, 70, 120, 99.5], [60, 10, 197, 97]]
    raw = RawDetections(
        np.array(boxes, np.float32), np.array([0.5, 0.6, 0.7, 0.8], np.float32),
        np.arange(4), np.ones((4, 3, 3), bool), 0.8,
    )  # fmt: skip
    # when those its inner edges cut are left out (within 1% of the side: 2 px, 1 px)
    kept = uncut(raw, (0, 0, 200, 100), 300, 150)
    # then the one at the photo's own corner and the one just inside both edges stay
    assert kept.scores.tolist() == pytest.approx([0.5, 0.8])
    assert kept.masks.shape == (2, 3, 3)
    # and the bottom-right crop cuts at its left and top edges instead
    moved = uncut(raw, (100, 50, 300, 150), 300, 150)
    assert moved.scores.tolist() == pytest.approx([0.6, 0.7, 0.8])


def shifted(box: tuple[float, ...], dx: float, dy: float) -> tuple[float, ...]:
    return (box[0] + dx, box[1] + dy, box[2] + dx, box[3] + dy)


def test_where_found_the_corners_are_looked_at_beside_the_middle(tmp_path: Path) -> None:
    # given a fake model that answers "dent at the left of what it is shown", and an entry
    # taking the middle and corner looks where damage is found
    looks = {"middle_look_where_found": True, "corner_looks_where_found": True}
    result = analysed(middle_scene(tmp_path, view_logit=10.0, **looks))
    # then each corner crop's dent is reported where the middle crop's sits in its crop,
    # beside the photo's own and the middle's
    mx, my, _, _ = middle_crop(W, H)
    in_middle = (79.4, 66.3, 132.8, 132.8)
    corners = [shifted(in_middle, x0 - mx, y0 - my) for x0, y0, _, _ in corner_crops(W, H)]
    expected = sorted([(20, 50, 100, 150), in_middle, *corners])
    assert boxes_of(result) == [pytest.approx(box, abs=1.5) for box in expected]
    # and the entry is stored with the field
    stored = json.loads((tmp_path / "registry.json").read_text())
    damage = [e for e in stored["entries"] if e["task"] == "damage"]
    assert [e["corner_looks_where_found"] for e in damage] == [True]


def test_without_the_field_the_corners_are_not_looked_at_and_the_entry_is_stored_as_before(
    tmp_path: Path,
) -> None:
    result = analysed(middle_scene(tmp_path, view_logit=10.0, middle_look_where_found=True))
    assert len(result.damages) == 2
    stored = json.loads((tmp_path / "registry.json").read_text())
    assert all("corner_looks_where_found" not in e for e in stored["entries"])


@pytest.mark.parametrize(
    "looks",
    [
        {"middle_look_where_found": True, "corner_looks_where_found": "yes"},
        {"corner_looks_where_found": True},
    ],
)
def test_the_corner_looks_need_a_bool_and_the_middle_look_beside_them(
    tmp_path: Path, looks: dict[str, object]
) -> None:
    settings = middle_scene(tmp_path, view_logit=10.0, **looks)
    with pytest.raises(ModelUnavailable, match="corner_looks_where_found"):
        build_analyzer(settings)
