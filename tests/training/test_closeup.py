"""The close-up part test on a tiny generated set with known answers, and the real mappings."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from cdat.findings import Box, PartInstance, PhotoAnalysis
from cdat.taxonomy import CarPart, PartFamily
from inference.quality import NO_VEHICLE, issue
from training.closeup import (
    evaluate_closeups,
    get_args_parser,
    main,
    part_families,
    sweep_closeups,
)
from training.convert import read_dataset
from training.dataconfig import load_dataset_config
from training.errors import TrainingError

from .conftest import real_data_root, write_yaml

SIZE = 100
NAMES = ["Door", "Light", "Fender"]
# A part polygon covering the left half of every photo: a door.
DOOR = ((0.0, 0.0), (50.0, 0.0), (50.0, 100.0), (0.0, 100.0))


def _square(x0: int, y0: int, side: int = 20) -> str:
    pts = [(x0, y0), (x0 + side, y0), (x0 + side, y0 + side), (x0, y0 + side)]
    return " ".join(f"{x / SIZE:.4f} {y / SIZE:.4f}" for x, y in pts)


@pytest.fixture
def closeups(tmp_path: Path) -> Path:
    """Six photos, all in test: a Door region on the door, a Light region on the door
    (wrong family), a Fender region on no part (an unlisted panel: right)."""
    root = tmp_path / "closeups"
    for sub in ("images", "labels"):
        (root / "test" / sub).mkdir(parents=True)
    for k in range(6):
        cv2.imwrite(
            str(root / "test" / "images" / f"p{k}.jpg"), np.full((SIZE, SIZE, 3), 90, np.uint8)
        )
        rows = [f"0 {_square(10, 10)}", f"1 {_square(10, 60)}", f"2 {_square(70, 40)}"]
        (root / "test" / "labels" / f"p{k}.txt").write_text("\n".join(rows) + "\n")
    return write_yaml(tmp_path / "closeups.yaml", {
        "name": "gen-closeups", "task": "damage", "format": "yolo", "root": str(root),
        "licence": "generated", "names": NAMES,
        "splits": {"test": {"images": "test/images", "labels": "test/labels"}},
        "classes": {n: None for n in NAMES},
        "part_families": {"Door": "door", "Light": "light", "Fender": "unlisted_panel"},
    })  # fmt: skip


class DoorEverywhere:
    """Sees a front-left door over the left half of every photo; the last photo, nothing."""

    model_versions = {"parts": "fixed"}

    def analyze(self, photos):
        out = []
        for photo in photos:
            if photo.photo_id == "p5.jpg":
                refused = (issue(NO_VEHICLE, "none", "retake", blocking=True),)
                out.append(PhotoAnalysis(photo.photo_id, SIZE, SIZE, quality_issues=refused))
                continue
            door = PartInstance(CarPart.FRONT_LEFT_DOOR, 0.9, Box(0, 0, 50, 100), DOOR)
            out.append(PhotoAnalysis(photo.photo_id, SIZE, SIZE, parts=(door,)))
        return out


def test_closeup_accuracy_counts_families_and_refusals(closeups: Path) -> None:
    # when the close-up test runs over the six photos
    report = evaluate_closeups(DoorEverywhere(), closeups, split="test")
    families = report["closeup_per_family"]
    # then doors on the door are right, lights on the door wrong, fenders off-part right;
    # the photo with no parts puts the door region on an unlisted panel (wrong)
    assert families["door"] == {
        "regions": 6,
        "correct": 5,
        "accuracy": 5 / 6,
        "found": {"door": 5, "unlisted_panel": 1},
    }
    assert families["light"]["correct"] == 0
    # and each miss says where it went
    assert families["light"]["found"] == {"door": 5, "unlisted_panel": 1}
    assert families["unlisted_panel"]["correct"] == 6
    assert report["closeup_part_accuracy"] == pytest.approx(11 / 18)
    assert report["closeup_photos"] == 6 and report["closeup_no_vehicle_refusals"] == 1


def test_a_family_that_does_not_exist_is_a_config_error(tmp_path: Path, closeups: Path) -> None:
    from training.errors import DatasetConfigError

    bad = tmp_path / "bad.yaml"
    bad.write_text(closeups.read_text().replace("unlisted_panel", "roof"))
    with pytest.raises(DatasetConfigError, match="allowed: hood"):
        part_families(bad)


DAMAGED_PARTS = Path(__file__).parents[2] / "datasets" / "damaged-parts.yaml"


@pytest.mark.skipif(real_data_root() is None, reason="real data sets not in CDAT_DATA_ROOT")
def test_damaged_parts_mappings_hold_on_the_real_files() -> None:
    ds = load_dataset_config(DAMAGED_PARTS)
    families = part_families(DAMAGED_PARTS)
    assert set(families) == set(ds.yolo_names)
    assert families["Fender"] is PartFamily.FENDER
    records = read_dataset(ds)
    assert len(records) > 3000
    panels = {"Bonnet", "Bumper", "Dickey", "Door", "Fender"}
    assert ds.skip_images_with == panels
    kept = [r for r in records if not r.untyped_damage]
    # only photos whose every region is a lamp or glass teach the damage model
    assert kept and all(
        name in {"lamp_broken", "glass_shatter"} for r in kept for name, _ in r.instances
    )
    # and a photo with no label at all is a damage photo nobody outlined: left out too
    assert all(r.instances for r in kept)


def test_a_threshold_sweep_reports_each_threshold_from_one_pass(closeups: Path) -> None:
    # given a model whose door scores 0.9
    # when the close-up test compares 0.5 with 0.95
    reports = sweep_closeups(DoorEverywhere(), closeups, "test", 0, (0.5, 0.95))
    # then at 0.5 the door is kept and at 0.95 every region falls on no listed part
    assert reports[0.5]["closeup_per_family"]["door"]["correct"] == 5
    assert reports[0.95]["closeup_per_family"]["door"]["correct"] == 0
    assert reports[0.95]["closeup_per_family"]["door"]["found"] == {"unlisted_panel": 6}
    # and the refusal, decided by the served rule, is the same at both
    assert reports[0.5]["closeup_no_vehicle_refusals"] == 1
    assert reports[0.95]["closeup_no_vehicle_refusals"] == 1


def test_a_folder_given_as_out_is_refused_before_any_photo_is_read(tmp_path: Path) -> None:
    # given a part model file and an existing folder as --out
    model = tmp_path / "parts.onnx"
    model.write_bytes(b"not read: the check comes first")
    folder = tmp_path / "reports"
    folder.mkdir()
    args = get_args_parser().parse_args(["--parts", str(model), "--out", str(folder)])
    # when the close-up test starts
    with pytest.raises(TrainingError, match="is a folder"):
        main(args)
    # then the folder is left as it was
    assert list(folder.iterdir()) == []
