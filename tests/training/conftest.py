"""Tiny generated data sets: photos with coloured polygons, labelled as COCO and YOLO.

Each class has its own colour and shape, so a one-epoch model can start to see
them; every photo also has Roboflow-style augmented copies (`<stem>.rf.<hash>`)
so the leakage rules have something to hold together.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml

DAMAGE_SOURCE = ["dent-small", "scratch-big", "smudge"]
"""Source class names of the generated COCO set; `smudge` is dropped by the config."""
COLOURS = {0: (40, 40, 220), 1: (220, 60, 40), 2: (60, 200, 60)}
SIZE = 96


def _photo(rng: np.random.Generator, n: int) -> tuple[np.ndarray, list[tuple[int, np.ndarray]]]:
    image = np.full((SIZE, SIZE, 3), 128, np.uint8) + rng.integers(0, 20, (SIZE, SIZE, 3), np.uint8)
    shapes = []
    for _ in range(n):
        cls = int(rng.integers(0, 3))
        x, y = rng.integers(8, SIZE - 40, 2)
        w, h = rng.integers(16, 32, 2)
        poly = np.array([[x, y], [x + w, y], [x + w, y + h], [x + w // 2, y + h + 6]], np.int32)
        cv2.fillPoly(image, [poly], COLOURS[cls])
        shapes.append((cls, poly))
    return image, shapes


def make_coco(root: Path, splits: dict[str, int], copies: int = 2, seed: int = 0) -> Path:
    """A COCO set under `root`: `splits` maps split -> number of source photos."""
    rng = np.random.default_rng(seed)
    for split, count in splits.items():
        (root / "images" / split).mkdir(parents=True, exist_ok=True)
        images, annotations = [], []
        for k in range(count):
            image, shapes = _photo(rng, 2)
            for c in range(copies):
                name = f"{split}{k}_jpg.rf.{c:04x}.jpg"
                cv2.imwrite(str(root / "images" / split / name), image)
                image_id = len(images)
                images.append({"id": image_id, "file_name": name, "width": SIZE, "height": SIZE})
                for cls, poly in shapes:
                    x, y, w, h = cv2.boundingRect(poly)
                    annotations.append({
                        "id": len(annotations), "image_id": image_id, "category_id": cls + 1,
                        "segmentation": [poly.reshape(-1).astype(float).tolist()],
                        "bbox": [x, y, w, h], "area": float(w * h), "iscrowd": 0,
                    })  # fmt: skip
        categories = [{"id": 0, "name": "super"}] + [
            {"id": i + 1, "name": n} for i, n in enumerate(DAMAGE_SOURCE)
        ]
        body = {"images": images, "annotations": annotations, "categories": categories}
        (root / f"{split}.json").write_text(json.dumps(body))
    return root


def make_yolo(root: Path, count: int, copies: int = 3, seed: int = 1) -> Path:
    """A YOLO polygon set with one source split `train` (to be re-split), plus one box label."""
    rng = np.random.default_rng(seed)
    (root / "train" / "images").mkdir(parents=True, exist_ok=True)
    (root / "train" / "labels").mkdir(parents=True, exist_ok=True)
    for k in range(count):
        image, shapes = _photo(rng, 1)
        for c in range(copies):
            stem = f"photo{k}_png.rf.{c:04x}"
            cv2.imwrite(str(root / "train" / "images" / f"{stem}.jpg"), image)
            rows = [f"{cls} " + " ".join(f"{v / SIZE:.4f}" for v in poly.reshape(-1))
                    for cls, poly in shapes]  # fmt: skip
            rows.append("1 0.5 0.5 0.2 0.2")
            (root / "train" / "labels" / f"{stem}.txt").write_text("\n".join(rows) + "\n")
    return root


def write_yaml(path: Path, body: dict) -> Path:
    path.write_text(yaml.safe_dump(body, sort_keys=False))
    return path


def mixed_training_config(tmp_path: Path, coco_root: Path, mix: dict[str, object]) -> Path:
    """A training config of the generated COCO set (`gen-coco`) with `mix` added to it
    (`closeup_crops`, `train_repeats`)."""
    write_yaml(tmp_path / "a.yaml", coco_config(coco_root))
    return write_yaml(tmp_path / "t.yaml", {"task": "damage", "datasets": ["a.yaml"], **mix})


def coco_config(root: Path, **overrides: object) -> dict:
    body = {
        "name": "gen-coco",
        "task": "damage",
        "format": "coco",
        "root": str(root),
        "licence": "generated",
        "splits": {
            s: {"annotations": f"{s}.json", "images": f"images/{s}"}
            for s in ("train", "val", "test")
        },
        "resplit": "source",
        "classes": {
            "super": None,
            "dent-small": "minor-dent",
            "scratch-big": "severe-scratch",
            "smudge": None,
        },
    }
    body.update(overrides)
    return body


def yolo_config(root: Path) -> dict:
    return {
        "name": "gen-yolo",
        "task": "damage",
        "format": "yolo",
        "root": str(root),
        "licence": "generated",
        "names": DAMAGE_SOURCE,
        "splits": {"train": {"images": "train/images", "labels": "train/labels"}},
        "resplit": {"train": 0.5, "val": 0.25, "test": 0.25},
        "classes": {"dent-small": "minor-dent", "scratch-big": "moderate-scratch", "smudge": None},
    }


@pytest.fixture
def coco_root(tmp_path: Path) -> Path:
    return make_coco(tmp_path / "coco", {"train": 6, "val": 2, "test": 2})


@pytest.fixture
def yolo_root(tmp_path: Path) -> Path:
    return make_yolo(tmp_path / "yolo", 8)


def real_data_root() -> Path | None:
    root = Path(os.environ.get("CDAT_DATA_ROOT", Path(__file__).parents[3] / "shared" / "datasets"))
    return root if (root / "damage-severity").is_dir() else None
