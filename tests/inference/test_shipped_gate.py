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
