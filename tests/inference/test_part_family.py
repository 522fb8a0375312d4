"""The part-family stage (inference/part_family.py) on a handcrafted classifier.

The handcrafted stage averages the crop's colour and says "door" for reddish crops and
"fender" for bluish ones: softmax of (K (red - blue), K (blue - red)), so a pure
red crop is a door at sigmoid(4) = 0.982 with K = 2 and a test knows every answer.
"""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from cdat.analysis import PhotoInput
from cdat.errors import ModelUnavailable
from cdat.findings import Box, DamageInstance, PartInstance
from cdat.part_family import FamilyRule
from cdat.settings import Settings
from cdat.taxonomy import CarPart, DamageType, PartFamily, Severity, Side
from inference.crops import CROP_MIN_SHARE, damage_crop
from inference.errors import RegistryError
from inference.loading import build_analyzer, served_family_stage
from inference.part_family import (
    FamilyStage,
    load_family_stage,
    moved,
    nearby_parts,
    placed_by_type,
    side_seen,
)
from inference.registry import ModelEntry, Registry, sha256_of
from inference.stage_record import StageRecord

from .conftest import DAMAGE_CLASSES, PART_CLASSES, FakeDet, to_model, write_registry

SIDE = 32
FAMILIES = "door,fender"
STRENGTH = 2.0
RED, BLUE, GREEN = (0, 0, 255), (255, 0, 0), (0, 255, 0)  # BGR
P_PURE = 1.0 / (1.0 + math.exp(-4.0))
"""The stage's probability for a pure red (door) or pure blue (fender) crop."""


def make_stage(
    path: Path,
    families: str | None = FAMILIES,
    shape: tuple[str | int, ...] = ("batch", 3, SIDE, SIDE),
    outputs: int = 2,
) -> Path:
    """images (N, 3, S, S) RGB -> families (N, outputs) = softmax(mean colour @ w)."""
    column = [STRENGTH, 0.0, -STRENGTH]  # red - blue
    values = [column, [-v for v in column]] + [[0.0, 0.0, 0.0]] * (outputs - 2)
    w = np.array(values[:outputs], np.float32).T  # (3, outputs)
    weights = helper.make_tensor("w", TensorProto.FLOAT, list(w.shape), w.reshape(-1).tolist())
    nodes = [
        helper.make_node("ReduceMean", ["images"], ["pooled"], axes=[2, 3], keepdims=0),
        helper.make_node("MatMul", ["pooled", "w"], ["logits"]),
        helper.make_node("Softmax", ["logits"], ["families"], axis=1),
    ]
    graph = helper.make_graph(
        nodes,
        "family_stage",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, list(shape))],
        [helper.make_tensor_value_info("families", TensorProto.FLOAT, ["batch", outputs])],
        [weights],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    if families is not None:
        helper.set_model_props(model, {"families": families})
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def solid(height: int, width: int, bgr: tuple[int, int, int]) -> np.ndarray:
    return np.full((height, width, 3), bgr, np.uint8)


def damage(box: Box, part: CarPart | None, coverage: float = 0.5) -> DamageInstance:
    return DamageInstance(
        DamageType.DENT, Severity.MODERATE, 0.8, box, part=part, part_coverage=coverage
    )


def part(kind: CarPart, box: Box) -> PartInstance:
    return PartInstance(kind, 0.9, box)


def grid(*cells: tuple[int, int, int, int], shape: tuple[int, int] = (10, 20)) -> np.ndarray:
    """(len(cells), gh, gw) bool masks, each on rows y1:y2 and columns x1:x2."""
    masks = np.zeros((len(cells), *shape), bool)
    for k, (x1, y1, x2, y2) in enumerate(cells):
        masks[k, y1:y2, x1:x2] = True
    return masks


# --- StageRecord ---------------------------------------------------------------------------


def test_a_stage_record_round_trips() -> None:
    # given a stage as an entry stores it
    record = StageRecord("part-family.onnx", "ab" * 32, FamilyRule(0.8, 0.1))
    stored = record.to_record()
    # then it is plain data, and reads back as the same record
    assert stored == {
        "file": "part-family.onnx",
        "sha256": "ab" * 32,
        "rule": {"min_probability": 0.8, "max_masks_probability": 0.1},
    }
    assert StageRecord.from_record(stored, FamilyRule.from_record) == record


@pytest.mark.parametrize(
    ("record", "message"),
    [
        ({"file": "a.onnx", "sha256": "x", "rule": {"min_probability": 0.8}, "k": 1}, "k"),
        ({"file": "a.onnx", "rule": {"min_probability": 0.8}}, "sha256 required"),
        ({"file": "a.onnx", "sha256": "x"}, "rule required"),
        ({"file": "a.onnx", "sha256": "x", "rule": 0.8}, "rule must be a record"),
        ({"file": "a.onnx", "sha256": "x", "rule": {"min_probability": 0}}, "probability"),
        ({"file": "a.onnx", "sha256": "x", "rule": {}}, "min_probability is required"),
    ],
)
def test_a_damaged_stage_record_is_refused(record: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        StageRecord.from_record(record, FamilyRule.from_record)


# --- damage_crop ---------------------------------------------------------------------------


def test_a_crop_is_a_square_rgb_float_in_the_unit_range() -> None:
    # given a pure red BGR photo
    image = solid(100, 200, RED)
    # when a damage on it is cropped
    crop = damage_crop(image, Box(50, 20, 90, 60), SIDE)
    # then the crop is (3, side, side) float32, red in RGB order
    assert crop.shape == (3, SIDE, SIDE) and crop.dtype == np.float32
    assert crop.flags["C_CONTIGUOUS"]
    assert np.allclose(crop[0], 1.0) and np.allclose(crop[1:], 0.0)


def test_a_crop_of_a_noisy_photo_stays_in_the_unit_range() -> None:
    image = np.random.default_rng(0).integers(0, 256, (120, 90, 3), dtype=np.uint8)
    crop = damage_crop(image, Box(10, 10, 80, 100), 64)
    assert crop.shape == (3, 64, 64)
    assert float(crop.min()) >= 0.0 and float(crop.max()) <= 1.0
    assert float(crop.max()) > 0.5  # not all black: the pixels were read


def test_a_crop_at_the_photo_corner_is_clipped_to_the_photo() -> None:
    # given a small damage in the top-left corner: its square (35 px, the minimum share of
    # a 100 px high photo) is centred on it, so it would reach 12 px past the edges
    image = solid(100, 200, BLUE)
    image[:22, :22] = RED  # exactly what lies inside the photo of that square
    # when it is cropped
    crop = damage_crop(image, Box(0, 0, 10, 10), SIDE)
    # then the crop is the part of the square inside the photo, stretched: all red
    assert np.allclose(crop[0], 1.0) and np.allclose(crop[2], 0.0)


def test_a_crop_at_the_opposite_corner_is_clipped_as_well() -> None:
    image = solid(100, 200, BLUE)
    image[77:, 177:] = RED  # the square around (195, 95) reaches from 177.5 to 212.5
    crop = damage_crop(image, Box(190, 90, 200, 100), SIDE)
    assert crop.shape == (3, SIDE, SIDE)
    assert float(crop[0].mean()) > 0.95 and float(crop[2].mean()) < 0.05


def test_a_tiny_damage_is_seen_with_the_panel_around_it() -> None:
    # given a 2 px scratch at the centre of a 100 x 200 photo: green panel in the square
    # of the minimum share (35 px) around it, blue beyond, the scratch itself red
    assert round(CROP_MIN_SHARE * 100) == 35
    image = solid(100, 200, BLUE)
    image[32:67, 82:117] = GREEN
    image[49:51, 99:101] = RED
    # when it is cropped
    crop = damage_crop(image, Box(99, 49, 101, 51), SIDE)
    # then the crop is that square: mostly panel, none of what lies beyond it
    assert float(crop[1].mean()) > 0.95
    assert float(crop[2].max()) < 0.05
    assert float(crop[0].mean()) < 0.05


def test_a_damage_larger_than_the_photo_is_cropped_to_the_whole_photo() -> None:
    image = solid(100, 200, BLUE)
    image[:, :100] = RED
    crop = damage_crop(image, Box(0, 0, 200, 100), SIDE)
    assert float(crop[0].mean()) == pytest.approx(0.5, abs=0.02)
    assert float(crop[2].mean()) == pytest.approx(0.5, abs=0.02)


def test_a_grayscale_photo_gives_three_equal_channels() -> None:
    image = np.full((100, 200), 128, np.uint8)
    crop = damage_crop(image, Box(50, 20, 90, 60), SIDE)
    assert crop.shape == (3, SIDE, SIDE)
    assert np.allclose(crop, 128 / 255)


# --- nearby_parts --------------------------------------------------------------------------


def test_parts_are_ranked_by_overlap_then_distance_each_once() -> None:
    # given a damage on grid cells x 8:12, y 4:8 (16 cells), and photo boxes in the same units
    damage_mask = grid((8, 4, 12, 8))[0]
    damage_box = Box(8, 4, 12, 8)
    parts = [
        part(CarPart.HOOD, Box(0, 0, 2, 2)),  # far, no overlap
        part(CarPart.WHEEL, Box(16, 8, 20, 10)),  # a second wheel, farther than the first
        part(CarPart.FRONT_BUMPER, Box(11, 4, 20, 10)),  # overlaps 4 cells
        part(CarPart.FRONT_LEFT_DOOR, Box(0, 4, 10, 8)),  # overlaps 8 cells
        part(CarPart.WHEEL, Box(12, 6, 14, 8)),  # near, no overlap
        part(CarPart.LEFT_MIRROR, Box(4, 0, 6, 2)),  # nearer than the hood
    ]
    part_masks = grid(
        (0, 0, 2, 2), (16, 8, 20, 10), (11, 4, 20, 10), (0, 4, 10, 8), (12, 6, 14, 8), (4, 0, 6, 2)
    )
    # when they are ranked for the damage
    ranked = nearby_parts(damage_mask, damage_box, parts, part_masks)
    # then most overlap first, then nearest centre; the two wheels are one entry
    assert ranked == [
        CarPart.FRONT_LEFT_DOOR,
        CarPart.FRONT_BUMPER,
        CarPart.WHEEL,
        CarPart.LEFT_MIRROR,
        CarPart.HOOD,
    ]


def test_no_parts_rank_as_nothing() -> None:
    empty = np.zeros((0, 10, 20), bool)
    assert nearby_parts(grid((0, 0, 1, 1))[0], Box(0, 0, 1, 1), [], empty) == []


# --- moved ---------------------------------------------------------------------------------


def test_a_damage_moved_to_a_seen_part_is_measured_against_its_masks() -> None:
    # given a damage of 16 cells, half of them on a door of 40 cells seen twice (80 in all)
    found = damage(Box(8, 4, 12, 8), CarPart.FRONT_BUMPER, 0.9)
    parts = [part(CarPart.FRONT_LEFT_DOOR, Box(0, 0, 10, 4)), part(CarPart.FRONT_LEFT_DOOR,
             Box(0, 4, 10, 8)), part(CarPart.FRONT_BUMPER, Box(10, 4, 20, 8))]  # fmt: skip
    part_masks = grid((0, 0, 10, 4), (0, 4, 10, 8), (10, 4, 20, 8))
    damage_mask = grid((8, 4, 12, 8))[0]
    # when it is moved to the door
    got = moved(found, CarPart.FRONT_LEFT_DOOR, parts, part_masks, damage_mask)
    # then it is on the door, covering 8 of the door's 80 cells; nothing else changed
    assert got.part is CarPart.FRONT_LEFT_DOOR
    assert got.part_coverage == pytest.approx(8 / 80)
    assert replace(got, part=found.part, part_coverage=found.part_coverage) == found


@pytest.mark.parametrize("to", [None, CarPart.HOOD])
def test_a_damage_moved_to_no_part_or_an_unseen_part_covers_nothing(to: CarPart | None) -> None:
    found = damage(Box(8, 4, 12, 8), CarPart.FRONT_BUMPER, 0.9)
    parts = [part(CarPart.FRONT_BUMPER, Box(0, 0, 20, 10))]
    got = moved(found, to, parts, grid((0, 0, 20, 10)), grid((8, 4, 12, 8))[0])
    assert got.part is to and got.part_coverage == 0.0


def test_a_broken_lamp_off_every_mask_is_placed_on_the_lamp_nearest_it() -> None:
    # given a broken lamp and a dent, both on no part, beside a bumper and a left lamp, and a
    # broken lamp the masks put on the bumper
    lamp_broken = replace(damage(Box(12, 0, 16, 4), None), damage_type=DamageType.LAMP_BROKEN)
    dent = damage(Box(12, 0, 16, 4), None)
    on_bumper = replace(lamp_broken, part=CarPart.FRONT_BUMPER)
    parts = [part(CarPart.FRONT_BUMPER, Box(0, 4, 20, 10)),
             part(CarPart.FRONT_LEFT_LIGHT, Box(16, 0, 20, 4))]  # fmt: skip
    part_masks = grid((0, 4, 20, 10), (16, 0, 20, 4))
    damage_masks = grid((12, 0, 16, 4), (12, 0, 16, 4), (12, 0, 16, 4))
    # when they are placed by type
    got = placed_by_type((lamp_broken, dent, on_bumper), damage_masks, parts, part_masks)
    # then the broken lamp is on the lamp (touching none of its 16 cells), the dent stays on
    # no part, the one on the bumper stays there
    assert got[0].part is CarPart.FRONT_LEFT_LIGHT and got[0].part_coverage == 0.0
    assert got[1] == dent and got[2] == on_bumper
    assert replace(got[0], part=None, part_coverage=lamp_broken.part_coverage) == lamp_broken


def test_the_side_is_seen_beside_the_nearest_part_across_one_end() -> None:
    # given a front bumper across the photo's middle, and a rear bumper far off to the right
    front = part(CarPart.FRONT_BUMPER, Box(100, 100, 300, 150))
    rear = part(CarPart.BACK_BUMPER, Box(900, 100, 1000, 150))
    mirror = part(CarPart.LEFT_MIRROR, Box(0, 0, 50, 50))
    # then damage left of the front bumper's middle is on the car's right, right of it its left
    assert side_seen(Box(110, 60, 130, 90), [mirror, front, rear]) is Side.RIGHT
    assert side_seen(Box(250, 60, 290, 90), [mirror, front, rear]) is Side.LEFT
    # and beside the rear bumper (nearer), left of its middle is the car's left
    assert side_seen(Box(880, 60, 900, 90), [front, rear]) is Side.LEFT
    # and with no part across an end (a mirror, a door), no side is seen
    assert side_seen(Box(110, 60, 130, 90), [mirror]) is None
    assert side_seen(Box(110, 60, 130, 90), []) is None


def test_a_broken_lamp_beside_the_bumper_alone_is_placed_by_the_side_it_sits_on() -> None:
    # given a close-up showing only the front bumper, and a broken lamp above its right end
    lamp_broken = replace(damage(Box(16, 0, 20, 3), None), damage_type=DamageType.LAMP_BROKEN)
    parts = [part(CarPart.FRONT_BUMPER, Box(0, 4, 20, 10))]
    # when it is placed by type, then it is the car's front left lamp (we face the front)
    got = placed_by_type((lamp_broken,), grid((16, 0, 20, 3)), parts, grid((0, 4, 20, 10)))
    assert got[0].part is CarPart.FRONT_LEFT_LIGHT


# --- FamilyStage ---------------------------------------------------------------------------


def test_the_stage_reads_its_families_side_and_version(tmp_path: Path) -> None:
    path = make_stage(tmp_path / "part-family-a.onnx")
    stage = FamilyStage.load(path, FamilyRule(0.7), threads=1)
    assert stage.families == (PartFamily.DOOR, PartFamily.FENDER)
    assert stage.side == SIDE and stage.rule == FamilyRule(0.7)
    assert stage.version == "part-family-a"
    assert FamilyStage.load(path, FamilyRule(0.7), version="v2").version == "v2"


def test_a_stage_made_before_fenders_were_listed_answers_fender(tmp_path: Path) -> None:
    # given a stage whose second output is named as the served stage names it (learnt from
    # the close-up sets' `Fender` labels alone, before the fender family existed)
    path = make_stage(tmp_path / "part-family-old.onnx", "door,unlisted_panel")
    # when it is loaded, then that output is read as the fender family
    stage = FamilyStage.load(path, FamilyRule(0.7), threads=1)
    assert stage.families == (PartFamily.DOOR, PartFamily.FENDER)
    # and a stage that names both keeps each as it says
    both = make_stage(tmp_path / "part-family-new.onnx", "fender,unlisted_panel")
    assert FamilyStage.load(both, FamilyRule(0.7)).families == (
        PartFamily.FENDER,
        PartFamily.UNLISTED_PANEL,
    )


def test_the_stage_answers_from_each_crops_colour(tmp_path: Path) -> None:
    # given a photo red on its left half, blue on its right
    stage = FamilyStage.load(make_stage(tmp_path / "stage.onnx"), FamilyRule(0.7))
    image = solid(100, 200, BLUE)
    image[:, :100] = RED
    # when a damage on each half is classified
    table = stage.probabilities(image, [Box(10, 40, 30, 60), Box(160, 40, 180, 60)])
    # then the left is a door and the right a fender, as the weights say
    assert table.shape == (2, 2)
    assert table[0] == pytest.approx([P_PURE, 1 - P_PURE], abs=1e-4)
    assert table[1] == pytest.approx([1 - P_PURE, P_PURE], abs=1e-4)


def test_no_boxes_give_an_empty_table(tmp_path: Path) -> None:
    stage = FamilyStage.load(make_stage(tmp_path / "stage.onnx"), FamilyRule(0.7))
    table = stage.probabilities(solid(100, 200, RED), [])
    assert table.shape == (0, 2) and table.dtype == np.float32


@pytest.mark.parametrize(
    ("families", "shape", "outputs", "message"),
    [
        (None, ("batch", 3, SIDE, SIDE), 2, "does not name its outputs"),
        ("", ("batch", 3, SIDE, SIDE), 2, "does not name its outputs"),
        ("door", ("batch", 3, SIDE, SIDE), 2, "does not name its outputs"),
        ("door,unlisted_panel", ("batch", 3, SIDE, SIDE), 3, "does not name its outputs"),
        ("unlisted_panel,unlisted_panel", ("batch", 3, SIDE, SIDE), 2, "once each"),
        ("door,roof", ("batch", 3, SIDE, SIDE), 2, "roof"),
        (FAMILIES, ("batch", 3, SIDE, 2 * SIDE), 2, "square"),
        (FAMILIES, ("batch", 3, "side", "side"), 2, "square"),
    ],
)
def test_a_stage_that_does_not_say_what_it_answers_is_not_served(
    tmp_path: Path, families: str | None, shape: tuple[str | int, ...], outputs: int, message: str
) -> None:
    path = make_stage(tmp_path / "stage.onnx", families, shape, outputs)
    with pytest.raises(ModelUnavailable, match=message):
        FamilyStage.load(path, FamilyRule(0.7))


def test_a_file_that_is_not_a_model_is_not_served(tmp_path: Path) -> None:
    path = tmp_path / "stage.onnx"
    path.write_bytes(b"not an onnx model")
    with pytest.raises(ModelUnavailable, match="cannot load part-family stage"):
        FamilyStage.load(path, FamilyRule(0.7))


def refine_scene() -> tuple[
    np.ndarray, tuple[DamageInstance, ...], np.ndarray, tuple[PartInstance, ...], np.ndarray
]:
    """A photo of 400 x 200 decoded at half size (200 x 100): red on the left half, blue on
    the right. A bumper along the bottom, a door top-left; two damages on the bumper, one
    in the red half and one in the blue. Grid: 20 x 10 cells of 20 photo px."""
    image = solid(100, 200, BLUE)
    image[:, :100] = RED
    parts = (
        part(CarPart.FRONT_BUMPER, Box(0, 100, 400, 200)),
        part(CarPart.FRONT_LEFT_DOOR, Box(0, 0, 160, 100)),
    )
    part_masks = grid((0, 5, 20, 10), (0, 0, 8, 5))
    damages = (
        damage(Box(20, 120, 60, 160), CarPart.FRONT_BUMPER),
        damage(Box(320, 120, 360, 160), CarPart.FRONT_BUMPER),
    )
    damage_masks = grid((1, 6, 3, 8), (16, 6, 18, 8))
    return image, damages, damage_masks, parts, part_masks


def test_refine_moves_a_damage_to_the_seen_part_of_its_crops_family(tmp_path: Path) -> None:
    # given the stage under a rule its pure-colour answers (0.982) pass
    stage = FamilyStage.load(make_stage(tmp_path / "stage.onnx"), FamilyRule(0.9))
    image, damages, damage_masks, parts, part_masks = refine_scene()
    # when it refines the masks' answer, boxes mapped to the half-size image
    got = stage.refine(image, (2.0, 2.0), damages, damage_masks, parts, part_masks)
    # then the damage in the red half goes to the door seen nearby, off its mask
    assert got[0].part is CarPart.FRONT_LEFT_DOOR and got[0].part_coverage == 0.0
    # and the one in the blue half to the fender at the end (the bumper's) and side (the
    # door's) of the car the photo's parts show, unseen, so of unknown coverage
    assert got[1].part is CarPart.FRONT_LEFT_FENDER and got[1].part_coverage == 0.0
    # and nothing else about them changed
    assert [replace(d, part=CarPart.FRONT_BUMPER, part_coverage=0.5) for d in got] == list(damages)


def test_refine_leaves_the_masks_part_under_a_stricter_rule(tmp_path: Path) -> None:
    # given the same scene and a rule the stage's answers (0.982) do not reach
    stage = FamilyStage.load(make_stage(tmp_path / "stage.onnx"), FamilyRule(0.99))
    image, damages, damage_masks, parts, part_masks = refine_scene()
    # when it refines, then both damages stay as the masks put them, the same objects
    got = stage.refine(image, (2.0, 2.0), damages, damage_masks, parts, part_masks)
    assert got == damages and all(a is b for a, b in zip(got, damages, strict=True))


# --- load_family_stage ---------------------------------------------------------------------


def test_a_stage_is_loaded_from_its_record_beside_the_model(tmp_path: Path) -> None:
    path = make_stage(tmp_path / "part-family-1.onnx")
    record = StageRecord(path.name, sha256_of(path), FamilyRule(0.75))
    stage = load_family_stage(tmp_path, record, tmp_path / "parts.onnx", threads=1)
    assert stage.rule == FamilyRule(0.75) and stage.version == "part-family-1"
    assert stage.families == (PartFamily.DOOR, PartFamily.FENDER)


def test_a_stage_file_that_changed_after_registering_is_not_served(tmp_path: Path) -> None:
    # given a record whose checksum is not the file's
    path = make_stage(tmp_path / "stage.onnx")
    record = StageRecord(path.name, "0" * 64, FamilyRule(0.7))
    # then loading it is refused, naming the file
    with pytest.raises(ModelUnavailable, match=r"stage\.onnx does not match"):
        load_family_stage(tmp_path, record, tmp_path / "parts.onnx")


def test_a_missing_stage_file_is_not_served(tmp_path: Path) -> None:
    record = StageRecord("gone.onnx", "0" * 64, FamilyRule(0.7))
    with pytest.raises(ModelUnavailable, match=r"missing: .*gone\.onnx"):
        load_family_stage(tmp_path, record, tmp_path / "parts.onnx")


# --- the registry entry --------------------------------------------------------------------


def parts_entry(**fields: object) -> ModelEntry:
    return replace(ModelEntry("parts-x-1", "parts", "parts.onnx", "0" * 64, PART_CLASSES, 320),
                   **fields)  # type: ignore[arg-type]  # fmt: skip


def test_an_entry_without_a_stage_serves_the_masks_alone() -> None:
    assert parts_entry().served_family_stage is None


def test_a_damaged_stage_record_in_an_entry_is_a_registry_error_naming_it() -> None:
    entry = parts_entry(family_stage={"file": "stage.onnx", "sha256": "0" * 64})
    with pytest.raises(RegistryError, match=r"parts-x-1: family_stage: .*rule"):
        _ = entry.served_family_stage


def test_a_stage_record_survives_the_registry_file_and_is_left_out_when_empty(
    tmp_path: Path,
) -> None:
    # given two part entries, one with a stage
    record = StageRecord("stage.onnx", "ab" * 32, FamilyRule(0.8))
    with_stage = parts_entry(family_stage=record.to_record())
    without = replace(parts_entry(), id="parts-x-2")
    Registry(tmp_path, [with_stage, without], {}).save()
    # when the registry is saved and read back
    raw = (tmp_path / "registry.json").read_text()
    loaded = Registry.load(tmp_path)
    # then the stage is read back as stored, and the entry without one stores no field
    assert loaded.get("parts-x-1").served_family_stage == record
    assert loaded.get("parts-x-2").served_family_stage is None
    assert raw.count('"family_stage"') == 1


# --- served by the analyzer ----------------------------------------------------------------

IMGSZ = 320
W, H = 400, 200


def noisy(bgr: tuple[int, int, int], seed: int = 0) -> np.ndarray:
    """A sharp, well exposed photo of one dominant colour."""
    rng = np.random.default_rng(seed)
    small = np.clip(np.array(bgr) + rng.integers(-30, 30, (H // 8, W // 8, 3)), 0, 255)
    return cv2.resize(small.astype(np.uint8), (W, H), interpolation=cv2.INTER_NEAREST)


def png(image: np.ndarray, photo_id: str) -> PhotoInput:
    ok, data = cv2.imencode(".png", image)
    assert ok
    return PhotoInput(photo_id, data.tobytes())


def served_scene(model_dir: Path, family_stage: dict[str, object] | None) -> Settings:
    """A bumper along the bottom of the photo, a door top-left; a dent on the bumper. The
    promoted part entry carries `family_stage` (a stage copied beside it when given)."""
    parts = [
        FakeDet(*to_model(box, W, H, IMGSZ), cls=PART_CLASSES.index(kind.value), score=0.9)
        for kind, box in (
            (CarPart.FRONT_BUMPER, (0, 100, 400, 200)),
            (CarPart.FRONT_LEFT_DOOR, (0, 0, 150, 90)),
        )
    ]
    dent = FakeDet(*to_model((200, 120, 300, 180), W, H, IMGSZ),
                   cls=DAMAGE_CLASSES.index("moderate-dent"), score=0.85)  # fmt: skip
    settings = write_registry(model_dir, IMGSZ, [dent], parts)
    if family_stage is not None:
        registry = Registry.load(model_dir)
        k = next(i for i, e in enumerate(registry.entries) if e.task == "parts")
        registry.entries[k] = replace(registry.entries[k], family_stage=family_stage)
        registry.save()
    return settings


@pytest.fixture
def staged(tmp_path: Path) -> Settings:
    model_dir = tmp_path / "models"
    model_dir.mkdir()
    path = make_stage(model_dir / "part-family-1.onnx")
    record = StageRecord(path.name, sha256_of(path), FamilyRule(0.8))
    return served_scene(model_dir, record.to_record())


def test_the_analyzer_serves_the_promoted_part_models_stage(staged: Settings) -> None:
    # given the analyzer over a part model promoted with a stage (red: door at 0.92)
    analyzer = build_analyzer(staged)
    assert analyzer.family is not None and analyzer.family.rule == FamilyRule(0.8)
    # when it analyses a reddish photo and a bluish one
    red, blue = analyzer.analyze([png(noisy((40, 60, 200)), "red"), png(noisy((200, 60, 40), 1),
                                                                         "blue")])  # fmt: skip
    # then the dent the masks put on the bumper goes to the door on the red photo
    ((on_red,), (on_blue,)) = red.damages, blue.damages
    assert on_red.part is CarPart.FRONT_LEFT_DOOR and on_red.part_coverage == 0.0
    # and to the front left fender on the blue one (the bumper's end, the door's side)
    assert on_blue.part is CarPart.FRONT_LEFT_FENDER and on_blue.part_coverage == 0.0
    assert {p.part for p in red.parts} == {CarPart.FRONT_BUMPER, CarPart.FRONT_LEFT_DOOR}


def test_the_operator_can_turn_the_stage_off(staged: Settings) -> None:
    # given the same registry, with the stage turned off
    analyzer = build_analyzer(staged.model_copy(update={"part_family": False}))
    # when it analyses the reddish photo, then the masks' bumper stands
    (result,) = analyzer.analyze([png(noisy((40, 60, 200)), "red")])
    assert analyzer.family is None
    assert [d.part for d in result.damages] == [CarPart.FRONT_BUMPER]
    assert result.damages[0].part_coverage > 0.0


def test_without_a_stage_in_the_entry_the_masks_part_stands(tmp_path: Path) -> None:
    settings = served_scene(tmp_path / "models", None)
    analyzer = build_analyzer(settings)
    (result,) = analyzer.analyze([png(noisy((40, 60, 200)), "red")])
    assert analyzer.family is None
    assert [d.part for d in result.damages] == [CarPart.FRONT_BUMPER]


def test_a_damaged_stage_record_makes_the_part_model_unavailable(tmp_path: Path) -> None:
    settings = served_scene(tmp_path / "models", {"file": "stage.onnx", "sha256": "0" * 64})
    with pytest.raises(ModelUnavailable, match=r"parts model: parts-fake-1: family_stage"):
        build_analyzer(settings)


def test_a_changed_stage_file_makes_serving_refuse(staged: Settings) -> None:
    # given the stage file swapped after registering
    make_stage(staged.model_dir / "part-family-1.onnx", "unlisted_panel,door")
    # then the stage is not served silently
    entry = Registry.load(staged.model_dir).promoted_entry("parts")
    with pytest.raises(ModelUnavailable, match="does not match its registry checksum"):
        served_family_stage(staged, entry, threads=1)
    with pytest.raises(ModelUnavailable, match="does not match its registry checksum"):
        build_analyzer(staged)
    # and when the operator turned the stage off it is not even read
    off = staged.model_copy(update={"part_family": False})
    assert served_family_stage(off, entry, threads=1) is None
