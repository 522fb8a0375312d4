"""The view head (training/view_head.py): a second output of the vehicle gate that reads a
whole car from a close-up, on tiny generated photos."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from training.errors import TrainingError
from training.gate_data import GatePhoto
from training.intact_closeups import IntactCloseup

from .test_vehicle_gate import SIDE, _generated, _tiny_checkpoint, generated_gate_photos


def _scene(folder: Path, whole: bool, k: int) -> Path:
    """A whole car: a small dark car on a wide grey ground; a close-up: a panel filling the
    frame, with a dent."""
    rng = np.random.default_rng(k + (0 if whole else 500))
    image = np.full((80, 100, 3), (150, 150, 150) if whole else (40, 40, 190), np.uint8)
    image = np.clip(image + rng.integers(-20, 20, image.shape), 0, 255).astype(np.uint8)
    if whole:
        x, y = rng.integers(10, 60, 2)
        cv2.rectangle(image, (int(x), int(y)), (int(x) + 25, int(y) + 12), (20, 20, 20), -1)
    else:
        cv2.circle(image, tuple(int(v) for v in rng.integers(20, 60, 2)), 9, (90, 90, 230), -1)
    path = folder / f"{'whole' if whole else 'near'}{k}.png"
    cv2.imwrite(str(path), image)
    return path


@pytest.fixture
def tiny_gate(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    """A tiny checkpoint and a gate trained from it by training/vehicle_gate.py."""
    from training import gate_data, vehicle_gate

    weights = _tiny_checkpoint(tmp_path)
    photos = generated_gate_photos(tmp_path, vehicles=8, others=4)
    monkeypatch.setattr(vehicle_gate, "gate_photos", lambda split, *a, **k: photos[split])
    monkeypatch.setattr(gate_data, "data_licences", lambda root: [{"name": "g", "licence": "CC0"}])
    gate = tmp_path / "gate" / "gate.onnx"
    args = vehicle_gate.get_args_parser().parse_args(
        ["--out", str(gate), "--init", str(weights), "--taps", "4", "6", "--side", str(SIDE),
         "--negative-views", "2", "--l2", "0.1", "--cache", str(tmp_path / "cache")]
    )  # fmt: skip
    assert vehicle_gate.main(args) == 0
    return weights, gate


@pytest.mark.slow
def test_the_gate_learns_to_read_the_view_and_keeps_its_vehicle_answers(
    tmp_path: Path, tiny_gate: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    from inference.vehicle_gate import VehicleGate
    from training import view_head

    # given a served tiny gate, and generated whole cars and close-ups of both splits (the
    # close-ups from two close-up sources, some as windows of the whole cars' photos)
    weights, served = tiny_gate

    def photos(split: str, root: Path, seed: int) -> list[GatePhoto]:
        n = 0 if split == "train" else 100
        return [GatePhoto(_scene(tmp_path, True, k + n), "car-parts", split, True)
                for k in range(10)] + [
            GatePhoto(_scene(tmp_path, False, k + n), source, split, False)
            for k, source in enumerate(["damaged-parts", "car-parts-damage"] * 4)
        ]  # fmt: skip

    def windows(split: str, root: Path, seed: int) -> list[IntactCloseup]:
        n = 50 if split == "train" else 150
        return [IntactCloseup(f"w{k + n}.jpg", _scene(tmp_path, False, k + n).read_bytes())
                for k in range(4)]  # fmt: skip

    monkeypatch.setattr(view_head, "view_photos", photos)
    monkeypatch.setattr(view_head, "whole_car_windows", windows)
    out = tmp_path / "view" / "gate-view.onnx"
    args = view_head.get_args_parser().parse_args(
        ["--gate", str(served), "--out", str(out), "--init", str(weights), "--taps", "4", "6",
         "--side", str(SIDE), "--l2", "0.1", "--cache", str(tmp_path / "cache"),
         "--data-root", str(tmp_path)]
    )  # fmt: skip
    # when the view head is trained
    assert view_head.main(args) == 0
    # then the report counts each source and reads the val whole cars whole, close-ups not
    report = json.loads(out.with_suffix(".report.json").read_text())
    assert report["train_rows"] == {
        "car-parts": 10, "car-parts-damage": 4, "damaged-parts": 4, "car-parts-windows": 4
    }  # fmt: skip
    read = report["val_read_whole"]
    assert read["car-parts"] >= 0.8 and read["damaged-parts"] <= 0.25
    assert read["car-parts-windows"] <= 0.25
    # and the new file answers the vehicle question exactly as the served gate did
    assert report["vehicle_parity_max_abs"] < 1e-4
    then = VehicleGate.load(served, 0.5)
    now = VehicleGate.load(out, 0.5)
    assert now.reads_view and not then.reads_view
    images = [cv2.imread(str(_scene(tmp_path, whole, 999))) for whole in (True, False)]
    images.append(cv2.imread(str(_generated(tmp_path, False, 999))))
    reading = now.read(images)
    assert reading.vehicle.tolist() == pytest.approx(then.probabilities(images).tolist(), abs=1e-4)
    # and it reads a new whole car as whole and a new close-up as not
    assert reading.whole_car_view is not None
    assert reading.whole_car_view[0] > 0.5 > reading.whole_car_view[1]
    run = json.loads((out.parent / "cdat_run.json").read_text())
    assert run["task"] == "gate" and "training.view_head" in run["command"]


def test_a_gate_file_without_a_linear_vehicle_head_is_one_error(tmp_path: Path) -> None:
    from tests.inference.test_vehicle_gate import make_gate
    from training.view_head import served_vehicle_head

    # given the handcrafted gate (MatMul, no Gemm) and a file that is not ONNX
    handmade = make_gate(tmp_path / "g.onnx")
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"not a model")
    # then each is refused by name
    with pytest.raises(TrainingError, match="no linear vehicle head"):
        served_vehicle_head(handmade)
    with pytest.raises(TrainingError, match="not an ONNX file"):
        served_vehicle_head(junk)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"out": "g.pt"}, r"\.onnx"),
        ({"gate": "missing.onnx"}, "no such file"),
        ({"l2": 0.0}, "positive"),
        ({"bar": 1.0}, "0 < bar < 1"),
        ({"side": 100}, "--side 100"),
    ],
)
def test_a_bad_option_is_one_error_line(tmp_path: Path, change: dict, message: str) -> None:
    from training import view_head

    gate = tmp_path / "gate.onnx"
    gate.write_bytes(b"x")
    args = view_head.get_args_parser().parse_args(
        ["--gate", str(gate), "--out", str(tmp_path / "g.onnx")]
    )
    for key, value in change.items():
        setattr(args, key, tmp_path / value if isinstance(value, str) else value)
    with pytest.raises(TrainingError, match=message):
        view_head.hyperparameters(args)


def test_taps_other_than_the_gate_s_are_refused_before_any_extraction(
    tmp_path: Path, tiny_gate: tuple[Path, Path]
) -> None:
    from training import view_head

    # given the tiny gate (taps 4 and 6) and a view head asked for taps 4, 6 and 8
    weights, served = tiny_gate
    args = view_head.get_args_parser().parse_args(
        ["--gate", str(served), "--out", str(tmp_path / "v.onnx"), "--init", str(weights),
         "--taps", "4", "6", "8", "--side", str(SIDE), "--cache", str(tmp_path / "views")]
    )  # fmt: skip
    # then it is one error naming the gate's width, and nothing was extracted
    with pytest.raises(TrainingError, match="give the gate's own --taps"):
        view_head.main(args)
    assert not (tmp_path / "views").exists()
