"""Packing converted data for a lent GPU: small copies, relative paths, a size budget."""

from __future__ import annotations

from pathlib import Path

import cv2
import pytest
import yaml

from training import pack as pack_cli
from training.errors import TrainingError

from .conftest import coco_config, write_yaml


def test_pack_shrinks_photos_keeps_labels_and_refuses_over_budget(
    coco_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given a converted data set of 96 px photos
    monkeypatch.chdir(tmp_path)
    config = write_yaml(tmp_path / "d.yaml", coco_config(coco_root))
    args = ["--config", str(config), "--out", "pack", "--imgsz", "48", "--data-dir", "conv"]
    # when it is packed at 48 px
    assert pack_cli.main(pack_cli.get_args_parser().parse_args(args)) == 0
    # then every photo is 48 px on its long side, labelled, and data.yaml points at the pack
    photos = sorted((tmp_path / "pack" / "images" / "train").iterdir())
    assert photos and all(max(cv2.imread(str(p)).shape[:2]) == 48 for p in photos)
    assert all((tmp_path / "pack" / "labels" / "train" / f"{p.stem}.txt").is_file() for p in photos)
    assert yaml.safe_load((tmp_path / "pack" / "data.yaml").read_text())["path"] == "pack"
    # and a budget it does not fit is refused
    tight = pack_cli.get_args_parser().parse_args([*args, "--budget-mib", "0.001"])
    with pytest.raises(TrainingError, match=r"over the 0\.001 MiB budget"):
        pack_cli.main(tight)
