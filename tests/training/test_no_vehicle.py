"""The no-vehicle split: licences decide what may teach, the file name decides the rest."""

from __future__ import annotations

from pathlib import Path

import pytest

from training.errors import DatasetError
from training.no_vehicle import NoVehiclePhoto, no_vehicle_split, read_no_vehicle


def _write_set(root: Path, rows: list[tuple[str, str]]) -> None:
    folder = root / "no-vehicle"
    (folder / "images").mkdir(parents=True)
    lines = ["file,source,source_path,licence,width,height"]
    for name, licence in rows:
        (folder / "images" / name).write_bytes(b"jpeg")
        lines.append(f"{name},gen,made-by-test,{licence},8,8")
    (folder / "manifest.csv").write_text("\n".join(lines) + "\n")


def test_non_commercial_and_no_derivative_photos_only_measure(tmp_path: Path) -> None:
    # given 60 photos of each licence kind
    names = [f"p{k:03d}.jpg" for k in range(60)]
    # then a non-commercial or no-derivative photo is always in test, whatever its name
    for name in names:
        for licence in ("CC-BY-NC-2.0", "CC-BY-NC-SA-2.0", "CC-BY-ND-2.0"):
            photo = NoVehiclePhoto(tmp_path / name, licence, "gen")
            assert not photo.trainable and photo.split == "test"
    # and trainable photos spread over all three splits, mostly train
    splits = [NoVehiclePhoto(tmp_path / n, "CC-BY-2.0", "gen").split for n in names]
    assert {"train", "val", "test"} <= set(splits)
    assert splits.count("train") > len(names) / 2


def test_the_split_is_a_pure_function_of_the_name(tmp_path: Path) -> None:
    # given the same photo listed in two folders
    a = NoVehiclePhoto(tmp_path / "x" / "same.jpg", "CC0-1.0", "gen")
    b = NoVehiclePhoto(tmp_path / "y" / "same.jpg", "CC0-1.0", "other")
    # then both land in the same split
    assert a.split == b.split


def test_the_set_is_read_from_its_manifest(tmp_path: Path) -> None:
    _write_set(tmp_path, [("a.jpg", "CC-BY-NC-2.0"), ("b.jpg", "CC0-1.0")])
    photos = read_no_vehicle(tmp_path)
    assert [p.path.name for p in photos] == ["a.jpg", "b.jpg"]
    assert "a.jpg" in {p.path.name for p in no_vehicle_split(tmp_path, "test")}


def test_a_missing_set_or_photo_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="no-vehicle photos not found"):
        read_no_vehicle(tmp_path)
    _write_set(tmp_path, [("a.jpg", "CC0-1.0")])
    (tmp_path / "no-vehicle" / "images" / "a.jpg").unlink()
    with pytest.raises(DatasetError, match="1 listed photos missing"):
        read_no_vehicle(tmp_path)
