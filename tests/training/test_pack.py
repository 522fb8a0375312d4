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
    # then every photo is a 48 px WebP, labelled, and data.yaml points at the pack
    photos = sorted((tmp_path / "pack" / "images" / "train").iterdir())
    assert photos and all(p.suffix == ".webp" for p in photos)
    assert all(max(cv2.imread(str(p)).shape[:2]) == 48 for p in photos)
    assert all((tmp_path / "pack" / "labels" / "train" / f"{p.stem}.txt").is_file() for p in photos)
    data = yaml.safe_load((tmp_path / "pack" / "data.yaml").read_text())
    assert data["path"] == "pack"
    # and the test split stays here: training does not read it
    assert "test" not in data and not (tmp_path / "pack" / "images" / "test").exists()
    # and a budget it does not fit is refused
    tight = pack_cli.get_args_parser().parse_args([*args, "--budget-mib", "0.001"])
    with pytest.raises(TrainingError, match=r"over the 0\.001 MiB budget"):
        pack_cli.main(tight)


def test_a_pack_in_shards_deals_the_train_photos_out_and_lists_every_shard(
    coco_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import json

    # given a converted data set, packed whole and packed in two shards
    monkeypatch.chdir(tmp_path)
    config = write_yaml(tmp_path / "d.yaml", coco_config(coco_root))
    base = ["--config", str(config), "--imgsz", "48", "--data-dir", "conv"]
    parse = pack_cli.get_args_parser().parse_args
    assert pack_cli.main(parse([*base, "--out", "whole"])) == 0
    assert pack_cli.main(parse([*base, "--out", "pack", "--shards", "2"])) == 0
    # then the train photos are split between `pack` and `pack-2`, none lost, none twice
    whole = {p.name for p in (tmp_path / "whole" / "images" / "train").iterdir()}
    first = {p.name for p in (tmp_path / "pack" / "images" / "train").iterdir()}
    second = {p.name for p in (tmp_path / "pack-2" / "images" / "train").iterdir()}
    assert first and second and not first & second and first | second == whole
    for shard, names in (("pack", first), ("pack-2", second)):
        labels = {p.stem for p in (tmp_path / shard / "labels" / "train").iterdir()}
        assert labels == {Path(n).stem for n in names}
    # and val travels with the first shard only, whose data.yaml lists both train folders
    assert not (tmp_path / "pack-2" / "images" / "val").exists()
    data = yaml.safe_load((tmp_path / "pack" / "data.yaml").read_text())
    assert data["train"] == ["images/train", "../pack-2/images/train"]
    assert data["path"] == "pack"
    # and the pack says what it was made from, for the lent machine's run record
    record = json.loads((tmp_path / "pack" / "pack.json").read_text())
    assert record["config"] == str(config) and record["shards"] == ["pack", "pack-2"]


def test_zero_shards_are_refused(coco_root: Path, tmp_path: Path) -> None:
    config = write_yaml(tmp_path / "d.yaml", coco_config(coco_root))
    args = ["--config", str(config), "--out", "p", "--shards", "0"]
    with pytest.raises(TrainingError, match="--shards at least 1"):
        pack_cli.main(pack_cli.get_args_parser().parse_args(args))


def test_label_polygon_loses_its_pixel_staircase_but_not_its_shape() -> None:
    # given a 40 x 20 px rectangle outlined by a vertex every pixel along its top edge
    width, height = 100, 50
    top = [(x, 10) for x in range(10, 51)]
    outline = [*top, (50, 30), (10, 30)]
    line = "3 " + " ".join(f"{x / width:.6f} {y / height:.6f}" for x, y in outline)
    # when it is compacted at that size
    compact = pack_cli.compact_label_line(line, width, height)
    # then the class stays, the corners stay, and the collinear vertices go
    fields = compact.split()
    assert fields[0] == "3"
    corners = {
        (round(float(x) * width), round(float(y) * height))
        for x, y in zip(fields[1::2], fields[2::2], strict=True)
    }
    assert corners == {(10, 10), (50, 10), (50, 30), (10, 30)}
    assert all(len(v.split(".")[1]) == 4 for v in fields[1:])


def test_box_label_keeps_its_four_values() -> None:
    # given a box label; when compacted; then it is the same box to 4 decimals
    assert pack_cli.compact_label_line("1 0.5 0.25 0.125 0.0625", 64, 64) == (
        "1 0.5000 0.2500 0.1250 0.0625"
    )


def test_malformed_label_is_a_clear_error_naming_the_file(
    coco_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given a converted data set whose first training label file is corrupted
    monkeypatch.chdir(tmp_path)
    config = write_yaml(tmp_path / "d.yaml", coco_config(coco_root))
    args = ["--config", str(config), "--out", "pack", "--imgsz", "48", "--data-dir", "conv"]
    assert pack_cli.main(pack_cli.get_args_parser().parse_args(args)) == 0
    label = sorted((tmp_path / "conv").rglob("labels/train/*.txt"))[0]
    label.write_text("0 0.1 0.2 0.3 oops 0.5 0.6\n")
    # when it is packed again; then the error names the file, not a traceback
    with pytest.raises(TrainingError, match=rf"{label.name}: not a YOLO label line"):
        pack_cli.main(pack_cli.get_args_parser().parse_args(args))
