"""The closer second look at a photo's middle: crop geometry and pooling, answers known."""

from __future__ import annotations

import numpy as np
import pytest

from cdat.taxonomy import CarPart
from inference.crop_look import CropMergedRuntime, middle_crop, placed
from inference.loading import build_analyzer
from inference.postprocess import RawDetections, grid_shape

from .conftest import textured, write_registry
from .test_pipeline import IMGSZ, H, W, damage_det, part_det, photo


def test_the_middle_crop_is_centred_two_thirds_of_each_side() -> None:
    assert middle_crop(300, 150) == (50, 25, 250, 125)


def test_a_detection_on_the_crop_is_placed_on_the_whole_photo() -> None:
    # given a 300x150 photo (grid 256x128), its middle crop (50,25)-(250,125), and a
    # detection over the crop's left half on the crop's own grid
    crop = middle_crop(300, 150)
    gh, gw = grid_shape(200, 100)
    mask = np.zeros((1, gh, gw), bool)
    mask[0, :, : gw // 2] = True
    raw = RawDetections(
        np.array([[0, 0, 100, 100]], np.float32), np.array([0.4], np.float32),
        np.zeros(1, np.int64), mask, 0.4,
    )  # fmt: skip
    # when placed on the whole photo
    whole = placed(raw, crop, 300, 150)
    # then its box is shifted by the crop's corner and its mask covers that box on the grid
    assert whole.boxes.tolist() == [[50, 25, 150, 125]]
    rows, cols = np.nonzero(whole.masks[0])
    scale = grid_shape(300, 150)[1] / 300
    assert cols.min() == pytest.approx(50 * scale, abs=1)
    assert cols.max() + 1 == pytest.approx(150 * scale, abs=1)
    assert rows.min() == pytest.approx(25 * scale, abs=1)
    assert rows.max() + 1 == pytest.approx(125 * scale, abs=1)


def test_the_served_analyzer_reports_damage_either_look_finds(tmp_path) -> None:
    # given a damage model that always answers "dent at the left edge of what it is shown"
    # (a fake model), a door across the photo, and the closer look on
    parts = [part_det(CarPart.FRONT_LEFT_DOOR, (0, 0, 400, 200))]
    damages = [damage_det("moderate-dent", (20, 50, 100, 150), 0.8)]
    settings = write_registry(tmp_path / "models", IMGSZ, damages, parts)
    closer = settings.model_copy(update={"damage_crop_look": True})
    # when the photo is analysed
    analyzer = build_analyzer(closer)
    (result,) = analyzer.analyze([photo(textured(W, H))])
    # then the crop's dent (its left edge is the crop's, 67 px in) is reported beside the
    # whole photo's, on the door
    assert isinstance(analyzer.damage.runtime, CropMergedRuntime)
    x0, _, _, _ = middle_crop(W, H)
    assert len(result.damages) == 2
    assert sorted(round(d.box.x1) for d in result.damages)[0] == 20
    assert sorted(round(d.box.x1) for d in result.damages)[1] > x0
    assert all(d.part is CarPart.FRONT_LEFT_DOOR for d in result.damages)


def test_a_model_chosen_with_the_closer_look_is_served_with_it_unless_turned_off(
    tmp_path,
) -> None:
    from dataclasses import replace

    from inference.registry import Registry

    # given a damage model whose registry entry says it was chosen with the closer look
    parts = [part_det(CarPart.FRONT_LEFT_DOOR, (0, 0, 400, 200))]
    damages = [damage_det("moderate-dent", (20, 50, 100, 150), 0.8)]
    settings = write_registry(tmp_path / "models", IMGSZ, damages, parts)
    registry = Registry.load(settings.model_dir)
    entry = registry.get("damage-fake-1")
    registry.entries[registry.entries.index(entry)] = replace(entry, crop_look=True)
    registry.save()
    # then the served analyzer looks twice, and CDAT_DAMAGE_CROP_LOOK=false turns it off
    assert isinstance(build_analyzer(settings).damage.runtime, CropMergedRuntime)
    off = settings.model_copy(update={"damage_crop_look": False})
    assert not isinstance(build_analyzer(off).damage.runtime, CropMergedRuntime)
    # and an entry without the field (every older one) looks once
    assert Registry.load(settings.model_dir).get("parts-fake-1").crop_look is False
