"""The vehicle gate: is a vehicle shown in this photo at all?

One small ONNX model (training/vehicle_gate.py makes it): a pretrained detector's first
layers, their feature maps averaged over space, and a linear head ending in a sigmoid.
Its output is the probability that the photo shows a vehicle, a whole car or a close-up
of a damaged panel alike. Below the registered threshold (the entry's `served_conf`,
chosen on val so that damaged close-ups are kept) the photo is refused as `no_vehicle`
and never reaches the damage and part models, so nothing is priced for it.

    gate = VehicleGate.load(path, threshold=entry.served_conf)
    probabilities = gate.probabilities([image_bgr, ...])
    refused = probabilities < gate.threshold

A gate may also read the photo's view: a second output, `whole_car_view`, a second linear
head on the same pooled features (training/view_head.py), the probability that the photo
shows the whole car rather than a close-up. It costs no second pass; the whole-car rule reads
it where the damage model's rule names a bar for it (cdat/whole_car.py).

    reading = gate.read([image_bgr, ...])   # reading.vehicle, reading.whole_car_view (or None)

Input: the largest centred square of the photo, resized to the model's side. A centred
square rather than a stretched photo, because training photos of vehicles are mostly
square and photos without one mostly are not: stretching would let the gate learn the
shape of the photo instead of what it shows.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from inference.errors import ModelUnavailable

VEHICLE_OUTPUT = "vehicle"
VIEW_OUTPUT = "whole_car_view"


def gate_input(image: np.ndarray, side: int) -> np.ndarray:
    """(3, side, side) float32 RGB in [0, 1] from a BGR uint8 photo (or a gray one)."""
    if image.ndim == 2:
        image = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    height, width = image.shape[:2]
    crop = min(height, width)
    top, left = (height - crop) // 2, (width - crop) // 2
    square = image[top : top + crop, left : left + crop]
    interpolation = cv2.INTER_AREA if crop > side else cv2.INTER_LINEAR
    small = cv2.resize(square, (side, side), interpolation=interpolation)
    rgb = cv2.cvtColor(small, cv2.COLOR_BGR2RGB)
    return np.ascontiguousarray(rgb.transpose(2, 0, 1), dtype=np.float32) / 255.0


@dataclass(frozen=True)
class GateReading:
    vehicle: np.ndarray
    """The probability that each photo shows a vehicle, in order."""
    whole_car_view: np.ndarray | None
    """The probability that each shows the whole car (None: the gate reads no view)."""


@dataclass
class VehicleGate:
    session: Any
    side: int
    threshold: float
    version: str = ""
    batch_size: int = 8
    outputs: tuple[str, ...] = field(init=False)
    """The outputs read: the vehicle's, then `whole_car_view` where the gate has it."""

    @classmethod
    def load(cls, path: Path, threshold: float, threads: int = 1, version: str = "") -> VehicleGate:
        from inference.backends import small_cpu_session, square_input_side

        session = small_cpu_session(path, threads, "vehicle gate")
        side = square_input_side(session, path)
        if not 0.0 < threshold < 1.0:
            raise ModelUnavailable(f"vehicle gate threshold {threshold} is not in (0, 1)")
        return cls(session, side, threshold, version or path.stem)

    def __post_init__(self) -> None:
        # which outputs to ask for is decided once per loaded gate, not per photo
        names = [o.name for o in self.session.get_outputs()]
        if VIEW_OUTPUT in names and VEHICLE_OUTPUT not in names:
            raise ModelUnavailable(
                f"vehicle gate {self.version}: it reads the view but names no {VEHICLE_OUTPUT!r} "
                "output, so which answer is the vehicle's is unknown"
            )
        # a one-output gate names its output freely
        vehicle = VEHICLE_OUTPUT if VEHICLE_OUTPUT in names else names[0]
        self.outputs = (vehicle, VIEW_OUTPUT) if VIEW_OUTPUT in names else (vehicle,)

    @property
    def reads_view(self) -> bool:
        return len(self.outputs) == 2

    def probabilities(self, images: Sequence[np.ndarray]) -> np.ndarray:
        """The probability that each photo shows a vehicle, in order."""
        return self.read(images).vehicle

    def read(self, images: Sequence[np.ndarray]) -> GateReading:
        """Both readings of each photo, from one pass of the gate's layers."""
        wanted = list(self.outputs)
        columns: list[list[np.ndarray]] = [[] for _ in wanted]
        name = self.session.get_inputs()[0].name
        for start in range(0, len(images), self.batch_size):
            batch = np.stack(
                [gate_input(im, self.side) for im in images[start : start + self.batch_size]]
            )
            for column, out in zip(columns, self.session.run(wanted, {name: batch}), strict=True):
                column.append(np.asarray(out).reshape(-1))
        joined = [np.concatenate(c) if c else np.zeros(0, np.float32) for c in columns]
        return GateReading(joined[0], joined[1] if self.reads_view else None)


def load_gate(model_dir: Path, threads: int = 1) -> VehicleGate | None:
    """The promoted vehicle gate of a model directory; None when none is promoted (the
    analyzer then keeps its part- and damage-based check alone)."""
    from inference.registry import Registry, sha256_of

    registry = Registry.load(model_dir)
    if "gate" not in registry.promoted:
        return None
    entry = registry.promoted_entry("gate")
    path = registry.path_of(entry)
    # a truncated copy or a file swapped under the registry must not serve silently
    if entry.sha256 and sha256_of(path) != entry.sha256:
        raise ModelUnavailable(f"vehicle gate {path} does not match its registry checksum")
    return VehicleGate.load(path, entry.served_conf, threads, entry.id)
