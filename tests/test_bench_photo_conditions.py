"""The photo-conditions bench (bench/bench_photo_conditions.py): each condition keeps the
photo where its labels lie, and the analyzer reads every photo through it."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from bench.bench_photo_conditions import UnderCondition, get_args_parser, headline_row, main
from cdat.analysis import PhotoInput
from inference.imaging import decode_photo
from training.photo_conditions import CONDITIONS, PHONE_SIDE


def _photo() -> tuple[np.ndarray, bytes]:
    """A 64 x 48 photo whose left half is dark and whose top-right corner is a red block."""
    image = np.full((48, 64, 3), 200, np.uint8)
    image[:, :32] = 40
    image[:12, 48:] = (0, 0, 230)
    ok, data = cv2.imencode(".png", image)
    assert ok
    return image, data.tobytes()


@pytest.mark.parametrize("name", sorted(set(CONDITIONS) - {"phone-size"}))
def test_a_condition_keeps_the_photo_where_its_labels_lie(name: str) -> None:
    # given a photo whose halves and corner differ
    image, data = _photo()
    # when it is put through the condition and read as the service reads photos
    seen = decode_photo(CONDITIONS[name](data))
    # then it has its size, and its dark half and red corner are where they were
    assert seen.shape == image.shape
    assert seen[:, :32].mean() < seen[:, 32:].mean()
    assert seen[:12, 48:, 2].mean() > seen[:12, 48:, 0].mean() + 50


def test_a_phone_sized_photo_is_the_same_picture_scaled() -> None:
    image, data = _photo()
    seen = decode_photo(CONDITIONS["phone-size"](data))
    assert seen.shape == (PHONE_SIDE * 48 // 64, PHONE_SIDE, 3)
    back = cv2.resize(seen, (64, 48), interpolation=cv2.INTER_AREA)
    assert np.abs(back.astype(int) - image.astype(int)).mean() < 6


def test_the_conditions_change_what_they_say() -> None:
    image, data = _photo()
    dusk = decode_photo(CONDITIONS["dusk"](data))
    assert dusk.mean() < 0.8 * image.mean()
    warm = decode_photo(CONDITIONS["street-light"](data)).astype(float)
    assert warm[..., 2].mean() > warm[..., 0].mean() + 30  # red over blue, on grey
    noisy = decode_photo(CONDITIONS["sensor-noise"](data)).astype(float)
    assert noisy[20:, 40:].std() > 4  # a flat grey area is no longer flat
    assert CONDITIONS["stored"](data) == data


class _Recorder:
    runtimes = {"damage": "fake"}

    def __init__(self) -> None:
        self.seen: list[bytes] = []

    def analyze(self, photos: list[PhotoInput]) -> list[str]:
        self.seen += [p.data for p in photos]
        return [p.photo_id for p in photos]


def test_the_analyzer_reads_each_photo_through_the_condition() -> None:
    recorder = _Recorder()
    under = UnderCondition(recorder, lambda data: data[::-1])
    assert under.analyze([PhotoInput("a", b"abc"), PhotoInput("b", b"xy")]) == ["a", "b"]
    assert recorder.seen == [b"cba", b"yx"]
    assert under.runtimes == {"damage": "fake"}  # what the claim report asks of it


def test_the_table_row_reads_a_claim_reports_headline() -> None:
    report = {
        "damage_recall_iou30": {"car-parts-damage": 0.9, "damaged-parts": 0.8},
        "intact_photos_with_damage": 0.02,
        "non_vehicle_refused": 1,
    }
    row = headline_row(report)
    assert row["found cpd"] == 0.9 and row["found dp"] == 0.8 and row["found ds"] is None
    assert row["intact cars"] == 0.02 and row["no vehicle refused"] == 1.0
    assert row["family cpd"] is None


def test_an_unknown_condition_is_one_error_line(capsys: pytest.CaptureFixture) -> None:
    code = main(get_args_parser().parse_args(["--conditions", "stored", "fog"]))
    assert code == 2
    assert capsys.readouterr().err.startswith("error: unknown condition 'fog' (one of stored, ")


def test_a_random_condition_keeps_the_photo_and_is_drawn_by_its_generator() -> None:
    from training.photo_conditions import random_condition

    image, data = _photo()
    # given two generators of one seed and one of another
    drawn = [random_condition(data, np.random.default_rng(seed)) for seed in (7, 7, 8, 9, 10)]
    # then one seed draws one condition, and the photo keeps its size and its layout
    assert drawn[0] == drawn[1]
    assert len(set(drawn)) > 2
    for encoded in drawn:
        seen = decode_photo(encoded)
        assert seen.shape == image.shape
        assert seen[:, :32].mean() < seen[:, 32:].mean()


class _RedGate:
    """A gate that sees a vehicle in a red photo."""

    threshold = 0.5
    version = "red"

    def probabilities(self, images: list[np.ndarray]) -> np.ndarray:
        return np.array([float(image[..., 2].mean()) / 255.0 for image in images])


def test_the_gate_alone_refuses_what_its_probability_puts_under_its_threshold(tmp_path) -> None:
    from bench.bench_photo_conditions import gate_refusals
    from training.gate_data import GatePhoto

    def photo(name: str, red: int, source: str, vehicle: bool) -> GatePhoto:
        path = tmp_path / f"{name}.png"
        cv2.imwrite(str(path), np.full((40, 40, 3), (20, 20, red), np.uint8))
        return GatePhoto(path, source, "val", vehicle)

    # given two photos without a vehicle (one red enough to pass), a close-up and a whole car
    photos = [
        photo("sky", 30, "no-vehicle", False),
        photo("barn", 140, "no-vehicle", False),
        photo("door", 150, "damaged-parts", True),
        photo("car", 40, "car-parts", True),
    ]
    # when the gate alone reads them, as stored and dimmed
    stored = gate_refusals(_RedGate(), photos, CONDITIONS["stored"])
    dimmed = gate_refusals(_RedGate(), photos, CONDITIONS["dusk"])
    # then each kind's refused share is the gate's answer on it
    assert stored == {
        "no vehicle refused": 0.5,
        "close-ups refused": 0.0,
        "whole cars refused": 1.0,
    }
    assert dimmed["no vehicle refused"] == 1.0 and dimmed["close-ups refused"] == 1.0


def test_a_gate_that_is_no_file_is_one_error_line(tmp_path, capsys: pytest.CaptureFixture) -> None:
    missing = tmp_path / "gate.onnx"
    code = main(get_args_parser().parse_args(["--gate-only", "--gate", str(missing)]))
    assert code == 2
    assert capsys.readouterr().err == f"error: --gate {missing}: no such file\n"
