"""The close-up severity head on the damage model's own layers (inference/layer_severity.py)."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from cdat.errors import ModelUnavailable
from cdat.findings import Box
from cdat.settings import Settings
from cdat.taxonomy import Severity
from inference.imaging import Letterbox
from inference.layer_severity import (
    LayerSeverityHead,
    TappedRuntime,
    load_closeup_severity,
    pooled_under,
)
from inference.loading import build_analyzer
from inference.postprocess import PhotoLayers
from inference.registry import Registry, sha256_of
from inference.runtime import OnnxRuntime
from inference.severity import FEATURE_NAMES, SeverityModel

from .conftest import make_fake_model, textured
from .test_pipeline import IMGSZ, H, W, damage_det, photo
from .test_severity_by_view import always_minor, scene


def biased_head(
    path: Path, backbone: Path, probabilities: tuple[float, float, float], hand: bool = False
) -> Path:
    """A head on one tapped channel (layer 0; with `hand`, the hand-made features after it)
    whose bias alone decides."""
    width = 1 + len(FEATURE_NAMES) * hand
    weights = np.zeros((width + 1, 3))
    weights[-1] = np.log(probabilities)
    head = LayerSeverityHead(
        (0,), [0.0] * width, [1.0] * width, weights.tolist(), sha256_of(backbone), "", hand
    )
    head.save(path)
    return path


def test_a_layer_is_averaged_over_the_cells_under_the_box() -> None:
    # given a 4x4 layer over a 64 px input (16 px cells), the photo letterboxed unscaled
    layer = np.arange(16, dtype=np.float32).reshape(1, 1, 4, 4)
    layers = PhotoLayers((layer, layer * 10), Letterbox(1.0, 0.0, 0.0, 64, 64, 64))
    # when a box over the top-left 2x2 cells is pooled, then each layer gives their mean
    got = pooled_under(layers, Box(0, 0, 32, 30))
    assert got.tolist() == pytest.approx([2.5, 25.0])  # cells 0, 1, 4, 5
    # and a box smaller than a cell still reads the one cell it lies in
    assert pooled_under(layers, Box(50, 50, 51, 51)).tolist() == pytest.approx([15.0, 150.0])


def test_a_head_reads_only_the_layers_of_the_model_it_was_trained_on(tmp_path: Path) -> None:
    model = make_fake_model(tmp_path / "damage.onnx", IMGSZ, 5, [], tapped=True)
    other = make_fake_model(tmp_path / "other.onnx", IMGSZ, 4, [], tapped=True)
    path = biased_head(tmp_path / "head.json", model, (0.6, 0.3, 0.1))
    # the stored head loads beside its own model, and the entry's loader tells it apart
    assert isinstance(load_closeup_severity(path, model), LayerSeverityHead)
    with pytest.raises(ModelUnavailable, match="another model"):
        LayerSeverityHead.load(path, other)
    # and a hand-feature stage's file is read as one
    hand = always_minor(tmp_path / "hand.json")
    assert isinstance(load_closeup_severity(hand, model), SeverityModel)


def test_a_head_whose_weights_do_not_fit_its_features_is_refused(tmp_path: Path) -> None:
    model = make_fake_model(tmp_path / "damage.onnx", IMGSZ, 5, [], tapped=True)
    path = biased_head(tmp_path / "head.json", model, (0.6, 0.3, 0.1))
    body = json.loads(path.read_text())
    path.write_text(json.dumps(body | {"mean": [0.0, 0.0], "scale": [1.0, 1.0]}))
    with pytest.raises(ModelUnavailable, match="weights do not match its 2 features"):
        LayerSeverityHead.load(path, model)


def test_the_tapped_runtime_finds_what_the_model_alone_finds(tmp_path: Path) -> None:
    # given a model that also hands out a layer
    dets = [damage_det("severe-dent", (82, 62, 98, 90), 0.9)]
    model = make_fake_model(tmp_path / "damage.onnx", IMGSZ, 5, dets, tapped=True)
    image = textured(W, H)
    # when it is run tapped and alone
    (tapped,) = TappedRuntime.of(model, (0,), None, threads=1).infer([image])
    (alone,) = OnnxRuntime(model, threads=1).infer([image])
    # then the detections are the same, and only the tapped run carries the layer
    assert np.array_equal(tapped.boxes, alone.boxes)
    assert np.array_equal(tapped.scores, alone.scores)
    assert alone.layers is None
    assert tapped.layers is not None and tapped.layers.layers[0].shape == (1, 1, 1, 1)
    # and the layers survive the boxes' rescaling to the photo
    assert tapped.rescaled(2.0, 2.0).layers is tapped.layers


def served_with_head(
    model_dir: Path, min_parts: int, says: tuple[float, float, float], hand: bool = False
) -> Settings:
    """The severity-by-view scene (one severe dent the model is sure of, ten small parts),
    its damage model handing out a layer and its close-up stage a head on that layer."""
    settings = scene(model_dir, min_parts)
    registry = Registry.load(model_dir)
    k = next(i for i, e in enumerate(registry.entries) if e.task == "damage")
    entry = registry.entries[k]
    dets = [damage_det("severe-dent", (82, 62, 98, 90), 0.9)]
    model = make_fake_model(model_dir / entry.file, IMGSZ, len(entry.classes), dets, tapped=True)
    biased_head(model_dir / "closeup-severity.json", model, says, hand)
    registry.entries[k] = replace(entry, sha256=sha256_of(model))
    registry.save()
    return settings


def test_a_close_up_is_read_by_the_head_and_a_whole_car_view_is_not(tmp_path: Path) -> None:
    # given a close-up head that says minor, on a photo of ten parts
    def severities(settings: Settings) -> list[Severity]:
        (result,) = build_analyzer(settings).analyze([photo(textured(W, H))])
        return [d.severity for d in result.damages]

    # when the rule asks ten parts of a whole-car view (so the photo is one), and eleven
    whole = severities(served_with_head(tmp_path / "whole", 10, (0.6, 0.3, 0.1)))
    close = severities(served_with_head(tmp_path / "close", 11, (0.6, 0.3, 0.1)))
    # then the whole-car view keeps the model's own severity, the close-up's is the head's
    assert whole == [Severity.SEVERE]
    assert close == [Severity.MINOR]
    # and a head that says moderate is read as moderate, one reading the hand-made
    # features beside the layers too
    moderate = severities(served_with_head(tmp_path / "mod", 11, (0.2, 0.7, 0.1)))
    assert moderate == [Severity.MODERATE]
    hand = severities(served_with_head(tmp_path / "hand", 11, (0.2, 0.7, 0.1), hand=True))
    assert hand == [Severity.MODERATE]


def test_a_head_without_its_model_layers_leaves_the_model_unavailable(tmp_path: Path) -> None:
    settings = served_with_head(tmp_path / "m", 11, (0.6, 0.3, 0.1))
    head = tmp_path / "m" / "closeup-severity.json"
    body = json.loads(head.read_text())
    head.write_text(json.dumps(body | {"backbone_sha256": "0" * 64}))
    with pytest.raises(ModelUnavailable, match="another model"):
        build_analyzer(settings)
