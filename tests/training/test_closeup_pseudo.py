"""Close-up part labels from the part model, kept only where the photo's own label agrees."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from cdat.findings import Box, PartInstance, PhotoAnalysis
from cdat.taxonomy import CarPart, PartFamily
from training.closeup import Region, _polygon_mask
from training.closeup_pseudo import (
    PseudoSettings,
    cut_masks,
    make_pseudo_labels,
    mask_polygons,
    photo_labels,
)
from training.convert import read_dataset, write_dataset
from training.dataconfig import load_dataset_config, load_training_config

from .conftest import write_yaml

SIZE = 100
LEFT = ((0.0, 0.0), (50.0, 0.0), (50.0, 100.0), (0.0, 100.0))
RIGHT = ((50.0, 0.0), (100.0, 0.0), (100.0, 100.0), (50.0, 100.0))
SETTINGS = PseudoSettings(conf=0.1, keep_conf=0.5)


def _square(x0: int, y0: int, side: int = 20) -> list[float]:
    pts = [(x0, y0), (x0 + side, y0), (x0 + side, y0 + side), (x0, y0 + side)]
    return [v / SIZE for xy in pts for v in xy]


def _region(family: PartFamily, x0: int, y0: int) -> Region:
    return Region(family, _polygon_mask(_square(x0, y0), (SIZE, SIZE), scale=True))


def _part(part: CarPart, score: float, polygon=LEFT) -> PartInstance:
    return PartInstance(part, score, Box(0, 0, 50, 100), polygon)


def _masks(parts: list[PartInstance]) -> list[np.ndarray]:
    return [_polygon_mask(list(np.ravel(p.polygon)), (SIZE, SIZE), scale=False) for p in parts]


def test_a_region_on_a_part_of_its_family_keeps_that_part_even_when_faint() -> None:
    # given a door region on a faint door and a confident hood elsewhere
    parts = [_part(CarPart.FRONT_LEFT_DOOR, 0.2), _part(CarPart.HOOD, 0.8, RIGHT)]
    regions = [_region(PartFamily.DOOR, 10, 10)]
    # when labels are chosen
    keep = photo_labels(regions, parts, _masks(parts), SETTINGS)
    # then both are labels: the door confirmed, the hood confident and uncontradicted
    assert keep == [0, 1]


def test_a_region_on_a_part_of_another_family_rejects_the_photo() -> None:
    parts = [_part(CarPart.FRONT_LEFT_DOOR, 0.9)]
    regions = [_region(PartFamily.LIGHT, 10, 10)]
    assert photo_labels(regions, parts, _masks(parts), SETTINGS) is None


def test_a_region_on_no_part_rejects_the_photo_unless_it_names_no_listed_part() -> None:
    parts = [_part(CarPart.FRONT_LEFT_DOOR, 0.9)]
    # a door region on the right half, where no part was found: not confirmed
    assert photo_labels([_region(PartFamily.DOOR, 70, 10)], parts, _masks(parts), SETTINGS) is None
    # a fender there is right: the confident door is kept, the fender stays background
    fender = [_region(PartFamily.UNLISTED_PANEL, 70, 10)]
    assert photo_labels(fender, parts, _masks(parts), SETTINGS) == [0]
    # a fender on the door contradicts it: the photo is left out
    on_door = [_region(PartFamily.UNLISTED_PANEL, 10, 10)]
    assert photo_labels(on_door, parts, _masks(parts), SETTINGS) is None


def test_a_faint_part_no_region_confirms_is_not_a_label() -> None:
    parts = [_part(CarPart.FRONT_LEFT_DOOR, 0.9), _part(CarPart.HOOD, 0.3, RIGHT)]
    keep = photo_labels([_region(PartFamily.DOOR, 10, 10)], parts, _masks(parts), SETTINGS)
    assert keep == [0]


FALLBACK = PseudoSettings(conf=0.1, keep_conf=0.5, fallback_conf=0.02)
LOWER_LEFT = ((0.0, 50.0), (50.0, 50.0), (50.0, 100.0), (0.0, 100.0))


def test_a_region_on_a_part_too_faint_to_serve_is_labelled_only_with_the_family_fallback() -> None:
    # given a light region on a light the model barely sees, and a faint door beside it
    parts = [_part(CarPart.FRONT_LEFT_LIGHT, 0.05), _part(CarPart.FRONT_LEFT_DOOR, 0.3, RIGHT)]
    regions = [_region(PartFamily.LIGHT, 10, 10)]
    # when labels are chosen without the fallback, the region is unconfirmed
    assert photo_labels(regions, parts, _masks(parts), SETTINGS) is None
    # then with it, the light the person named is the label, and nothing faint besides
    assert photo_labels(regions, parts, _masks(parts), FALLBACK) == [0]


def test_the_fallback_never_overrules_a_confident_part_of_another_family() -> None:
    parts = [_part(CarPart.FRONT_LEFT_DOOR, 0.8), _part(CarPart.FRONT_LEFT_LIGHT, 0.05)]
    regions = [_region(PartFamily.LIGHT, 10, 10)]
    assert photo_labels(regions, parts, _masks(parts), FALLBACK) is None
    # but a faint part of another family gives way to the named family
    parts = [_part(CarPart.FRONT_LEFT_DOOR, 0.2), _part(CarPart.FRONT_LEFT_LIGHT, 0.05)]
    assert photo_labels(regions, parts, _masks(parts), FALLBACK) == [1]


def test_a_label_that_covers_a_confident_part_of_another_class_rejects_the_photo() -> None:
    # given a light found by the fallback over the left half, and a confident door over the
    # lower-left quarter the region does not touch: the two labels cannot both be right
    parts = [
        _part(CarPart.FRONT_LEFT_LIGHT, 0.05),
        _part(CarPart.FRONT_LEFT_DOOR, 0.9, LOWER_LEFT),
    ]
    regions = [_region(PartFamily.LIGHT, 10, 10)]
    assert photo_labels(regions, parts, _masks(parts), FALLBACK) is None


class DoorOnTheLeft:
    """Sees a front-left door over the left half of every photo, at 0.9."""

    def analyze(self, photos):
        door = _part(CarPart.FRONT_LEFT_DOOR, 0.9)
        return [PhotoAnalysis(p.photo_id, SIZE, SIZE, parts=(door,)) for p in photos]


class DoorOnTheLeftSeen(DoorOnTheLeft):
    """Also remembers which photos it was shown."""

    def __init__(self) -> None:
        self.seen: list[str] = []

    def analyze(self, photos):
        self.seen += [p.photo_id for p in photos]
        return super().analyze(photos)


def _closeup_set(tmp_path: Path, name: str, rows: dict[str, str], **config: object) -> Path:
    """A YOLO close-up set `name`: photo stem -> class id (0 Door, 1 Light), one 20 px
    square each; a stem starting with `v` is in the published val split, `t` in test, or
    `split:stem` names its split."""
    root = tmp_path / name
    splits = {"t": "test", "v": "val"}
    for key, cls in rows.items():
        split, _, stem = key.rpartition(":")
        split = split or splits.get(stem[0], "train")
        for sub in ("images", "labels"):
            (root / split / sub).mkdir(parents=True, exist_ok=True)
        image = np.full((SIZE, SIZE, 3), 90, np.uint8)
        cv2.imwrite(str(root / split / "images" / f"{stem}.jpg"), image)
        square = " ".join(f"{v:.4f}" for v in _square(10, 10))
        (root / split / "labels" / f"{stem}.txt").write_text(f"{cls} {square}\n")
    return write_yaml(tmp_path / f"{name}.yaml", {
        "name": name, "task": "damage", "format": "yolo", "root": str(root),
        "licence": "generated", "attribution": "made by the test", "names": ["Door", "Light"],
        "splits": {s: {"images": f"{s}/images", "labels": f"{s}/labels"}
                   for s in ("train", "val", "test")},
        "classes": {"Door": None, "Light": None},
        "part_families": {"Door": "door", "Light": "light"},
        **config,
    })  # fmt: skip


def test_labels_of_two_close_up_sets_train_side_by_side(tmp_path: Path) -> None:
    # given a set with its own published train/val/test split (car-parts-damage-like) and a
    # set re-split by photo group (damaged-parts-like), whose photos share file names
    # (a Roboflow copy of p1 is published in val: the converter counts it as train)
    rows = {"p0": "0", "p1.rf.a": "0", "val:p1.rf.b": "0", "v0": "0", "t0": "0"}
    published = _closeup_set(tmp_path, "gen-published", rows)
    regrouped = {"p0": "0", "v1": "0", "t1": "0"}  # all train once re-split
    resplit = _closeup_set(tmp_path, "gen-resplit", regrouped, resplit={"train": 1.0})
    # when labels are made from each
    seen = DoorOnTheLeftSeen()
    make_pseudo_labels(seen, published, tmp_path / "pseudo-published", SETTINGS)
    make_pseudo_labels(DoorOnTheLeft(), resplit, tmp_path / "pseudo-resplit", SETTINGS)
    # then only the published train photos were read
    assert sorted(seen.seen) == ["p0.jpg", "p1.rf.a.jpg"]
    # and each labelled set is named (and carded) after its source
    a = load_dataset_config(tmp_path / "pseudo-published" / "dataset.yaml")
    b = load_dataset_config(tmp_path / "pseudo-resplit" / "dataset.yaml")
    assert (a.name, a.card) == ("gen-published-pseudo", "gen-published-pseudo.md")
    assert (b.name, b.card) == ("gen-resplit-pseudo", "gen-resplit-pseudo.md")
    # and a training config listing both converts all five photos, none overwriting another
    config = write_yaml(tmp_path / "both.yaml", {
        "name": "both", "task": "parts",
        "datasets": ["pseudo-published/dataset.yaml", "pseudo-resplit/dataset.yaml"],
    })  # fmt: skip
    manifest = write_dataset(load_training_config(config), tmp_path / "converted")
    assert manifest["images"] == {"train": 5}
    assert len(list((tmp_path / "converted" / "images" / "train").iterdir())) == 5


@pytest.fixture
def closeups(tmp_path: Path) -> Path:
    """Train photos: p0, p1 with a Door region on the left (confirmed); p2 with a Light
    region on the left (contradicted); a test photo t0 that must never be read."""
    root = tmp_path / "closeups"
    rows = {"p0": "0", "p1": "0", "p2": "1", "t0": "0"}
    for name, cls in rows.items():
        split = "test" if name.startswith("t") else "train"
        for sub in ("images", "labels"):
            (root / split / sub).mkdir(parents=True, exist_ok=True)
        image = np.full((SIZE, SIZE, 3), 90, np.uint8)
        cv2.imwrite(str(root / split / "images" / f"{name}.jpg"), image)
        square = " ".join(f"{v:.4f}" for v in _square(10, 10))
        (root / split / "labels" / f"{name}.txt").write_text(f"{cls} {square}\n")
    return write_yaml(tmp_path / "closeups.yaml", {
        "name": "gen-closeups", "task": "damage", "format": "yolo", "root": str(root),
        "licence": "generated", "attribution": "made by the test", "names": ["Door", "Light"],
        "splits": {s: {"images": f"{s}/images", "labels": f"{s}/labels"}
                   for s in ("train", "test")},
        "classes": {"Door": None, "Light": None},
        "part_families": {"Door": "door", "Light": "light"},
    })  # fmt: skip


def test_the_labels_form_a_parts_data_set_of_confirmed_train_photos(
    tmp_path: Path, closeups: Path
) -> None:
    # when labels are made from the generated close-ups
    out = tmp_path / "pseudo"
    report = make_pseudo_labels(DoorOnTheLeft(), closeups, out, SETTINGS)
    # then the two confirmed train photos are kept; the contradicted and the test one not
    assert report["photos"] == 3 and report["photos_kept"] == 2
    assert report["labels_per_part"] == {"front_left_door": 2}
    assert sorted(p.name for p in (out / "train" / "images").iterdir()) == ["p0.jpg", "p1.jpg"]
    # and the written config reads back as a parts data set with the door outline
    ds = load_dataset_config(out / "dataset.yaml")
    assert ds.task == "parts" and ds.licence == "generated"
    records = read_dataset(ds)
    assert {r.image.name for r in records} == {"p0.jpg", "p1.jpg"}
    name, polygon = records[0].instances[0]
    assert name == "front_left_door"
    xs = np.asarray(polygon).reshape(-1, 2)[:, 0]
    assert xs.min() == pytest.approx(0.0, abs=0.03) and xs.max() == pytest.approx(0.5, abs=0.03)


def test_an_out_that_is_a_file_or_someone_elses_folder_is_refused(tmp_path: Path) -> None:
    from training.closeup_pseudo import get_args_parser, main
    from training.errors import TrainingError

    model = tmp_path / "parts.onnx"
    model.write_bytes(b"not read before the checks")
    a_file = tmp_path / "notes.txt"
    a_file.write_text("keep me")
    theirs = tmp_path / "theirs"
    theirs.mkdir()
    (theirs / "photo.jpg").write_bytes(b"keep me too")
    for out, message in ((a_file, "is a file"), (theirs, "not an earlier output")):
        args = get_args_parser().parse_args(["--parts", str(model), "--out", str(out)])
        # when the tool is pointed at it
        with pytest.raises(TrainingError, match=message):
            main(args)
    # then nothing there was touched
    assert a_file.read_text() == "keep me"
    assert (theirs / "photo.jpg").read_bytes() == b"keep me too"


def test_a_fallback_threshold_above_the_served_one_is_refused(tmp_path: Path) -> None:
    from training.closeup_pseudo import get_args_parser, main
    from training.errors import TrainingError

    model = tmp_path / "parts.onnx"
    model.write_bytes(b"not read before the checks")
    out = tmp_path / "labels"
    argv = ["--parts", str(model), "--out", str(out), "--conf", "0.1", "--fallback-conf", "0.2"]
    with pytest.raises(TrainingError, match=r"fallback-conf 0\.2"):
        main(get_args_parser().parse_args(argv))
    assert not out.exists()


CUT = PseudoSettings(conf=0.1, keep_conf=0.5, fallback_conf=0.02, cut_contradicted=True)
REGION = ((10.0, 10.0), (30.0, 10.0), (30.0, 30.0), (10.0, 30.0))


def test_a_fender_on_a_part_is_cut_out_of_it_instead_of_leaving_the_photo_out() -> None:
    # given a fender region (no listed part) on a confident door
    parts = [_part(CarPart.FRONT_LEFT_DOOR, 0.9)]
    regions = [_region(PartFamily.UNLISTED_PANEL, 10, 10)]
    masks = _masks(parts)
    # when labels are chosen cutting contradictions
    keep = photo_labels(regions, parts, masks, CUT)
    # then the door stays a label, without the fender's pixels and with all of its others
    assert keep == [0]
    cut = cut_masks(regions, parts, masks, keep)
    assert not (cut[0] & regions[0].mask).any()
    assert int((cut[0] | regions[0].mask).sum()) == int(masks[0].sum())


def test_a_region_on_a_confident_part_of_another_family_is_given_to_its_own_family() -> None:
    # given a light region on a confident door, and a faint light just there
    parts = [_part(CarPart.FRONT_LEFT_DOOR, 0.8), _part(CarPart.FRONT_LEFT_LIGHT, 0.05, REGION)]
    regions = [_region(PartFamily.LIGHT, 10, 10)]
    masks = _masks(parts)
    # when labels are chosen cutting contradictions
    keep = photo_labels(regions, parts, masks, CUT)
    # then both are labels: the door less the light's pixels, the light whole
    assert keep == [0, 1]
    cut = cut_masks(regions, parts, masks, keep)
    assert set(cut) == {0} and not (cut[0] & regions[0].mask).any()
    # and with no part of the light's family seen at all, the photo is still left out
    door = parts[:1]
    assert photo_labels(regions, door, _masks(door), CUT) is None


def test_a_part_cut_in_its_middle_is_written_with_the_hole() -> None:
    # given a door over the left half with a region cut from inside it
    mask = np.zeros((SIZE, SIZE), bool)
    mask[:, :50] = True
    mask[30:50, 10:30] = False
    # when it is written as YOLO polygons and drawn back as the trainer draws them
    drawn = np.zeros((SIZE, SIZE), bool)
    for polygon in mask_polygons(mask):
        drawn |= _polygon_mask(polygon, (SIZE, SIZE), scale=True)
    # then the hole is still a hole and the rest is the door
    assert not drawn[33:47, 13:27].any()
    assert (drawn & mask).sum() / (drawn | mask).sum() > 0.9


def test_cut_labels_are_written_without_the_regions_of_another_family(tmp_path: Path) -> None:
    # given a close-up set whose one train photo has a fender region on the door's half
    config = _closeup_set(
        tmp_path, "gen-fenders", {"p0": "1", "v0": "1", "t0": "1"}, names=["Door", "Fender"],
        classes={"Door": None, "Fender": None},
        part_families={"Door": "door", "Fender": "unlisted_panel"},
    )  # fmt: skip
    # when labels are made without and with cutting contradictions
    uncut = make_pseudo_labels(DoorOnTheLeft(), config, tmp_path / "uncut", SETTINGS)
    out = tmp_path / "cut"
    report = make_pseudo_labels(DoorOnTheLeft(), config, out, CUT)
    # then only the cut labels keep the photo, and its door leaves the fender's pixels out
    assert uncut["photos_kept"] == 0 and report["photos_kept"] == 1
    assert report["parts_cut"] == {"front_left_door": 1}
    records = read_dataset(load_dataset_config(out / "dataset.yaml"))
    drawn = np.zeros((SIZE, SIZE), bool)
    for name, polygon in records[0].instances:
        assert name == "front_left_door"
        drawn |= _polygon_mask(polygon, (SIZE, SIZE), scale=True)
    fender = _polygon_mask(_square(10, 10), (SIZE, SIZE), scale=True)
    assert (drawn & fender).sum() < 0.1 * fender.sum()
    assert drawn[:, :50].sum() > 0.8 * (SIZE * 50 - fender.sum())
