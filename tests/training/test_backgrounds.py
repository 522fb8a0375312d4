"""Background photos: written with empty labels, read back as a damage data set."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from training.backgrounds import get_args_parser, main, read_exclusions, write_backgrounds
from training.convert import read_dataset
from training.dataconfig import load_dataset_config
from training.errors import TrainingError


def _photo(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), np.full((32, 48, 3), 120, np.uint8))
    return path


def test_exclusions_are_names_with_comments(tmp_path: Path) -> None:
    listed = tmp_path / "damaged.txt"
    listed.write_text("# why\ntrain1.jpg  # a dent\n\n  train2.jpg\n")
    assert read_exclusions(listed) == {"train1.jpg", "train2.jpg"}
    with pytest.raises(TrainingError, match="not a file"):
        read_exclusions(tmp_path / "missing.txt")


def test_backgrounds_read_back_as_unlabelled_damage_photos(tmp_path: Path) -> None:
    # given two intact cars and one scene without a vehicle
    photos = {
        "car-parts-intact": [
            _photo(tmp_path / "a" / "car1.jpg"),
            _photo(tmp_path / "b" / "car2.jpg"),
        ],
        "no-vehicle": [_photo(tmp_path / "c" / "room.jpg")],
    }
    # when written as backgrounds
    out = tmp_path / "backgrounds"
    report = write_backgrounds(out, photos)
    # then the data set config reads back with three train photos and no instance
    assert report == {"car-parts-intact": 2, "no-vehicle": 1}
    records = read_dataset(load_dataset_config(out / "dataset.yaml"))
    assert sorted(r.image.name for r in records) == [
        "car-parts-intact__car1.jpg", "car-parts-intact__car2.jpg", "no-vehicle__room.jpg"
    ]  # fmt: skip
    assert all(r.instances == [] and not r.untyped_damage for r in records)


def test_a_foreign_folder_is_never_overwritten(tmp_path: Path) -> None:
    theirs = tmp_path / "theirs"
    _photo(theirs / "keep.jpg")
    with pytest.raises(TrainingError, match="not an earlier output"):
        main(get_args_parser().parse_args(["--out", str(theirs)]))
    assert (theirs / "keep.jpg").is_file()
