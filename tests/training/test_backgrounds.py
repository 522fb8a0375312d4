"""Background photos: written with empty labels, read back as a damage data set."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from training.backgrounds import (
    CAR_PARTS,
    CLOSEUPS,
    background_closeups,
    get_args_parser,
    main,
    read_exclusions,
    split_photos,
    write_backgrounds,
)
from training.convert import read_dataset
from training.dataconfig import load_dataset_config
from training.errors import TrainingError
from training.intact_closeups import intact_closeups


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


def test_close_ups_of_intact_cars_are_written_as_backgrounds_too(tmp_path: Path) -> None:
    # given one intact car whose outline fills its lower part, and its close-up windows
    car = _photo(tmp_path / "a" / "car1.jpg")
    cv2.imwrite(str(car), np.full((512, 512, 3), 120, np.uint8))
    closeups = intact_closeups([(car, [("hood", [0.1, 0.3, 0.9, 0.3, 0.9, 0.9, 0.1, 0.9])])])
    assert closeups
    # when written beside the whole photo
    out = tmp_path / "backgrounds"
    report = write_backgrounds(out, {"car-parts-intact": [car]}, closeups)
    # then each close-up is one more unlabelled photo of the data set
    assert report == {"car-parts-intact": 1, CLOSEUPS: len(closeups)}
    records = read_dataset(load_dataset_config(out / "dataset.yaml"))
    names = sorted(r.image.name for r in records)
    assert names == sorted(
        ["car-parts-intact__car1.jpg"] + [f"{CLOSEUPS}__{c.name}" for c in closeups]
    )
    assert all(r.instances == [] for r in records)


def test_close_ups_come_only_from_the_intact_train_cars(tmp_path: Path, data_root: Path) -> None:
    if not (data_root / "car-parts").is_dir():
        pytest.skip("car-parts not available")
    closeups = background_closeups(data_root, {"train220.jpg"}, 0)
    sources = {c.name.rsplit("-", 1)[0] for c in closeups}
    train = {p.stem for p in split_photos(CAR_PARTS, "train", 0, data_root)}
    assert len(closeups) > 300 and sources <= train and "train220" not in sources


def test_a_foreign_folder_is_never_overwritten(tmp_path: Path) -> None:
    theirs = tmp_path / "theirs"
    _photo(theirs / "keep.jpg")
    with pytest.raises(TrainingError, match="not an earlier output"):
        main(get_args_parser().parse_args(["--out", str(theirs)]))
    assert (theirs / "keep.jpg").is_file()
