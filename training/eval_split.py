"""Reading a converted split: its (image, label) pairs, labelled and predicted instances.

Shared by `training.evaluate`, `training.threshold`, `training.export` and the benches.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import yaml

from training.errors import TrainingError
from training.matching import Instance


def read_split(data_yaml: Path, split: str) -> list[tuple[Path, Path]]:
    """(image, label file) pairs of a converted dataset split."""
    data = yaml.safe_load(data_yaml.read_text())
    images = Path(data["path"]) / data[split]
    if not images.is_dir():
        raise TrainingError(f"{data_yaml}: split '{split}' has no images folder {images}")
    pairs = []
    for image in sorted(images.iterdir()):
        label = Path(str(image.parent).replace("/images/", "/labels/")) / (image.stem + ".txt")
        pairs.append((image, label))
    return pairs


def truth_instances(label: Path, names: list[str], shape: tuple[int, int]) -> list[Instance]:
    import cv2

    height, width = shape
    out = []
    lines = label.read_text().splitlines() if label.exists() else []
    for line in lines:
        values = line.split()
        if len(values) < 7:
            continue
        points = np.array(values[1:], dtype=np.float64).reshape(-1, 2) * [width, height]
        mask = np.zeros((height, width), dtype=np.uint8)
        cv2.fillPoly(mask, [np.round(points).astype(np.int32)], 1)
        out.append(Instance(names[int(values[0])], mask.astype(bool)))
    return out


def predicted_instances(result: Any, names: list[str]) -> list[Instance]:
    if result.masks is None:
        return []
    masks = result.masks.data.cpu().numpy() > 0.5
    classes = result.boxes.cls.cpu().numpy().astype(int)
    scores = result.boxes.conf.cpu().numpy()
    return [Instance(names[c], m, float(s)) for m, c, s in zip(masks, classes, scores, strict=True)]


def model_imgsz(model_path: Path) -> int:
    """The training / export image size stored with a model."""
    if model_path.suffix == ".onnx":
        import onnxruntime as ort

        shape = ort.InferenceSession(str(model_path)).get_inputs()[0].shape
        return int(shape[2])
    import torch

    ckpt = torch.load(model_path, map_location="cpu", weights_only=False)
    return int(ckpt.get("train_args", {}).get("imgsz", 640))
