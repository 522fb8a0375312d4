"""The zoomed-out second look: canvas geometry, detections brought back, pooling that keeps
the photo's own layers; answers known from first principles."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from cdat.errors import ModelUnavailable
from cdat.findings import PhotoAnalysis
from cdat.settings import Settings
from cdat.taxonomy import CarPart
from inference.imaging import letterbox, to_tensor
from inference.loading import build_analyzer
from inference.postprocess import PostprocessConfig, RawDetections, grid_shape, pooled
from inference.registry import Registry, sha256_of
from inference.zoom_look import CANVAS_GREY, brought_back, canvas_of, zoomed_out

from .conftest import DAMAGE_CLASSES, make_fake_model, textured, write_registry
from .test_pipeline import IMGSZ, H, W, damage_det, part_det, photo
from .test_vehicle_gate import add_gate


def detections(boxes: list[list[float]], masks: np.ndarray, layers: object = None) -> RawDetections:
    n = len(boxes)
    return RawDetections(
        np.array(boxes, np.float32).reshape(n, 4), np.full(n, 0.5, np.float32),
        np.zeros(n, np.int64), masks, 0.5, layers,  # type: ignore[arg-type]
    )  # fmt: skip


def test_the_photo_sits_in_the_middle_of_a_grey_canvas_half_as_large_again() -> None:
    # given a 200x100 photo of one colour
    image = np.full((100, 200, 3), 7, np.uint8)
    # when it is zoomed out
    canvas = zoomed_out(image)
    # then the canvas is 300x150, the photo at (50, 25), grey around it
    assert canvas_of(200, 100) == (300, 150, 50, 25)
    assert canvas.shape == (150, 300, 3)
    assert (canvas[25:125, 50:250] == 7).all()
    assert (canvas[:25] == CANVAS_GREY).all() and (canvas[:, :50] == CANVAS_GREY).all()


def test_a_detection_on_the_canvas_is_brought_back_onto_the_photo() -> None:
    # given a 200x100 photo's canvas (300x150, photo at (50, 25)) and a detection over the
    # photo's left half there, its mask on the canvas's grid, and one on the grey alone
    canvas_rows, canvas_cols = grid_shape(300, 150)
    masks = np.zeros((2, canvas_rows, canvas_cols), bool)
    scale = canvas_cols / 300
    masks[0, round(25 * scale) : round(125 * scale), round(50 * scale) : round(150 * scale)] = True
    masks[1, :5, :5] = True
    raw = detections([[40, 25, 150, 125], [0, 0, 20, 20]], masks)
    # when brought back
    back = brought_back(raw, 200, 100)
    # then the box is shifted by the photo's corner and cut to the photo, the grey one gone
    assert back.boxes.tolist() == [[0, 0, 100, 100]]
    # and the mask covers the photo's left half on the photo's own grid
    rows, cols = grid_shape(200, 100)
    assert back.masks.shape == (1, rows, cols)
    covered = np.nonzero(back.masks[0])
    assert covered[1].min() == 0 and covered[1].max() + 1 == pytest.approx(cols / 2, abs=1)
    assert covered[0].min() == 0 and covered[0].max() + 1 == pytest.approx(rows, abs=1)


def test_pooled_looks_keep_the_first_looks_layers() -> None:
    # given two looks at a photo, the first carrying the photo's layers, each finding a
    # damage the other does not
    grid = grid_shape(200, 100)
    layers = object()
    first = detections([[0, 0, 50, 50]], np.ones((1, *grid), bool), layers)
    second = detections([[120, 40, 180, 90]], np.ones((1, *grid), bool))
    # when pooled, then both damages are kept with the photo's own layers
    both = pooled(first, second, PostprocessConfig())
    assert len(both) == 2
    assert both.layers is layers
    # and a second look that found nothing keeps them too
    empty = RawDetections.empty(grid)
    assert pooled(first, empty, PostprocessConfig()).layers is layers


def zoom_scene(
    model_dir: Path, view_logit: float, bar: float | None = 0.5, where_found: object = False
) -> Settings:
    """A door across a 400x200 photo, a damage model that always answers one dent at
    (160, 80, 240, 120) of what it is shown (a fake model), a gate that passes the photo and
    reads its whole-car view from `view_logit`, and the damage entry's zoom bar `bar` and
    `zoom_look_where_found`."""
    parts = [part_det(CarPart.FRONT_LEFT_DOOR, (0, 0, 400, 200))]
    damages = [damage_det("moderate-dent", (160, 80, 240, 120), 0.8)]
    settings = write_registry(model_dir, IMGSZ, damages, parts)
    registry = Registry.load(model_dir)
    k = next(i for i, e in enumerate(registry.entries) if e.task == "damage")
    look = {"zoom_look_view_below": bar, "zoom_look_where_found": where_found}
    registry.entries[k] = replace(registry.entries[k], **look)  # type: ignore[arg-type]
    registry.save()
    return add_gate(settings, 0.01, view_logit=view_logit)


def model_input_mean(image: np.ndarray) -> float:
    """The mean of what the damage model is given for `image` (0..1)."""
    canvas, _ = letterbox(image, IMGSZ)
    return float(to_tensor([canvas]).mean())


def seen_only_zoomed_out(settings: Settings) -> Settings:
    """The scene's damage model replaced by one whose dent scores 0.02 on the photo and 0.8
    on its zoomed-out canvas (its score follows the mean of what it is shown)."""
    on_photo = model_input_mean(textured(W, H))
    on_canvas = model_input_mean(zoomed_out(textured(W, H)))
    slope = (0.8 - 0.02) / (on_canvas - on_photo)
    dent = damage_det("moderate-dent", (160, 80, 240, 120), 0.02 - slope * on_photo)
    registry = Registry.load(settings.model_dir)
    k = next(i for i, e in enumerate(registry.entries) if e.task == "damage")
    path = settings.model_dir / registry.entries[k].file
    make_fake_model(path, IMGSZ, len(DAMAGE_CLASSES), [dent], score_slope=slope)
    registry.entries[k] = replace(registry.entries[k], sha256=sha256_of(path))
    registry.save()
    return settings


def analysed(settings: Settings) -> PhotoAnalysis:
    (result,) = build_analyzer(settings).analyze([photo(textured(W, H))])
    return result


def test_a_photo_the_gate_reads_as_a_close_up_is_also_looked_at_from_further_away(
    tmp_path: Path,
) -> None:
    # given a damage model served with the zoomed-out look under a view of 0.5, and a photo
    # the gate reads as a close-up
    result = analysed(zoom_scene(tmp_path, view_logit=-20.0))
    assert result.whole_car_view_probability is not None
    assert result.whole_car_view_probability < 0.5
    # then the canvas's dent, brought back, is reported beside the photo's own: on a canvas
    # 1.5 times the photo, x maps to 1.5 x - 100 and y to 1.5 y - 50
    boxes = sorted((d.box.x1, d.box.y1, d.box.x2, d.box.y2) for d in result.damages)
    assert boxes == [
        pytest.approx((140, 70, 260, 130), abs=1.5),
        pytest.approx((160, 80, 240, 120), abs=1.5),
    ]
    assert all(d.part is CarPart.FRONT_LEFT_DOOR for d in result.damages)


def test_a_whole_car_view_and_a_model_without_the_bar_look_once(tmp_path: Path) -> None:
    # given the photo read as a whole-car view, then a close-up under an entry without a bar
    whole = analysed(zoom_scene(tmp_path / "whole", view_logit=10.0))
    plain = analysed(zoom_scene(tmp_path / "plain", view_logit=-20.0, bar=None))
    # then each reports the photo's own dent alone
    assert whole.whole_car_view_probability is not None
    assert whole.whole_car_view_probability >= 0.5
    for result in (whole, plain):
        assert [round(d.box.x1) for d in result.damages] == [160]
    # and an entry without the bar is stored as entries were before it existed
    stored = json.loads((tmp_path / "plain" / "registry.json").read_text())
    assert all("zoom_look_view_below" not in e for e in stored["entries"])
    assert all("zoom_look_where_found" not in e for e in stored["entries"])
    assert all("middle_look_where_found" not in e for e in stored["entries"])


def test_where_found_a_close_up_the_first_look_finds_damage_on_is_looked_at_again(
    tmp_path: Path,
) -> None:
    # given the look taken only where the first look finds damage, and a close-up it does
    result = analysed(zoom_scene(tmp_path, view_logit=-20.0, where_found=True))
    # then the canvas's dent is pooled with the photo's own, as the look on every close-up
    # pools it, and the look's time is reported
    boxes = sorted((d.box.x1, d.box.y1, d.box.x2, d.box.y2) for d in result.damages)
    assert boxes == [
        pytest.approx((140, 70, 260, 130), abs=1.5),
        pytest.approx((160, 80, 240, 120), abs=1.5),
    ]
    assert "looks_again_ms" in result.timings_ms
    # and the entry is stored with it
    stored = json.loads((tmp_path / "registry.json").read_text())
    assert [e["zoom_look_where_found"] for e in stored["entries"] if e["task"] == "damage"] == [
        True
    ]


def test_where_found_a_close_up_the_first_look_finds_nothing_on_is_not_looked_at_again(
    tmp_path: Path,
) -> None:
    # given a damage model that sees a dent only on the zoomed-out canvas, and a close-up
    every = seen_only_zoomed_out(zoom_scene(tmp_path / "every", view_logit=-20.0))
    found = seen_only_zoomed_out(zoom_scene(tmp_path / "found", view_logit=-20.0, where_found=True))
    # when the look is taken on every close-up, the canvas's dent alone is reported
    boxes = [(d.box.x1, d.box.y1, d.box.x2, d.box.y2) for d in analysed(every).damages]
    assert boxes == [pytest.approx((140, 70, 260, 130), abs=1.5)]
    # but taken only where the first look finds damage, the photo has none, and no look
    result = analysed(found)
    assert result.damages == ()
    assert "looks_again_ms" not in result.timings_ms


def test_where_found_a_whole_car_view_is_looked_at_once(tmp_path: Path) -> None:
    result = analysed(zoom_scene(tmp_path, view_logit=10.0, where_found=True))
    assert [round(d.box.x1) for d in result.damages] == [160]
    assert "looks_again_ms" not in result.timings_ms


@pytest.mark.parametrize("bar", [0.0, 1.5, True])
def test_an_entry_with_a_bar_outside_a_probability_is_refused_by_name(
    tmp_path: Path, bar: float
) -> None:
    settings = zoom_scene(tmp_path, view_logit=-20.0, bar=bar)
    with pytest.raises(ModelUnavailable, match="zoom_look_view_below"):
        build_analyzer(settings)


@pytest.mark.parametrize(("bar", "where_found"), [(None, True), (0.5, "yes"), (0.5, 1)])
def test_where_found_needs_true_or_false_and_a_bar_beside_it(
    tmp_path: Path, bar: float | None, where_found: object
) -> None:
    settings = zoom_scene(tmp_path, view_logit=-20.0, bar=bar, where_found=where_found)
    with pytest.raises(ModelUnavailable, match="zoom_look_where_found"):
        build_analyzer(settings)


def test_an_entry_with_a_placer_cannot_also_take_the_zoomed_out_look(tmp_path: Path) -> None:
    # given the close-up scene whose damage entry also names a placer (its head reads the
    # layers of the model's one pass, so a second look would go unplaced)
    settings = zoom_scene(tmp_path, view_logit=-20.0)
    registry = Registry.load(tmp_path)
    k = next(i for i, e in enumerate(registry.entries) if e.task == "damage")
    placer = {"file": "placer.onnx", "sha256": "0" * 64, "rule": {"min_iou": 0.5}}
    registry.entries[k] = replace(registry.entries[k], placer=placer)
    registry.save()
    # then the analyzer is refused, naming both
    with pytest.raises(ModelUnavailable, match="zoomed-out look cannot be served beside a placer"):
        build_analyzer(settings)


def middle_scene(model_dir: Path, view_logit: float, **looks: object) -> Settings:
    """The door scene with a dent at the left of what the model is shown (20, 50, 100, 150)
    and the damage entry's `looks` (registry fields)."""
    parts = [part_det(CarPart.FRONT_LEFT_DOOR, (0, 0, 400, 200))]
    damages = [damage_det("moderate-dent", (20, 50, 100, 150), 0.8)]
    settings = write_registry(model_dir, IMGSZ, damages, parts)
    registry = Registry.load(model_dir)
    k = next(i for i, e in enumerate(registry.entries) if e.task == "damage")
    registry.entries[k] = replace(registry.entries[k], **looks)  # type: ignore[arg-type]
    registry.save()
    return add_gate(settings, 0.01, view_logit=view_logit)


def boxes_of(result: PhotoAnalysis) -> list[tuple[float, float, float, float]]:
    return sorted((d.box.x1, d.box.y1, d.box.x2, d.box.y2) for d in result.damages)


def test_where_found_the_middle_is_looked_at_again_on_a_whole_car_view_too(
    tmp_path: Path,
) -> None:
    # given an entry taking the middle look where damage is found, and a whole-car view
    result = analysed(middle_scene(tmp_path, view_logit=10.0, middle_look_where_found=True))
    # then the middle crop's dent (its left at 0.05 of the crop's 267 px, 66 px in) is
    # reported beside the photo's own, and the look's time with it
    assert boxes_of(result) == [
        pytest.approx((20, 50, 100, 150), abs=1.5),
        pytest.approx((79.4, 66.3, 132.8, 132.8), abs=1.5),
    ]
    assert "looks_again_ms" in result.timings_ms


def test_where_found_a_close_up_is_looked_at_from_further_away_and_in_its_middle(
    tmp_path: Path,
) -> None:
    # given both looks taken where damage is found, and a close-up
    looks = {"zoom_look_view_below": 0.5, "zoom_look_where_found": True}
    settings = middle_scene(tmp_path, view_logit=-20.0, middle_look_where_found=True, **looks)
    # then the canvas's dent (cut at the photo's left edge) and the middle's join the photo's
    assert boxes_of(analysed(settings)) == [
        pytest.approx((0, 25, 50, 175), abs=1.5),
        pytest.approx((20, 50, 100, 150), abs=1.5),
        pytest.approx((79.4, 66.3, 132.8, 132.8), abs=1.5),
    ]


BAD_MIDDLE_LOOKS = [
    {"middle_look_where_found": "yes"},
    {"middle_look_where_found": True, "crop_look": True},
]


@pytest.mark.parametrize("looks", BAD_MIDDLE_LOOKS)
def test_the_middle_look_where_found_needs_a_bool_and_no_middle_look_on_every_photo(
    tmp_path: Path, looks: dict[str, object]
) -> None:
    settings = middle_scene(tmp_path, view_logit=10.0, **looks)
    with pytest.raises(ModelUnavailable, match="middle_look_where_found"):
        build_analyzer(settings)
