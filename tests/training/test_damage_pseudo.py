"""Damage types for outlined panel damage: the outline is the labeller's, the type the model's."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from cdat.taxonomy import DamageType
from training.closeup import _polygon_mask
from training.convert import read_dataset
from training.damage_pseudo import (
    Detection,
    TypeSettings,
    get_args_parser,
    main,
    make_type_labels,
    region_type,
)
from training.dataconfig import load_dataset_config
from training.errors import TrainingError

from .conftest import write_yaml

SIZE = 100
SETTINGS = TypeSettings(conf=0.01, iou=0.3)


def _square(x0: int, y0: int, side: int = 20) -> list[float]:
    pts = [(x0, y0), (x0 + side, y0), (x0 + side, y0 + side), (x0, y0 + side)]
    return [v / SIZE for xy in pts for v in xy]


def _mask(x0: int, y0: int, side: int = 20) -> np.ndarray:
    return _polygon_mask(_square(x0, y0, side), (SIZE, SIZE), scale=True)


def test_a_region_takes_the_type_of_the_strongest_overlapping_panel_detection() -> None:
    # given a dent and a stronger scratch on the region, and a stronger dent elsewhere
    detections = [
        Detection(DamageType.DENT, 0.2, _mask(10, 10)),
        Detection(DamageType.SCRATCH, 0.4, _mask(12, 12)),
        Detection(DamageType.DENT, 0.9, _mask(60, 60)),
    ]
    # when the region is typed, then the strongest detection ON it names the type
    assert region_type(_mask(10, 10), detections, SETTINGS) is DamageType.SCRATCH


def test_a_lamp_or_glass_guess_never_types_a_panel() -> None:
    detections = [
        Detection(DamageType.LAMP_BROKEN, 0.9, _mask(10, 10)),
        Detection(DamageType.BROKEN_PART, 0.05, _mask(10, 10)),
    ]
    assert region_type(_mask(10, 10), detections, SETTINGS) is DamageType.BROKEN_PART
    assert region_type(_mask(10, 10), detections[:1], SETTINGS) is None


def test_a_detection_that_barely_overlaps_or_is_too_faint_does_not_type_a_region() -> None:
    # given a dent over a quarter of the region (IoU 100/700), and a faint one on it
    off = [Detection(DamageType.DENT, 0.9, _mask(20, 20))]
    faint = [Detection(DamageType.DENT, 0.005, _mask(10, 10))]
    assert region_type(_mask(10, 10), off, SETTINGS) is None
    assert region_type(_mask(10, 10), faint, SETTINGS) is None
    # a looser overlap bound accepts the first
    assert region_type(_mask(10, 10), off, TypeSettings(iou=0.1)) is DamageType.DENT


def dent_on_the_left(image: Path) -> tuple[tuple[int, int], list[Detection]]:
    """A model that sees a dent at (10, 10) and a lamp at (60, 60) in every photo."""
    return (SIZE, SIZE), [
        Detection(DamageType.DENT, 0.3, _mask(10, 10)),
        Detection(DamageType.LAMP_BROKEN, 0.8, _mask(60, 60)),
    ]


@pytest.fixture
def outlines(tmp_path: Path) -> Path:
    """Train photos: p0 a Door region where the model sees a dent, plus a Light region;
    p1 a Door region where it sees only a lamp; p2 only a Light region (typed by the
    config, already in the human-typed set); t0 a test photo that must never be read."""
    root = tmp_path / "outlines"
    rows = {
        "p0": [("0", (10, 10)), ("1", (60, 60))],
        "p1": [("0", (60, 60))],
        "p2": [("1", (60, 60))],
        "t0": [("0", (10, 10))],
    }
    for name, regions in rows.items():
        split = "test" if name.startswith("t") else "train"
        for sub in ("images", "labels"):
            (root / split / sub).mkdir(parents=True, exist_ok=True)
        photo = np.full((SIZE, SIZE, 3), 90, np.uint8)
        cv2.imwrite(str(root / split / "images" / f"{name}.jpg"), photo)
        lines = [f"{c} " + " ".join(f"{v:.4f}" for v in _square(*xy)) for c, xy in regions]
        (root / split / "labels" / f"{name}.txt").write_text("\n".join(lines) + "\n")
    return write_yaml(tmp_path / "outlines.yaml", {
        "name": "gen-outlines", "task": "damage", "format": "yolo", "root": str(root),
        "licence": "generated", "attribution": "made by the test", "names": ["Door", "Light"],
        "splits": {s: {"images": f"{s}/images", "labels": f"{s}/labels"}
                   for s in ("train", "test")},
        "classes": {"Door": None, "Light": "lamp_broken"},
        "skip_images_with": ["Door"],
    })  # fmt: skip


def test_the_labels_form_a_damage_data_set_of_fully_typed_train_photos(
    tmp_path: Path, outlines: Path
) -> None:
    # when types are given to the generated outlines
    out = tmp_path / "typed"
    report = make_type_labels(dent_on_the_left, outlines, out, SETTINGS)
    # then of the two train photos with panel damage, only the one the model types is kept
    assert report["photos_with_panel_damage"] == 2 and report["photos_kept"] == 1
    assert report["labels"] == {"Door -> dent": 1, "Light -> lamp_broken": 1}
    assert [p.name for p in (out / "train" / "images").iterdir()] == ["p0.jpg"]
    # and the written config reads back as a damage data set with the labeller's outlines
    ds = load_dataset_config(out / "dataset.yaml")
    assert ds.task == "damage" and ds.licence == "generated"
    (record,) = read_dataset(ds)
    by_type = {name: np.asarray(poly).reshape(-1, 2) for name, poly in record.instances}
    assert set(by_type) == {"dent", "lamp_broken"}
    assert by_type["dent"].min() == pytest.approx(0.1, abs=0.01)
    assert by_type["lamp_broken"].min() == pytest.approx(0.6, abs=0.01)


def test_with_a_fallback_a_region_the_model_misses_keeps_its_photo(
    tmp_path: Path, outlines: Path
) -> None:
    # given a fallback type for panel regions no detection types
    settings = TypeSettings(conf=0.01, iou=0.3, fallback=DamageType.DENT)
    # when types are given to the generated outlines
    report = make_type_labels(dent_on_the_left, outlines, tmp_path / "typed", settings)
    # then p1, whose Door region the model sees only as a lamp, is kept as a dent too
    assert report["photos_with_panel_damage"] == 2 and report["photos_kept"] == 2
    assert report["labels"] == {"Door -> dent": 2, "Light -> lamp_broken": 1}
    # and the written config names itself after its source
    assert load_dataset_config(tmp_path / "typed" / "dataset.yaml").name == (
        "gen-outlines-types-pseudo"
    )


def test_the_fallback_must_be_a_panel_type() -> None:
    with pytest.raises(SystemExit):
        get_args_parser().parse_args(
            ["--damage", "m.onnx", "--out", "o", "--fallback", "lamp_broken"]
        )


def test_bad_options_are_refused_before_anything_is_written(tmp_path: Path) -> None:
    model = tmp_path / "damage.onnx"
    model.write_bytes(b"not read before the checks")
    a_file = tmp_path / "notes.txt"
    a_file.write_text("keep me")
    theirs = tmp_path / "theirs"
    theirs.mkdir()
    (theirs / "photo.jpg").write_bytes(b"keep me too")
    fresh = tmp_path / "fresh"
    cases = [
        (["--out", str(a_file)], "is a file"),
        (["--out", str(theirs)], "not an earlier output"),
        (["--out", str(fresh), "--conf", "0"], r"--conf 0\.0"),
        (["--out", str(fresh), "--iou", "1.5"], r"--iou 1\.5"),
        (["--out", str(fresh), "--damage", str(a_file)], "expected an existing .onnx"),
    ]
    for argv, message in cases:
        args = get_args_parser().parse_args(["--damage", str(model), *argv])
        with pytest.raises(TrainingError, match=message):
            main(args)
    assert a_file.read_text() == "keep me"
    assert (theirs / "photo.jpg").read_bytes() == b"keep me too"
    assert not fresh.exists()
