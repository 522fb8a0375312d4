"""Dataset configs and converters on generated data, and on the real data sets if present."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from training.convert import (
    assign_splits,
    ensure_dataset,
    read_dataset,
    source_group,
    write_dataset,
)
from training.dataconfig import REPO_ROOT, load_dataset_config, load_training_config
from training.errors import DatasetConfigError, DatasetError

from .conftest import coco_config, real_data_root, write_yaml, yolo_config


def _labels(out: Path, split: str) -> dict[str, list[str]]:
    return {p.stem: p.read_text().splitlines() for p in (out / "labels" / split).glob("*.txt")}


def test_coco_conversion_maps_and_drops_classes(tmp_path: Path, coco_root: Path) -> None:
    # given a COCO set whose config maps two classes and drops `smudge`
    cfg = load_training_config(write_yaml(tmp_path / "c.yaml", coco_config(coco_root)))
    # when it is converted
    manifest = write_dataset(cfg, tmp_path / "out")
    # then the model classes follow the taxonomy order and only mapped classes are written
    assert cfg.classes == ["minor-dent", "severe-scratch"]
    data = yaml.safe_load((tmp_path / "out" / "data.yaml").read_text())
    assert data["names"] == {0: "minor-dent", 1: "severe-scratch"}
    source = json.loads((coco_root / "train.json").read_text())
    kept = sum(1 for a in source["annotations"] if a["category_id"] in (1, 2))
    assert sum(manifest["instances"]["train"].values()) == kept
    rows = [r for rows in _labels(tmp_path / "out", "train").values() for r in rows]
    assert len(rows) == kept
    assert all(r.split()[0] in ("0", "1") and len(r.split()) >= 7 for r in rows)
    assert manifest["images"] == {"train": 12, "val": 4, "test": 4}


def test_source_split_moves_shared_groups_to_train(tmp_path: Path, coco_root: Path) -> None:
    # given a val photo whose augmented copy also sits in train (a leak in the source)
    train = json.loads((coco_root / "train.json").read_text())
    leaked = "val0_jpg.rf.0009.jpg"
    (coco_root / "images" / "train" / leaked).write_bytes(
        (coco_root / "images" / "val" / "val0_jpg.rf.0000.jpg").read_bytes()
    )
    train["images"].append({"id": 999, "file_name": leaked, "width": 96, "height": 96})
    (coco_root / "train.json").write_text(json.dumps(train))
    cfg = load_training_config(write_yaml(tmp_path / "c.yaml", coco_config(coco_root)))
    # when converted keeping the source splits
    manifest = write_dataset(cfg, tmp_path / "out")
    # then the whole group is in train and nowhere else
    groups = {s: set(g) for s, g in manifest["groups"].items()}
    assert "gen-coco/val0_jpg" in groups["train"]
    assert not (groups["train"] & groups["val"]) and not (groups["train"] & groups["test"])
    assert manifest["images"]["val"] == 2


def test_yolo_resplit_keeps_augmented_copies_together(tmp_path: Path, yolo_root: Path) -> None:
    # given a YOLO set with three augmented copies per photo, re-split by fractions
    cfg = load_training_config(write_yaml(tmp_path / "y.yaml", yolo_config(yolo_root)))
    # when converted
    write_dataset(cfg, tmp_path / "out", seed=3)
    # then every split is used and each source photo's copies share one split
    split_of: dict[str, set[str]] = {}
    for split in ("train", "val", "test"):
        for image in (tmp_path / "out" / "images" / split).iterdir():
            split_of.setdefault(source_group(image.name), set()).add(split)
    assert all(len(s) == 1 for s in split_of.values())
    assert {s for v in split_of.values() for s in v} == {"train", "val", "test"}
    # and YOLO boxes became 4-point polygons
    rows = [r for rows in _labels(tmp_path / "out", "train").values() for r in rows]
    assert any(len(r.split()) == 9 for r in rows)


def _converted_images(out: Path) -> int:
    return sum(len(list((out / "images" / split).iterdir())) for split in ("train", "val", "test"))


def test_a_conversion_is_redone_when_a_source_folder_gains_photos(
    tmp_path: Path, yolo_root: Path
) -> None:
    # given a conversion of a YOLO set (a background-photo folder written by a tool reads
    # the same config whatever it holds)
    cfg = load_training_config(write_yaml(tmp_path / "y.yaml", yolo_config(yolo_root)))
    out = tmp_path / "out"
    ensure_dataset(cfg, out)
    before = _converted_images(out)
    # when a photo with no labels is added to the source folder, the config unchanged
    first = next((yolo_root / "train" / "images").iterdir())
    (yolo_root / "train" / "images" / f"extra{first.suffix}").write_bytes(first.read_bytes())
    ensure_dataset(cfg, out)
    # then the conversion is redone and holds it
    assert _converted_images(out) == before + 1
    # and with nothing changed it is reused as it is
    stamp = (out / ".fingerprint").stat().st_mtime_ns
    ensure_dataset(cfg, out)
    assert (out / ".fingerprint").stat().st_mtime_ns == stamp


def test_a_conversion_redone_with_other_splits_keeps_no_photo_in_two(
    tmp_path: Path, yolo_root: Path
) -> None:
    # given a re-split set converted with one seed
    cfg = load_training_config(write_yaml(tmp_path / "y.yaml", yolo_config(yolo_root)))
    out = tmp_path / "out"
    ensure_dataset(cfg, out, seed=3)
    # when it is converted again with another seed (other splits)
    ensure_dataset(cfg, out, seed=4)
    # then each photo is in one split only, as a fresh conversion would put it
    names = [
        i.name for split in ("train", "val", "test") for i in (out / "images" / split).iterdir()
    ]
    assert len(names) == len(set(names)) == 24


def test_merging_two_data_sets(tmp_path: Path, coco_root: Path, yolo_root: Path) -> None:
    # given a training config naming a COCO and a YOLO data set
    write_yaml(tmp_path / "a.yaml", coco_config(coco_root))
    write_yaml(tmp_path / "b.yaml", yolo_config(yolo_root))
    path = write_yaml(tmp_path / "t.yaml", {"task": "damage", "datasets": ["a.yaml", "b.yaml"]})
    # when converted
    cfg = load_training_config(path)
    manifest = write_dataset(cfg, tmp_path / "out")
    # then classes of both are merged in taxonomy order, and files do not collide
    assert cfg.classes == ["minor-dent", "moderate-scratch", "severe-scratch"]
    names = [p.name for p in (tmp_path / "out" / "images" / "train").iterdir()]
    assert any(n.startswith("gen-coco__") for n in names)
    assert any(n.startswith("gen-yolo__") for n in names)
    assert sum(manifest["images"].values()) == 20 + 24


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"task": "cars"}, "task"),
        ({"format": "voc"}, "format"),
        ({"licence": None}, "licence"),
        ({"splits": {"train": {"images": "x"}}}, "splits.train.annotations"),
        ({"resplit": {"train": 0.5, "test": 0.2}}, "resplit"),
        ({"classes": {"dent-small": "minor-dnet"}}, "classes.dent-small"),
    ],
)
def test_bad_config_names_the_field(tmp_path: Path, change: dict, field: str) -> None:
    # given a dataset config with one bad field
    body = coco_config(tmp_path) | change
    path = write_yaml(tmp_path / "bad.yaml", {k: v for k, v in body.items() if v is not None})
    # when it is loaded, then the error names that field
    with pytest.raises(DatasetConfigError) as err:
        load_dataset_config(path)
    assert err.value.field == field
    assert f"'{field}'" in str(err.value)


def test_unmapped_source_class_is_an_error(tmp_path: Path, coco_root: Path) -> None:
    # given a config that forgets `smudge`
    body = coco_config(coco_root)
    del body["classes"]["smudge"]
    cfg = load_training_config(write_yaml(tmp_path / "c.yaml", body))
    # when converted, then the error names the class and how to fix it
    with pytest.raises(DatasetError, match=r"'smudge'.*map it to a project class or to null"):
        write_dataset(cfg, tmp_path / "out")


def test_missing_data_root_is_a_clear_error(tmp_path: Path) -> None:
    cfg = load_dataset_config(write_yaml(tmp_path / "c.yaml", coco_config(tmp_path / "nowhere")))
    with pytest.raises(DatasetError, match=r"data root .* not found.*CDAT_DATA_ROOT"):
        read_dataset(cfg)


REAL = real_data_root()
needs_real = pytest.mark.skipif(REAL is None, reason="real data sets absent (set CDAT_DATA_ROOT)")


@needs_real
@pytest.mark.parametrize("config", ["damage-severity.yaml", "car-parts.yaml", "damaged-parts.yaml"])
def test_real_data_sets_convert_without_leakage(config: str) -> None:
    # given a shipped dataset config and the real files
    ds = load_dataset_config(REPO_ROOT / "datasets" / config, REAL)
    # when read and split
    records = read_dataset(ds)
    split_of = assign_splits(records, ds.resplit, seed=0)
    # then no source photo (stem before `.rf.`) is in two splits, and all splits are used
    seen: dict[str, set[str]] = {}
    for rec in records:
        seen.setdefault(rec.group, set()).add(split_of[rec.group])
    assert all(len(s) == 1 for s in seen.values())
    assert set(split_of.values()) == {"train", "val", "test"}
    assert all(rec.image.is_file() for rec in records[:50])
    mapped = [inst for rec in records for inst in rec.instances]
    assert all(0.0 <= v <= 1.0 for _, poly in mapped[:500] for v in poly)


def test_cardd_config_reads_cardd_layout(tmp_path: Path) -> None:
    from .conftest import make_coco

    # given a generated set laid out and named as the CarDD COCO release
    made = make_coco(tmp_path / "gen", {"train": 2, "val": 1, "test": 1}, copies=1)
    root = tmp_path / "data" / "CarDD_COCO"
    (root / "annotations").mkdir(parents=True)
    names = ["dent", "scratch", "crack", "glass shatter", "lamp broken", "tire flat"]
    for split in ("train", "val", "test"):
        (made / "images" / split).rename(root / f"{split}2017")
        coco = json.loads((made / f"{split}.json").read_text())
        coco["categories"] = [{"id": i + 1, "name": n} for i, n in enumerate(names)]
        (root / "annotations" / f"instances_{split}2017.json").write_text(json.dumps(coco))
    # when the shipped CarDD training config converts it, with nothing but the data root
    cfg = load_training_config(REPO_ROOT / "datasets" / "damage-with-cardd.yaml", tmp_path / "data")
    cardd = next(d for d in cfg.datasets if d.name == "cardd")
    records = read_dataset(cardd)
    # then every photo is read, in its published split, with classes mapped into the taxonomy
    assert sorted(r.source_split for r in records) == ["test", "train", "train", "val"]
    mapped = {name for r in records for name, _ in r.instances}
    # CarDD labels types only, and no severity is invented for it
    assert mapped and mapped <= {"dent", "scratch", "crack"}
    assert "glass_shatter" in cfg.classes and "dent" in cfg.classes
