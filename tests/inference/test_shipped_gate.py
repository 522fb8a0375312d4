"""The shipped vehicle gate on a drawn landscape and on a real damaged close-up."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from cdat.settings import Settings
from inference.vehicle_gate import VehicleGate, load_gate


@pytest.fixture(scope="module")
def gate() -> VehicleGate:
    loaded = load_gate(Settings().model_dir)
    if loaded is None:
        pytest.skip("no vehicle gate is promoted in the shipped registry")
    return loaded


def landscape(width: int = 640, height: int = 480) -> np.ndarray:
    """A drawn landscape, as in the issue: sky, a sun, green hills, trees and a house."""
    image = np.zeros((height, width, 3), np.uint8)
    for y in range(height // 2):  # sky, lighter towards the horizon
        image[y] = (235 - y // 4, 190 - y // 8, 120)
    image[height // 2 :] = (60, 150, 70)
    cv2.circle(image, (520, 80), 40, (80, 220, 250), -1)
    cv2.ellipse(image, (150, height // 2 + 20), (220, 70), 0, 180, 360, (50, 130, 60), -1)
    for x in (60, 110, 420, 590):
        cv2.rectangle(image, (x - 6, 230), (x + 6, 290), (30, 60, 100), -1)
        cv2.circle(image, (x, 215), 30, (40, 110, 40), -1)
    cv2.rectangle(image, (250, 200), (360, 290), (170, 200, 220), -1)
    cv2.fillPoly(image, [np.array([[240, 200], [305, 150], [370, 200]], np.int32)], (40, 40, 150))
    cv2.rectangle(image, (290, 240), (320, 290), (40, 70, 110), -1)
    noise = np.random.default_rng(0).integers(-12, 12, image.shape)
    return np.clip(image.astype(int) + noise, 0, 255).astype(np.uint8)


def test_the_shipped_gate_refuses_a_drawn_landscape(gate) -> None:
    (p,) = gate.probabilities([landscape()])
    assert p < gate.threshold


def test_the_shipped_gate_keeps_a_real_damaged_close_up(gate, data_root) -> None:
    folder = data_root / "car-parts-damage" / "test" / "images"
    files = sorted(folder.glob("*.jpg"))[:3]
    if not files:
        pytest.skip(f"car-parts-damage test photos not available at {folder}")
    images = [cv2.imread(str(f)) for f in files]
    assert (gate.probabilities(images) >= gate.threshold).all()


def test_the_shipped_gate_reads_real_close_ups_as_close_ups_and_whole_cars_as_whole(
    gate, data_root
) -> None:
    from training.gate_data import vehicle_photos

    # given three real damaged close-ups and three real intact whole cars from test splits
    closeups = sorted((data_root / "car-parts-damage" / "test" / "images").glob("*.jpg"))[:3]
    if not closeups or not (data_root / "car-parts").is_dir():
        pytest.skip(f"car-parts-damage and car-parts test photos not available at {data_root}")
    cars = [p.path for p in vehicle_photos("car-parts", "test", data_root)[:3]]
    # when the shipped gate reads them
    reading = gate.read([cv2.imread(str(f)) for f in [*closeups, *cars]])
    # then it reads the view, close-ups as close-ups and whole cars as whole cars
    assert gate.reads_view and reading.whole_car_view is not None
    assert (reading.whole_car_view[:3] < 0.5).all() and (reading.whole_car_view[3:] >= 0.5).all()
