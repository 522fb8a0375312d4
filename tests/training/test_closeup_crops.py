"""Close-up crops: what stays labelled in a window, and a training config choosing crops."""

from __future__ import annotations

from pathlib import Path

import pytest

from training.closeup_crops import clip_polygon
from training.convert import write_dataset
from training.dataconfig import REPO_ROOT, load_training_config

from .conftest import mixed_training_config, real_data_root

PHOTO = (640, 640)
WINDOW = (0, 0, 320, 320)


def _square(x: float, y: float, w: float, h: float) -> list[float]:
    """A rectangle in photo pixels as a normalised polygon."""
    corners = [(x, y), (x + w, y), (x + w, y + h), (x, y + h)]
    return [v / 640 for point in corners for v in point]


def test_a_small_damage_wholly_inside_the_window_stays_labelled() -> None:
    # given a scratch of 30 x 6 px, well under 1% of a 320 px window, inside it
    scratch = _square(100, 100, 30, 6)
    # when the window is cut keeping whole instances (damage), and by the part rule
    kept = clip_polygon(scratch, PHOTO, WINDOW, keep_whole=True)
    parts_rule = clip_polygon(scratch, PHOTO, WINDOW)
    # then damage keeps it, where the part rule drops it as a sliver
    assert len(kept) == 1
    xs, ys = kept[0][0::2], kept[0][1::2]
    assert min(xs) == pytest.approx(100 / 320, abs=0.01)
    assert max(ys) == pytest.approx(105 / 320, abs=0.01)
    assert parts_rule == []


def test_a_small_damage_mostly_outside_the_window_is_dropped() -> None:
    # given a scratch of 40 x 6 px of which only a quarter lies inside the window
    scratch = _square(310, 100, 40, 6)
    # when cut keeping whole instances, then its sliver is not labelled
    assert clip_polygon(scratch, PHOTO, WINDOW, keep_whole=True) == []


def test_a_large_part_cut_by_the_window_keeps_its_inside() -> None:
    # given a part of which a third (100 x 200 px) lies inside the window
    part = _square(220, 50, 300, 200)
    # when cut by either rule, then the piece inside is labelled
    for keep_whole in (False, True):
        (piece,) = clip_polygon(part, PHOTO, WINDOW, keep_whole=keep_whole)
        assert max(piece[0::2]) == pytest.approx(1.0, abs=0.01)


def test_a_training_config_adds_crops_of_one_data_set_to_train_only(
    tmp_path: Path, coco_root: Path
) -> None:
    # given a training config asking for one crop per photo of its data set
    cfg = load_training_config(
        mixed_training_config(tmp_path, coco_root, {"closeup_crops": {"gen-coco": 1}})
    )
    # when converted
    manifest = write_dataset(cfg, tmp_path / "out")
    # then crops are train photos, each labelled, and val and test have none; a crop has no
    # severity sidecar, so the severity stage never learns from a photo cut short
    crops = sorted((tmp_path / "out" / "images" / "train").glob("*.crop0.jpg"))
    assert crops
    for crop in crops:
        label = tmp_path / "out" / "labels" / "train" / f"{crop.stem}.txt"
        assert label.read_text().strip()
        assert not (tmp_path / "out" / "severity" / "train" / f"{crop.stem}.txt").exists()
    for split in ("val", "test"):
        assert not list((tmp_path / "out" / "images" / split).glob("*.crop*"))
    assert manifest["images"]["train"] == 12 + len(crops)


@pytest.mark.skipif(real_data_root() is None, reason="real data sets absent (set CDAT_DATA_ROOT)")
def test_the_damage_crops_config_crops_damage_severity_only() -> None:
    # given the shipped damage-crops config, when loaded
    cfg = load_training_config(REPO_ROOT / "datasets" / "damage-crops.yaml", real_data_root())
    # then only damage-severity's photos are cropped, once each
    assert {ds.name: ds.closeup_crops for ds in cfg.datasets} == {
        "damage-severity": 1,
        "damaged-parts": 0,
    }
    assert cfg.classes == load_training_config(REPO_ROOT / "datasets" / "damage.yaml").classes
