"""The closer looks at a photo's four corners, taken where the first look finds damage:
crop geometry, what they add (only what the first look saw too, never in its place) and the
entry's field, answers known."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from cdat.errors import ModelUnavailable
from cdat.settings import Settings
from cdat.taxonomy import CarPart
from inference.crop_look import corner_crops, middle_crop, uncut
from inference.loading import build_analyzer
from inference.postprocess import RawDetections, agreeing
from inference.registry import Registry
from training.claims import without_looks_again

from .conftest import textured, write_registry
from .test_pipeline import IMGSZ, H, W, damage_det, part_det, photo
from .test_zoom_look import add_gate, analysed, boxes_of, middle_scene


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


def test_where_found_the_corners_add_only_what_the_first_look_saw_too(tmp_path: Path) -> None:
    # given a fake model that answers "dent at the left of what it is shown", and an entry
    # taking the middle and corner looks where damage is found
    looks = {"middle_look_where_found": True, "corner_looks_where_found": True}
    result = analysed(middle_scene(tmp_path, view_logit=10.0, **looks))
    # then the photo's own dent and the middle's are reported, and no corner's: each corner
    # copy lies where the first look saw nothing (the top left's overlaps the photo's own
    # dent at IoU 0.25, under the 0.3 the corners need)
    assert boxes_of(result) == [
        pytest.approx((20, 50, 100, 150), abs=1.5),
        pytest.approx((79.4, 66.3, 132.8, 132.8), abs=1.5),
    ]
    # and the entry is stored with the field
    stored = json.loads((tmp_path / "registry.json").read_text())
    damage = [e for e in stored["entries"] if e["task"] == "damage"]
    assert [e["corner_looks_where_found"] for e in damage] == [True]


def corner_scene(model_dir: Path) -> Settings:
    """A door filling the photo, the fake model's dent near the top left of what it is
    shown, and the middle and corner looks taken where damage is found."""
    parts = [part_det(CarPart.FRONT_LEFT_DOOR, (0, 0, 400, 200))]
    dent = damage_det("moderate-dent", (0, 0, 60, 60))
    settings = write_registry(model_dir, IMGSZ, [dent], parts)
    registry = Registry.load(model_dir)
    k = next(i for i, e in enumerate(registry.entries) if e.task == "damage")
    looks = {"middle_look_where_found": True, "corner_looks_where_found": True}
    registry.entries[k] = replace(registry.entries[k], **looks)
    registry.save()
    return add_gate(settings, 0.01, view_logit=10.0)


def test_a_corner_copy_the_first_look_agrees_with_is_joined_beside_it(tmp_path: Path) -> None:
    # given the first look's dent at the photo's top left corner, (0, 0, 60, 60)
    result = analysed(corner_scene(tmp_path))
    # then the top-left corner's copy, magnified 1.5x (0, 0, 40, 40 on the photo), overlaps
    # it at IoU 0.44 and is joined beside it, not in its place; the other corners' copies
    # sit on their inner edges and are cut; the middle's is pooled as served
    mx, my, _, _ = middle_crop(W, H)
    assert boxes_of(result) == [
        pytest.approx((0, 0, 40, 40), abs=1.5),
        pytest.approx((0, 0, 60, 60), abs=1.5),
        pytest.approx((mx, my, mx + 40, my + 40), abs=1.5),
    ]


def grid_raw(rows: list[tuple[int, int]], classes: list[int]) -> RawDetections:
    """Detections whose masks cover the given row ranges of a 10x10 grid."""
    masks = np.zeros((len(rows), 10, 10), bool)
    for k, (r0, r1) in enumerate(rows):
        masks[k, r0:r1] = True
    n = len(rows)
    return RawDetections(
        np.tile(np.array([0, 0, 10, 10], np.float32), (n, 1)), np.full(n, 0.5, np.float32),
        np.array(classes, np.int64), masks, 0.5,
    )  # fmt: skip


def test_agreeing_keeps_what_overlaps_the_first_look_at_the_mask_iou_whatever_the_type() -> None:
    # given the first look's one mask over rows 0-9 (100 cells), and a look's three: rows 0-4
    # of another type (IoU 0.5), rows 0-1 (IoU 0.2), rows 3-5 (IoU 0.3)
    first = grid_raw([(0, 10)], [0])
    found = grid_raw([(0, 5), (0, 2), (3, 6)], [1, 0, 0])
    # when kept at mask IoU 0.3
    kept = agreeing(found, first, 0.3)
    # then the first and third stay, in their order, with their types
    assert kept.masks.sum(axis=(1, 2)).tolist() == [50, 30]
    assert kept.class_ids.tolist() == [1, 0]
    # and with nothing seen by the first look, nothing agrees
    assert len(agreeing(found, grid_raw([], []), 0.3)) == 0
    assert len(agreeing(grid_raw([], []), first, 0.3)) == 0


def test_a_pass_for_the_verifiers_leaves_the_corners_out(tmp_path: Path) -> None:
    # given the analyzer of an entry taking the corners where damage is found
    analyzer = build_analyzer(corner_scene(tmp_path))
    assert analyzer.damage.corner_runtime is not None
    # when it is made to look once (as training passes do), the corners go with their field
    once = without_looks_again(analyzer.damage)
    assert once.corner_runtime is None and once.entry.corner_looks_where_found is False
    analyzer.damage = once
    (result,) = analyzer.analyze([photo(textured(W, H))])
    assert boxes_of(result) == [pytest.approx((0, 0, 60, 60), abs=1.5)]


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
