"""Known detections from a handcrafted ONNX model land where they belong in the photo."""

from __future__ import annotations

import numpy as np
import pytest

from inference.imaging import letterbox
from inference.postprocess import PostprocessConfig, decode, grid_shape, mask_polygon
from inference.runtime import OnnxRuntime

from .conftest import FULL, LEFT_HALF, FakeDet, make_fake_model, textured, to_model

IMGSZ = 320


def run_fake(tmp_path, dets, photo, config=None, **kwargs):
    path = make_fake_model(tmp_path / "fake.onnx", IMGSZ, 3, dets)
    return OnnxRuntime(path, threads=1, config=config, **kwargs).infer([photo])[0]


def test_box_and_mask_map_back_to_the_original_photo(tmp_path):
    # given a 400x200 photo and a model that sees one object at photo box (150,50)-(250,150)
    photo = textured(400, 200)
    det = FakeDet(*to_model((150, 50, 250, 150), 400, 200, IMGSZ), cls=2, score=0.9)
    # when the ONNX runtime runs
    found = run_fake(tmp_path, [det], photo)
    # then one detection comes back in photo pixels, with its class and score
    assert len(found) == 1
    np.testing.assert_allclose(found.boxes[0], [150, 50, 250, 150], atol=0.5)
    assert found.class_ids[0] == 2 and found.scores[0] == pytest.approx(0.9)
    # and its mask fills the box on the analysis grid (the full prototype, cropped to the box)
    gh, gw = grid_shape(400, 200)
    assert found.masks.shape == (1, gh, gw)
    rows, cols = np.nonzero(found.masks[0])
    cell = 400 / gw
    assert cols.min() * cell == pytest.approx(150, abs=cell)
    assert (cols.max() + 1) * cell == pytest.approx(250, abs=cell)
    assert rows.min() * cell == pytest.approx(50, abs=cell)
    assert (rows.max() + 1) * cell == pytest.approx(150, abs=cell)
    # and the polygon is in photo pixels around the box
    polygon = np.array(mask_polygon(found.masks[0], 400, 200))
    assert 3 <= len(polygon) <= 64
    assert polygon[:, 0].min() == pytest.approx(150, abs=2 * cell)
    assert polygon[:, 1].max() == pytest.approx(150, abs=2 * cell)


def test_mask_shape_follows_the_prototypes_not_just_the_box(tmp_path):
    # given a portrait photo and a detection covering it all, using the left-half prototype
    photo = textured(200, 400)
    det = FakeDet(*to_model((0, 0, 200, 400), 200, 400, IMGSZ), cls=0, score=0.8, proto=LEFT_HALF)
    found = run_fake(tmp_path, [det], photo)
    # then the mask covers the part of the photo left of the model input's centre line
    # (x = 160 model px = photo x 100, as the portrait photo is centred)
    cols = np.nonzero(found.masks[0].any(0))[0]
    gw = found.masks.shape[2]
    assert (cols.max() + 1) / gw * 200 == pytest.approx(100, abs=200 / gw + 1)
    assert cols.min() == 0


def test_confidence_threshold_and_class_aware_nms(tmp_path):
    photo = textured(320, 320)
    dets = [
        FakeDet(100, 100, 80, 80, cls=0, score=0.9),
        FakeDet(104, 100, 80, 80, cls=0, score=0.8),  # same object again: suppressed
        FakeDet(104, 100, 80, 80, cls=1, score=0.7),  # other class on the same spot: kept
        FakeDet(250, 250, 40, 40, cls=0, score=0.2),  # below conf 0.25: dropped
    ]
    found = run_fake(tmp_path, dets, photo)
    assert sorted(found.scores.tolist()) == pytest.approx([0.7, 0.9])
    assert sorted(found.class_ids.tolist()) == [0, 1]
    agnostic = run_fake(tmp_path, dets, photo, PostprocessConfig(agnostic=True))
    assert agnostic.scores.tolist() == pytest.approx([0.9])


def test_batched_inference_matches_one_by_one(tmp_path):
    photos = [textured(400, 200, 1), textured(200, 300, 2), textured(320, 320, 3)]
    det = FakeDet(160, 160, 100, 60, cls=1, score=0.6)
    path = make_fake_model(tmp_path / "fake.onnx", IMGSZ, 3, [det])
    single = OnnxRuntime(path, threads=1, batch_size=1).infer(photos)
    batched = OnnxRuntime(path, threads=1, batch_size=2).infer(photos)
    for a, b in zip(single, batched, strict=True):
        np.testing.assert_allclose(a.boxes, b.boxes, atol=1e-4)
        assert (a.masks == b.masks).all()


def test_end_to_end_layout_is_decoded():
    # given the NMS-free layout [K, 6+nm]: x1, y1, x2, y2, score, class, coefficients
    photo = textured(400, 200)
    _, box = letterbox(photo, IMGSZ)
    rows = np.zeros((300, 6 + 32), np.float32)
    rows[0, :6] = (120, 120, 200, 200, 0.95, 4)
    rows[0, 6 + FULL] = 1.0
    rows[1, :6] = (0, 0, 10, 10, 0.01, 1)
    protos = np.full((32, IMGSZ // 4, IMGSZ // 4), -10.0, np.float32)
    protos[FULL] = 10.0
    # when decoded
    found = decode(rows, protos, box, PostprocessConfig())
    # then only the confident row is kept, mapped to the photo
    assert found.class_ids.tolist() == [4]
    np.testing.assert_allclose(found.boxes[0], [150, 50, 250, 150], atol=0.5)
    assert found.masks[0].any()


def test_nothing_found_gives_empty_arrays(tmp_path):
    found = run_fake(tmp_path, [FakeDet(50, 50, 20, 20, cls=0, score=0.05)], textured(100, 80))
    assert len(found) == 0 and found.masks.shape[0] == 0
    assert mask_polygon(np.zeros((4, 4), bool), 100, 80) == ()


def test_an_empty_mask_falls_back_to_the_box(tmp_path):
    # given a detection on the right half whose prototype only covers the left half
    photo = textured(320, 320)
    det = FakeDet(240, 160, 40, 40, cls=0, score=0.9, proto=LEFT_HALF)
    found = run_fake(tmp_path, [det], photo)
    # then its mask is its box rather than nothing
    rows, cols = np.nonzero(found.masks[0])
    gw = found.masks.shape[2]
    scale = 320 / gw
    assert cols.min() * scale == pytest.approx(220, abs=scale)
    assert (cols.max() + 1) * scale == pytest.approx(260, abs=scale)
    assert rows.min() * scale == pytest.approx(140, abs=scale)
