"""The vehicle gate in the served pipeline, on a handcrafted gate model.

The handcrafted gate says "vehicle" for reddish photos and "no vehicle" for bluish ones
(sigmoid of 20 x (mean red - mean blue)), so a test knows each photo's answer.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from cdat.analysis import PhotoInput
from cdat.errors import ModelUnavailable
from cdat.taxonomy import CarPart
from inference import quality
from inference.loading import build_analyzer
from inference.registry import ModelEntry, Registry, sha256_of
from inference.vehicle_gate import VehicleGate, gate_input, load_gate

from .conftest import PART_CLASSES, FakeDet, to_model, write_registry

IMGSZ = 320
W, H = 400, 200
GATE_SIDE = 32


def make_gate(path: Path, side: int = GATE_SIDE, view_logit: float | None = None) -> Path:
    """images (N, 3, side, side) RGB -> vehicle (N, 1) = sigmoid(20 (red - blue)); with
    `view_logit`, a second output whole_car_view (N, 1) = sigmoid(20 green + view_logit)."""
    weights = [helper.make_tensor("w", TensorProto.FLOAT, [3, 1], [20.0, 0.0, -20.0])]
    nodes = [
        helper.make_node("ReduceMean", ["images"], ["pooled4"], axes=[2, 3], keepdims=0),
        helper.make_node("MatMul", ["pooled4", "w"], ["logit"]),
        helper.make_node("Sigmoid", ["logit"], ["vehicle"]),
    ]
    outputs = [helper.make_tensor_value_info("vehicle", TensorProto.FLOAT, ["batch", 1])]
    if view_logit is not None:
        weights += [
            helper.make_tensor("wv", TensorProto.FLOAT, [3, 1], [0.0, 20.0, 0.0]),
            helper.make_tensor("bv", TensorProto.FLOAT, [1], [view_logit]),
        ]
        nodes += [
            helper.make_node("MatMul", ["pooled4", "wv"], ["view_raw"]),
            helper.make_node("Add", ["view_raw", "bv"], ["view_logit"]),
            helper.make_node("Sigmoid", ["view_logit"], ["whole_car_view"]),
        ]
        outputs.append(
            helper.make_tensor_value_info("whole_car_view", TensorProto.FLOAT, ["batch", 1])
        )
    graph = helper.make_graph(
        nodes,
        "gate",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, ["batch", 3, side, side])],
        outputs,
        weights,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


def add_gate(settings, threshold: float = 0.5, view_logit: float | None = None):
    """Register and promote the handcrafted gate beside the fake damage and part models
    (one that also reads the view, with `view_logit`)."""
    registry = Registry.load(settings.model_dir)
    path = make_gate(settings.model_dir / "gate.onnx", view_logit=view_logit)
    entry = ModelEntry(
        "gate-fake-1", "gate", path.name, sha256_of(path), ["vehicle"], GATE_SIDE,
        metrics={"served_conf": threshold},
    )  # fmt: skip
    registry.entries.append(entry)
    registry.promoted["gate"] = entry.id
    registry.save()
    return settings


def coloured(bgr: tuple[int, int, int], seed: int = 0) -> np.ndarray:
    """A sharp, well exposed photo of one dominant colour."""
    rng = np.random.default_rng(seed)
    noise = rng.integers(-30, 30, (H // 8, W // 8, 3))
    small = np.clip(np.array(bgr) + noise, 0, 255).astype(np.uint8)
    import cv2

    return cv2.resize(small, (W, H), interpolation=cv2.INTER_NEAREST)


def png(image: np.ndarray, photo_id: str) -> PhotoInput:
    import cv2

    ok, data = cv2.imencode(".png", image)
    assert ok
    return PhotoInput(photo_id, data.tobytes())


RED, BLUE = (40, 60, 200), (200, 60, 40)  # BGR


@pytest.fixture
def scene(tmp_path):
    """A door across the whole photo and a dent on it: every photo that is segmented
    gets a part and a damage, so a refused photo's emptiness is the gate's doing."""
    parts = [FakeDet(*to_model((0, 0, 400, 200), W, H, IMGSZ), cls=PART_CLASSES.index(
        CarPart.FRONT_LEFT_DOOR.value), score=0.9)]  # fmt: skip
    from .test_pipeline import damage_det

    damages = [damage_det("moderate-dent", (120, 50, 220, 150), 0.85)]
    return write_registry(tmp_path / "models", IMGSZ, damages, parts)


def test_gate_input_is_the_centred_square_in_rgb() -> None:
    # given a wide photo: blue left quarter, red middle half, green right quarter (BGR)
    image = np.zeros((100, 200, 3), np.uint8)
    image[:, :50] = (255, 0, 0)
    image[:, 50:150] = (0, 0, 255)
    image[:, 150:] = (0, 255, 0)
    # when it is prepared for the gate
    x = gate_input(image, 32)
    # then only the red middle square is seen, as RGB in [0, 1]
    assert x.shape == (3, 32, 32) and x.dtype == np.float32
    assert np.allclose(x[0], 1.0) and np.allclose(x[1:], 0.0)


def test_a_refused_photo_gets_no_vehicle_and_no_findings(scene) -> None:
    # given the analyzer with a promoted gate
    analyzer = build_analyzer(add_gate(scene))
    # when it analyses a photo the gate passes and one it refuses
    kept, refused = analyzer.analyze([png(coloured(RED), "red"), png(coloured(BLUE, 1), "blue")])
    # then the refused photo has the blocking no_vehicle issue and nothing to price
    assert [i.code for i in refused.quality_issues] == [quality.NO_VEHICLE]
    assert not refused.usable and refused.damages == () and refused.parts == ()
    assert refused.vehicle_probability is not None and refused.vehicle_probability < 0.5
    assert "damage_ms" not in refused.timings_ms  # never segmented
    # and the kept photo is analysed as before, its probability kept for the adjuster
    assert kept.usable and kept.parts and kept.damages
    assert kept.vehicle_probability is not None and kept.vehicle_probability > 0.5
    assert "gate_ms" in kept.timings_ms
    assert analyzer.model_versions["gate"] == "gate-fake-1"


def test_without_a_promoted_gate_the_analyzer_behaves_as_before(scene) -> None:
    # given no gate in the registry
    analyzer = build_analyzer(scene)
    # when a photo the fake gate would refuse is analysed
    (result,) = analyzer.analyze([png(coloured(BLUE), "blue")])
    # then it is segmented as any photo, and no probability is claimed
    assert analyzer.gate is None and result.usable and result.damages
    assert result.vehicle_probability is None
    assert "gate" not in analyzer.model_versions


def test_the_threshold_is_the_registry_entry_s(scene) -> None:
    # given a gate promoted with a strict threshold, and a photo only a little redder
    # than blue (probability about 0.9)
    settings = add_gate(scene, threshold=0.99)
    gate = load_gate(settings.model_dir)
    reddish = coloured((100, 60, 130))
    assert gate is not None and gate.threshold == 0.99 and gate.side == GATE_SIDE
    assert 0.5 < gate.probabilities([reddish])[0] < 0.99
    # when the analyzer sees it, then the entry's threshold refuses it
    (result,) = build_analyzer(settings).analyze([png(reddish, "p")])
    assert [i.code for i in result.quality_issues] == [quality.NO_VEHICLE]


def test_a_gate_file_that_does_not_match_its_checksum_is_not_served(scene) -> None:
    # given a promoted gate whose file changed after registering
    settings = add_gate(scene)
    registry = Registry.load(settings.model_dir)
    entry = registry.get("gate-fake-1")
    registry.entries[-1] = replace(entry, sha256="0" * 64)
    registry.save()
    # then loading it is refused, naming the file
    with pytest.raises(ModelUnavailable, match=r"gate\.onnx"):
        load_gate(settings.model_dir)


def test_a_gate_threshold_out_of_range_is_refused(tmp_path) -> None:
    path = make_gate(tmp_path / "gate.onnx")
    with pytest.raises(ModelUnavailable, match="threshold"):
        VehicleGate.load(path, threshold=1.0)


def _spy(model, calls: list[int]) -> None:
    """Record how many photos each call of `model` is given."""
    infer = model.infer

    def counted(images):
        calls.append(len(images))
        return infer(images)

    model.infer = counted


def test_the_part_model_runs_beside_the_checks_and_a_refusal_still_stops_pricing(
    scene, monkeypatch
) -> None:
    # given the analyzer as served on two threads (the quality checks, the gate and the
    # damage model on one, the part model beside them on the other) and on one thread
    # (the checks and the gate first, then the models)
    settings = add_gate(scene)
    beside = build_analyzer(settings.model_copy(update={"onnx_threads": 2}))
    first = build_analyzer(settings.model_copy(update={"onnx_threads": 1}))
    seen: dict[str, list[int]] = {"damage": [], "parts": []}
    _spy(beside.damage, seen["damage"])
    _spy(beside.parts, seen["parts"])
    # and a claim: two photos the gate keeps, one it refuses, one too dark to show
    # anything, one a quality check fails on, one that is not a photo
    black = np.zeros((H, W, 3), np.uint8)
    names = ["kept", "refused", "black", "check-fails", "unreadable", "kept-too"]
    green = coloured((40, 200, 60), 3)  # reddish enough to pass the gate; brighter in gray
    photos = [coloured(RED), coloured(BLUE, 1), black, green, None, coloured(RED, 2)]
    claim = [
        png(im, name) if im is not None else PhotoInput(name, b"not a photo")
        for im, name in zip(photos, names, strict=True)
    ]
    check_blur = quality.check_blur

    def failing_check(gray, cfg):
        if float(gray.mean()) > 120:  # the green photo alone
            raise ValueError("a quality check failed")
        return check_blur(gray, cfg)

    monkeypatch.setattr(quality, "check_blur", failing_check)
    # when both analyse it
    got, want = beside.analyze(claim), first.analyze(claim)
    # then the part model saw every decoded photo, the damage model only the two kept
    assert seen == {"damage": [2], "parts": [5]}
    # and the findings are those of the checks and the gate first: nothing is priced
    # for a photo they block
    assert [replace(a, timings_ms={}) for a in got] == [replace(a, timings_ms={}) for a in want]
    codes = [[i.code for i in a.quality_issues] for a in got]
    assert codes[1] == [quality.NO_VEHICLE] and codes[3] == [quality.ANALYSIS_FAILED]
    assert codes[2] == [quality.UNDEREXPOSED] and codes[4] == [quality.UNREADABLE]
    for blocked in got[1:5]:
        assert blocked.damages == () and blocked.parts == ()
        assert "damage_ms" not in blocked.timings_ms
    assert got[0].damages and got[0].parts and got[5].damages and got[5].parts


def test_a_model_failure_beside_the_gate_fails_only_the_photos_it_kept(scene) -> None:
    # given the served analyzer with a gate and a damage model that fails
    analyzer = build_analyzer(add_gate(scene))

    def broken(images):
        raise RuntimeError("the damage model failed")

    analyzer.damage.infer = broken
    # when it analyses a photo the gate keeps and one it refuses
    kept, refused = analyzer.analyze([png(coloured(RED), "red"), png(coloured(BLUE, 1), "blue")])
    # then the kept photo cannot be analysed and the refused one is still refused, no more
    assert [i.code for i in kept.quality_issues] == [quality.ANALYSIS_FAILED]
    assert [i.code for i in refused.quality_issues] == [quality.NO_VEHICLE]
    assert kept.damages == refused.damages == () and kept.parts == refused.parts == ()


def test_the_gate_takes_the_damage_model_s_share_of_the_cores(scene) -> None:
    # given the gate, which runs beside the part model when the models run side by side
    settings = add_gate(scene)
    for budget, share in ((1, 1), (2, 1), (4, 2)):
        analyzer = build_analyzer(settings.model_copy(update={"onnx_threads": budget}))
        # then it has as many threads as each model, not the whole budget
        assert analyzer.gate is not None
        assert analyzer.gate.session.get_session_options().intra_op_num_threads == share


def test_a_gate_that_reads_the_view_gives_each_photo_its_reading(scene) -> None:
    # given a promoted gate with a second output: the photo's whole-car view (here
    # sigmoid(20 green - 5): a red photo reads as a close-up, a green-rich one as whole)
    settings = add_gate(scene, view_logit=-5.0)
    gate = load_gate(settings.model_dir)
    assert gate is not None and gate.reads_view
    # when the analyzer sees both photos
    red, green = coloured(RED), coloured((40, 230, 200), 3)
    close, whole = build_analyzer(settings).analyze([png(red, "red"), png(green, "green")])
    # then each analysis carries the gate's reading of its view, beside its vehicle figure
    assert close.whole_car_view_probability is not None
    assert whole.whole_car_view_probability is not None
    assert close.whole_car_view_probability < 0.5 < whole.whole_car_view_probability
    reading = gate.read([red, green])
    assert reading.whole_car_view is not None
    assert reading.whole_car_view.tolist() == pytest.approx(
        [close.whole_car_view_probability, whole.whole_car_view_probability], abs=1e-4
    )
    assert reading.vehicle.tolist() == pytest.approx(gate.probabilities([red, green]).tolist())


def test_a_gate_without_a_view_output_reads_no_view(scene) -> None:
    # given the one-output gate
    settings = add_gate(scene)
    gate = load_gate(settings.model_dir)
    assert gate is not None and not gate.reads_view
    # then no view is claimed for a photo it keeps
    (kept,) = build_analyzer(settings).analyze([png(coloured(RED), "red")])
    assert kept.vehicle_probability is not None and kept.whole_car_view_probability is None


def test_a_gate_that_reads_the_view_but_names_no_vehicle_output_is_refused(tmp_path) -> None:
    # given a two-output gate whose vehicle output is named something else
    path = make_gate(tmp_path / "gate.onnx", view_logit=0.0)
    model = onnx.load(str(path))
    for node in model.graph.node:
        node.output[:] = ["car" if o == "vehicle" else o for o in node.output]
    for output in model.graph.output:
        output.name = "car" if output.name == "vehicle" else output.name
    onnx.save(model, str(path))
    # then loading it is refused, saying why
    with pytest.raises(ModelUnavailable, match="names no 'vehicle' output"):
        VehicleGate.load(path, threshold=0.5)
