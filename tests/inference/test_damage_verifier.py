"""The damage verifier (inference/damage_verifier.py) on a handcrafted classifier.

The handcrafted verifier averages the crop's colour and reads the detection's score logit:
p = sigmoid(COLOUR (red - blue) + SCORE * score_logit), so a red crop is "real damage" and a
blue one is not, and a test knows every answer from first principles.
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
from cdat.settings import Settings
from cdat.taxonomy import CarPart, DamageType, Severity
from cdat.verified import VerifierRule
from cdat.whole_car import WholeCarRule
from inference.damage_verifier import (
    BASE_EXTRAS,
    CLUSTER_EXTRAS,
    DamageVerifier,
    cluster_extras,
    extra_names,
    load_verifier,
    verifier_extras,
)
from inference.errors import RegistryError
from inference.loading import build_analyzer, served_conf, served_verifier
from inference.registry import ModelEntry, Registry, sha256_of
from inference.stage_record import StageRecord

from .conftest import DAMAGE_CLASSES, PART_CLASSES, FakeDet, to_model, write_registry

SIDE = 32
CLASSES = ("dent", "scratch")
COLOUR = 8.0
SCORE = 0.5
RED, BLUE = (0, 0, 255), (255, 0, 0)  # BGR


def logit(p: float) -> float:
    return math.log(p / (1 - p))


def sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


def expected(redness: float, confidence: float) -> float:
    """The handcrafted verifier's answer for a crop of mean (red - blue) `redness`."""
    return sigmoid(COLOUR * redness + SCORE * logit(confidence))


def make_verifier(
    path: Path,
    classes: str | None = ",".join(CLASSES),
    shape: tuple[str | int, ...] = ("batch", 3, SIDE, SIDE),
    extras: int | None = 4 + len(CLASSES),
    named: str | None = None,
    weights: dict[int, float] | None = None,
) -> Path:
    """images (N, 3, S, S) RGB, extras (N, `extras`) -> damage (N,); no `extras` input when
    `extras` is None. `named` is its `extras` metadata; `weights` weigh extras columns
    (default: the score logit's SCORE)."""
    colour = np.array([[COLOUR], [0.0], [-COLOUR]], np.float32)  # red - blue
    inits = [helper.make_tensor("wc", TensorProto.FLOAT, [3, 1], colour.reshape(-1).tolist()),
             helper.make_tensor("sq", TensorProto.INT64, [1], [1])]  # fmt: skip
    nodes = [
        helper.make_node("ReduceMean", ["images"], ["pooled"], axes=[2, 3], keepdims=0),
        helper.make_node("MatMul", ["pooled", "wc"], ["by_colour"]),
    ]
    inputs = [helper.make_tensor_value_info("images", TensorProto.FLOAT, list(shape))]
    if extras is None:
        nodes.append(helper.make_node("Identity", ["by_colour"], ["logits"]))
    else:
        w = np.zeros((extras, 1), np.float32)
        for column, weight in (weights or {0: SCORE}).items():  # 0: the score logit
            w[column, 0] = weight
        inits.append(
            helper.make_tensor("we", TensorProto.FLOAT, [extras, 1], w.reshape(-1).tolist())
        )
        nodes += [
            helper.make_node("MatMul", ["extras", "we"], ["by_extras"]),
            helper.make_node("Add", ["by_colour", "by_extras"], ["logits"]),
        ]
        inputs.append(helper.make_tensor_value_info("extras", TensorProto.FLOAT, ["batch", extras]))
    nodes += [
        helper.make_node("Sigmoid", ["logits"], ["p"]),
        helper.make_node("Squeeze", ["p", "sq"], ["damage"]),
    ]
    graph = helper.make_graph(
        nodes,
        "damage_verifier",
        inputs,
        [helper.make_tensor_value_info("damage", TensorProto.FLOAT, ["batch"])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    props = {"classes": classes} if classes is not None else {}
    if named is not None:
        props["extras"] = named
    if props:
        helper.set_model_props(model, props)
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def damage(box: Box, confidence: float, kind: DamageType = DamageType.DENT) -> DamageInstance:
    return DamageInstance(kind, Severity.MODERATE, confidence, box)


def part(kind: CarPart, box: Box) -> PartInstance:
    return PartInstance(kind, 0.9, box)


def solid(height: int, width: int, bgr: tuple[int, int, int]) -> np.ndarray:
    return np.full((height, width, 3), bgr, np.uint8)


RULE = VerifierRule(base_conf=0.3, min_probability=0.9)


# --- verifier_extras -----------------------------------------------------------------------


def test_the_extras_are_named_in_order_with_one_column_per_class() -> None:
    assert BASE_EXTRAS == ("score_logit", "log_area_share", "log_parts", "largest_part_share")
    assert extra_names(CLASSES) == (*BASE_EXTRAS, "type_dent", "type_scratch")
    assert extra_names(()) == BASE_EXTRAS


def test_the_extras_of_a_known_damage() -> None:
    # given a 40 x 40 scratch at 0.2 on a 400 x 200 photo showing a 100 x 80 part and a
    # 200 x 100 one
    found = damage(Box(100, 50, 140, 90), 0.2, DamageType.SCRATCH)
    parts = [part(CarPart.HOOD, Box(0, 0, 100, 80)), part(CarPart.WHEEL, Box(200, 100, 400, 200))]
    # when its extras are computed for a model of dents, scratches and cracks
    got = verifier_extras(found, parts, 400, 200, ("dent", "scratch", "crack"))
    # then: its score as a logit, its share of the frame as a log, log(1 + parts), the
    # largest part's share, and its type one-hot
    assert got == pytest.approx(
        [math.log(0.25), math.log(1600 / 80000 + 1e-5), math.log(3.0), 0.25, 0.0, 1.0, 0.0]
    )


def test_the_extras_of_a_certain_damage_on_no_part_stay_finite() -> None:
    # given a damage scored 1.0 on a photo with no part, of a type the model does not list
    found = damage(Box(0, 0, 10, 10), 1.0, DamageType.CRACK)
    # when its extras are computed
    got = verifier_extras(found, [], 100, 100, CLASSES)
    # then the score is clipped before its logit, there is no part, no type column is on
    assert got == pytest.approx([logit(1 - 1e-4), math.log(0.01 + 1e-5), 0.0, 0.0, 0.0, 0.0])
    assert all(math.isfinite(v) for v in got)
    assert verifier_extras(damage(Box(0, 0, 10, 10), 0.0), [], 100, 100, ())[0] == pytest.approx(
        logit(1e-4)
    )


def test_the_extras_of_an_empty_frame_do_not_divide_by_zero() -> None:
    got = verifier_extras(damage(Box(0, 0, 0, 0), 0.5), [], 0, 0, ())
    assert got == pytest.approx([0.0, math.log(1e-5), 0.0, 0.0])


# --- cluster_extras ------------------------------------------------------------------------


def test_the_cluster_layout_ends_the_named_extras() -> None:
    assert CLUSTER_EXTRAS == ("log_overlapping", "overlapping_score_logit")
    assert extra_names(CLASSES, cluster=True) == (*extra_names(CLASSES), *CLUSTER_EXTRAS)


def test_detections_covering_the_same_place_are_counted_with_the_surest_score() -> None:
    # given a 40 x 40 dent at 0.1; a box mostly inside it at 0.6; a wide box holding it at
    # 0.3; a box overlapping a third of it; and a box elsewhere at 0.9
    dent = damage(Box(100, 100, 140, 140), 0.1)
    inside = damage(Box(105, 105, 135, 145), 0.6)  # 30 x 35 of 30 x 40 inside: 0.875
    wide = damage(Box(0, 0, 300, 300), 0.3)
    third = damage(Box(127, 100, 167, 140), 0.8)  # 13 x 40 of 40 x 40: 0.325
    elsewhere = damage(Box(400, 400, 440, 440), 0.9)
    found = [dent, inside, wide, third, elsewhere]
    # when its cluster extras are computed among them
    got = cluster_extras(dent, found)
    # then two others cover its place (not itself, not the third or the far one), the surest 0.6
    assert got == pytest.approx([math.log(3.0), logit(0.6)])
    # and alone, or surer than all that cover its place, it counts none and its own score
    assert cluster_extras(dent, [dent]) == pytest.approx([0.0, logit(0.1)])
    assert cluster_extras(inside, [inside, wide]) == pytest.approx([math.log(2.0), logit(0.6)])


def test_a_cluster_verifier_counts_the_photos_detections_not_only_those_it_is_asked_about(
    tmp_path: Path,
) -> None:
    # given a verifier named with the cluster layout that weighs only log(1 + overlapping)
    width = len(extra_names(CLASSES, cluster=True))
    path = make_verifier(tmp_path / "v.onnx", extras=width,
                         named=",".join(extra_names(CLASSES, cluster=True)),
                         weights={width - 2: 1.0})  # fmt: skip
    verifier = DamageVerifier.load(path, RULE)
    assert (
        verifier.cluster
        and not DamageVerifier.load(make_verifier(tmp_path / "o.onnx"), RULE).cluster
    )
    # and a grey photo (the crop's colour adds nothing) with one faint dent under a surer one
    image = solid(100, 200, (128, 128, 128))
    faint, sure = damage(Box(30, 40, 50, 60), 0.05), damage(Box(28, 38, 52, 62), 0.5)
    # when it is asked about the faint one alone, then with the photo's detections
    alone = verifier.probabilities(image, (1.0, 1.0), [faint], [], 200, 100)
    among = verifier.probabilities(image, (1.0, 1.0), [faint], [], 200, 100, found=[faint, sure])
    # then it counts the detection covering the same place
    assert alone.tolist() == pytest.approx([sigmoid(0.0)], abs=1e-5)
    assert among.tolist() == pytest.approx([sigmoid(math.log(2.0))], abs=1e-5)


def test_a_verifier_naming_extras_of_no_known_layout_is_refused(tmp_path: Path) -> None:
    path = make_verifier(tmp_path / "v.onnx", named="score_logit,mystery")
    with pytest.raises(ModelUnavailable, match="no layout this code reads"):
        DamageVerifier.load(path, RULE)


# --- DamageVerifier ------------------------------------------------------------------------


def test_the_verifier_reads_its_classes_side_rule_and_version(tmp_path: Path) -> None:
    path = make_verifier(tmp_path / "damage-verifier-a.onnx")
    verifier = DamageVerifier.load(path, RULE, threads=1)
    assert verifier.classes == CLASSES and verifier.side == SIDE and verifier.rule == RULE
    assert verifier.version == "damage-verifier-a"
    assert DamageVerifier.load(path, RULE, version="v2").version == "v2"


def test_the_verifier_answers_from_each_crops_colour_and_score(tmp_path: Path) -> None:
    # given a photo red on its left half, blue on its right
    verifier = DamageVerifier.load(make_verifier(tmp_path / "v.onnx"), RULE)
    image = solid(100, 200, BLUE)
    image[:, :100] = RED
    damages = [
        damage(Box(30, 40, 50, 60), 0.05),  # red
        damage(Box(30, 40, 50, 60), 0.5),  # red, a higher score
        damage(Box(150, 40, 170, 60), 0.05),  # blue
    ]
    # when it answers for each, with the photo at the image's size
    p = verifier.probabilities(image, (1.0, 1.0), damages, [], 200, 100)
    # then its answers are the handcrafted weights' on each crop's colour and score
    assert p.shape == (3,) and p.dtype == np.float32
    assert p.tolist() == pytest.approx(
        [expected(1.0, 0.05), expected(1.0, 0.5), expected(-1.0, 0.05)], abs=1e-5
    )
    assert p[0] < p[1]  # the score counts too


def test_no_damages_give_no_answers(tmp_path: Path) -> None:
    verifier = DamageVerifier.load(make_verifier(tmp_path / "v.onnx"), RULE)
    p = verifier.probabilities(solid(100, 200, RED), (1.0, 1.0), [], [], 200, 100)
    assert p.shape == (0,) and p.dtype == np.float32
    assert verifier.kept(solid(100, 200, RED), (1.0, 1.0), [], [], (200, 100), []) == []


@pytest.mark.parametrize(
    ("classes", "shape", "extras", "message"),
    [
        (None, ("batch", 3, SIDE, SIDE), 4, "classes` metadata does not match"),
        ("", ("batch", 3, SIDE, SIDE), 4, "classes` metadata does not match"),
        ("dent", ("batch", 3, SIDE, SIDE), 6, "classes` metadata does not match"),
        ("dent,scratch,crack", ("batch", 3, SIDE, SIDE), 6, "classes` metadata does not match"),
        ("dent,scratch", ("batch", 3, SIDE, SIDE), None, "classes` metadata does not match"),
        ("dent,scratch", ("batch", 3, SIDE, 2 * SIDE), 6, "square"),
        ("dent,scratch", ("batch", 3, "side", "side"), 6, "square"),
        ("dent,scratch", ("batch", 3, SIDE, "side"), 6, "square"),
        ("minor-dent,scratch", ("batch", 3, SIDE, SIDE), 6, "classes minor-dent are not damage"),
    ],
)
def test_a_verifier_that_does_not_say_what_it_reads_is_not_served(
    tmp_path: Path,
    classes: str | None,
    shape: tuple[str | int, ...],
    extras: int | None,
    message: str,
) -> None:
    path = make_verifier(tmp_path / "v.onnx", classes, shape, extras)
    with pytest.raises(ModelUnavailable, match=message):
        DamageVerifier.load(path, RULE)


def test_a_file_that_is_not_a_model_is_not_served(tmp_path: Path) -> None:
    path = tmp_path / "v.onnx"
    path.write_bytes(b"not an onnx model")
    with pytest.raises(ModelUnavailable, match="cannot load damage verifier"):
        DamageVerifier.load(path, RULE)


def kept_scene() -> tuple[np.ndarray, list[DamageInstance]]:
    """A photo of 400 x 200 decoded at half size (200 x 100): red on the left half, blue on
    the right. Four damages in photo pixels: low and high scores on each colour. The red
    ones lie where the full-size photo's coordinates would be blue on the half-size image,
    so only a crop mapped by the scale sees red."""
    image = solid(100, 200, BLUE)
    image[:, :100] = RED
    damages = [
        damage(Box(120, 40, 160, 80), 0.05),  # red, under the base threshold
        damage(Box(300, 100, 340, 140), 0.05),  # blue, under it
        damage(Box(300, 100, 340, 140), 0.5),  # blue, above it
        damage(Box(120, 40, 160, 80), 0.5),  # red, above it
    ]
    return image, damages


def test_kept_confirms_what_the_base_drops_and_keeps_what_it_keeps(tmp_path: Path) -> None:
    # given a rule keeping what the verifier gives 0.9 under the base, all the base keeps
    verifier = DamageVerifier.load(make_verifier(tmp_path / "v.onnx"), RULE)
    image, damages = kept_scene()
    assert expected(1.0, 0.05) > 0.9 > expected(-1.0, 0.5)
    # when it keeps what it keeps, boxes mapped to the half-size image
    got = verifier.kept(image, (2.0, 2.0), damages, [], (400, 200), [False, False, True, True])
    # then the red damage under the base is added, the blue one dropped, the base stands
    assert got == [0, 2, 3]


def test_kept_drops_base_damage_the_verifier_doubts_when_the_rule_says_so(tmp_path: Path) -> None:
    rule = VerifierRule(base_conf=0.3, min_probability=0.9, min_base_probability=0.1)
    verifier = DamageVerifier.load(make_verifier(tmp_path / "v.onnx"), rule)
    image, damages = kept_scene()
    got = verifier.kept(image, (2.0, 2.0), damages, [], (400, 200), [False, False, True, True])
    assert got == [0, 3]


def test_kept_follows_the_base_verdict_it_is_given_not_the_score(tmp_path: Path) -> None:
    # given every damage said not kept by the base (e.g. a whole-car view's rule)
    verifier = DamageVerifier.load(make_verifier(tmp_path / "v.onnx"), RULE)
    image, damages = kept_scene()
    got = verifier.kept(image, (2.0, 2.0), damages, [], (400, 200), [False] * 4)
    # then only the red ones, which the verifier confirms, are kept
    assert got == [0, 3]


def test_kept_wants_one_base_verdict_per_damage(tmp_path: Path) -> None:
    verifier = DamageVerifier.load(make_verifier(tmp_path / "v.onnx"), RULE)
    image, damages = kept_scene()
    with pytest.raises(ValueError, match="one probability and one base verdict"):
        verifier.kept(image, (2.0, 2.0), damages, [], (400, 200), [True])


# --- load_verifier -------------------------------------------------------------------------


def test_a_verifier_is_loaded_from_its_record_beside_the_model(tmp_path: Path) -> None:
    path = make_verifier(tmp_path / "damage-verifier-1.onnx")
    record = StageRecord(path.name, sha256_of(path), RULE)
    verifier = load_verifier(tmp_path, record, tmp_path / "damage.onnx", threads=1)
    assert verifier.rule == RULE and verifier.version == "damage-verifier-1"
    assert verifier.classes == CLASSES


def test_a_verifier_file_that_changed_after_registering_is_not_served(tmp_path: Path) -> None:
    path = make_verifier(tmp_path / "v.onnx")
    record = StageRecord(path.name, "0" * 64, RULE)
    with pytest.raises(ModelUnavailable, match=r"damage verifier .*v\.onnx does not match"):
        load_verifier(tmp_path, record, tmp_path / "damage.onnx")


def test_a_missing_verifier_file_is_not_served(tmp_path: Path) -> None:
    record = StageRecord("gone.onnx", "0" * 64, RULE)
    with pytest.raises(ModelUnavailable, match=r"damage verifier file missing: .*gone\.onnx"):
        load_verifier(tmp_path, record, tmp_path / "damage.onnx")


# --- the registry entry --------------------------------------------------------------------


def damage_entry(**fields: object) -> ModelEntry:
    return replace(ModelEntry("damage-x-1", "damage", "damage.onnx", "0" * 64, list(CLASSES),
                              320), **fields)  # type: ignore[arg-type]  # fmt: skip


def test_an_entry_without_a_verifier_serves_none() -> None:
    assert damage_entry().served_verifier is None


def test_a_verifier_record_reads_back_as_its_stage_record() -> None:
    record = StageRecord("v.onnx", "ab" * 32, RULE)
    assert damage_entry(verifier=record.to_record()).served_verifier == record


@pytest.mark.parametrize(
    ("verifier", "message"),
    [
        ({"file": "v.onnx", "sha256": "0" * 64}, "rule required"),
        ({"file": "v.onnx", "sha256": "0" * 64, "rule": {"min_probability": 0.9}}, "base_conf"),
        ({"file": "v.onnx", "sha256": "0" * 64, "rule": {"base_conf": 0, "min_probability": 1}},
         "above 0"),
        ({"file": "v.onnx", "sha256": "0" * 64, "rule": RULE.to_record(), "x": 1}, "x"),
    ],
)  # fmt: skip
def test_a_damaged_verifier_record_is_a_registry_error_naming_the_entry(
    verifier: dict[str, object], message: str
) -> None:
    with pytest.raises(RegistryError, match=rf"damage-x-1: verifier: .*{message}"):
        _ = damage_entry(verifier=verifier).served_verifier


def test_a_verifier_record_survives_the_registry_file_and_is_left_out_when_empty(
    tmp_path: Path,
) -> None:
    record = StageRecord("v.onnx", "ab" * 32, RULE)
    Registry(tmp_path, [damage_entry(verifier=record.to_record()),
                        replace(damage_entry(), id="damage-x-2")], {}).save()  # fmt: skip
    raw = (tmp_path / "registry.json").read_text()
    loaded = Registry.load(tmp_path)
    assert loaded.get("damage-x-1").served_verifier == record
    assert loaded.get("damage-x-2").served_verifier is None
    assert raw.count('"verifier"') == 1


# --- served by the analyzer ----------------------------------------------------------------

IMGSZ = 320
W, H = 400, 200
SERVED_CONF = 0.02
"""The damage model's own threshold: under the rule's base_conf, so the verifier adds."""
SERVED_RULE = VerifierRule(base_conf=0.3, min_probability=0.7)


def red_and_blue(seed: int = 0) -> np.ndarray:
    """A sharp, well exposed photo, reddish on the left half and bluish on the right."""
    rng = np.random.default_rng(seed)
    small = np.zeros((H // 8, W // 8, 3), np.int64)
    small[:, : W // 16] = (40, 40, 210)
    small[:, W // 16 :] = (210, 40, 40)
    small = np.clip(small + rng.integers(-30, 30, small.shape), 0, 255)
    return cv2.resize(small.astype(np.uint8), (W, H), interpolation=cv2.INTER_NEAREST)


def png(image: np.ndarray, photo_id: str) -> PhotoInput:
    ok, data = cv2.imencode(".png", image)
    assert ok
    return PhotoInput(photo_id, data.tobytes())


def det(box: tuple[float, float, float, float], score: float) -> FakeDet:
    return FakeDet(*to_model(box, W, H, IMGSZ), cls=DAMAGE_CLASSES.index("moderate-dent"),
                   score=score)  # fmt: skip


RED_LOW = (60, 40, 100, 80)
BLUE_LOW = (300, 40, 340, 80)
BLUE_HIGH = (260, 120, 320, 170)


def served_scene(
    model_dir: Path, verifier: dict[str, object] | None, whole_car: WholeCarRule | None = None
) -> Settings:
    """A bumper along the bottom, a door top-left; three dents: low scores on the red half
    and on the blue half, a high one on the blue half. The promoted damage entry serves at
    SERVED_CONF and carries `verifier`."""
    parts = [
        FakeDet(*to_model(box, W, H, IMGSZ), cls=PART_CLASSES.index(kind.value), score=0.9)
        for kind, box in (
            (CarPart.FRONT_BUMPER, (0, 100, 400, 200)),
            (CarPart.FRONT_LEFT_DOOR, (0, 0, 150, 90)),
        )
    ]
    damages = [det(RED_LOW, 0.05), det(BLUE_LOW, 0.05), det(BLUE_HIGH, 0.5)]
    settings = write_registry(model_dir, IMGSZ, damages, parts, whole_car_rule=whole_car)
    registry = Registry.load(model_dir)
    k = next(i for i, e in enumerate(registry.entries) if e.task == "damage")
    metrics = {"served_conf": SERVED_CONF}
    registry.entries[k] = replace(registry.entries[k], metrics=metrics, verifier=verifier or {})
    registry.save()
    return settings


def verified_scene(model_dir: Path, whole_car: WholeCarRule | None = None) -> Settings:
    model_dir.mkdir(parents=True)
    path = make_verifier(model_dir / "damage-verifier-1.onnx")
    record = StageRecord(path.name, sha256_of(path), SERVED_RULE)
    return served_scene(model_dir, record.to_record(), whole_car)


def boxes(found: tuple[DamageInstance, ...]) -> list[tuple[int, int, int, int]]:
    """The damages' boxes, rounded to whole photo pixels, in order."""
    return sorted((round(d.box.x1), round(d.box.y1), round(d.box.x2), round(d.box.y2))
                  for d in found)  # fmt: skip


@pytest.fixture
def verified_settings(tmp_path: Path) -> Settings:
    return verified_scene(tmp_path / "models")


def test_the_analyzer_keeps_low_score_damage_its_verifier_confirms(
    verified_settings: Settings,
) -> None:
    # given the analyzer over a damage model promoted with a verifier
    analyzer = build_analyzer(verified_settings)
    assert analyzer.verifier is not None and analyzer.verifier.rule == SERVED_RULE
    # when it analyses the red-and-blue photo
    (result,) = analyzer.analyze([png(red_and_blue(), "p")])
    # then the low-score dent on red is kept, the one on blue dropped, the high one kept
    assert boxes(result.damages) == sorted([RED_LOW, BLUE_HIGH])
    assert sorted(d.confidence for d in result.damages) == pytest.approx([0.05, 0.5])
    # and the kept damages are assigned to parts as ever
    assert {p.part for p in result.parts} == {CarPart.FRONT_BUMPER, CarPart.FRONT_LEFT_DOOR}


def test_the_operator_can_turn_the_verifier_off_and_get_the_base_threshold(
    verified_settings: Settings,
) -> None:
    # given the same registry, with the verifier turned off
    off = verified_settings.model_copy(update={"damage_verifier": False})
    analyzer = build_analyzer(off)
    # when it analyses the photo
    (result,) = analyzer.analyze([png(red_and_blue(), "p")])
    # then no verifier runs, and the model serves at the rule's base_conf: the high dent only
    assert analyzer.verifier is None
    assert boxes(result.damages) == [BLUE_HIGH]


def test_the_verifier_setting_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CDAT_DAMAGE_VERIFIER", raising=False)
    assert Settings(_env_file=None).damage_verifier is True  # type: ignore[call-arg]
    monkeypatch.setenv("CDAT_DAMAGE_VERIFIER", "false")
    assert Settings(_env_file=None).damage_verifier is False  # type: ignore[call-arg]
    monkeypatch.setenv("CDAT_DAMAGE_VERIFIER", "true")
    assert Settings(_env_file=None).damage_verifier is True  # type: ignore[call-arg]


def test_with_a_whole_car_rule_the_base_is_the_rule_and_it_is_not_applied_again(
    tmp_path: Path,
) -> None:
    # given a whole-car rule wanting 0.6 on a view of 2 parts or more (this one), which the
    # high dent (0.5) does not reach
    rule = WholeCarRule(min_parts=2, whole_car_conf=0.6)
    settings = verified_scene(tmp_path / "models", rule)
    analyzer = build_analyzer(settings)
    assert analyzer.whole_car == rule and analyzer.verifier is not None
    # when it analyses the photo
    (result,) = analyzer.analyze([png(red_and_blue(), "p")])
    # then the high dent is not in the base, and the verifier (blue) does not confirm it;
    # the low dent on red, confirmed, is kept though the rule alone would drop it
    assert boxes(result.damages) == [RED_LOW]
    # and without the verifier the rule alone keeps nothing at the base threshold
    off = build_analyzer(settings.model_copy(update={"damage_verifier": False}))
    (alone,) = off.analyze([png(red_and_blue(), "p")])
    assert alone.damages == ()


def served_with_rule(model_dir: Path, rule: VerifierRule, whole_car: WholeCarRule) -> Settings:
    model_dir.mkdir(parents=True)
    path = make_verifier(model_dir / "damage-verifier-1.onnx")
    return served_scene(model_dir, StageRecord(path.name, sha256_of(path), rule).to_record(),
                        whole_car)  # fmt: skip


def test_on_a_whole_car_view_the_verifier_adds_only_over_its_whole_car_bar(
    tmp_path: Path,
) -> None:
    # given the verifier's rule asking 0.9999 for damage it adds on a whole-car view, and a
    # whole-car rule for which the photo (2 parts) is one
    rule = replace(SERVED_RULE, whole_car_probability=0.9999)
    whole = WholeCarRule(min_parts=2, whole_car_conf=0.6)
    analyzer = build_analyzer(served_with_rule(tmp_path / "whole", rule, whole))
    red = analyzer.verifier.probabilities(  # type: ignore[union-attr]
        red_and_blue(), (1.0, 1.0), [DamageInstance(DamageType.DENT, Severity.MINOR, 0.05,
        Box(*RED_LOW))], [], W, H)  # fmt: skip
    assert SERVED_RULE.min_probability <= float(red[0]) < 0.9999
    # when it analyses the photo, then the low dent on red, confirmed under the close-up bar,
    # is not added there
    (result,) = analyzer.analyze([png(red_and_blue(), "p")])
    assert result.damages == ()
    # and where the photo is no whole-car view (3 parts wanted), it is added as before
    close = WholeCarRule(min_parts=3, whole_car_conf=0.6)
    (closer,) = build_analyzer(served_with_rule(tmp_path / "close", rule, close)).analyze(
        [png(red_and_blue(), "p")]
    )
    assert boxes(closer.damages) == sorted([RED_LOW, BLUE_HIGH])


def test_without_a_verifier_in_the_entry_the_models_threshold_stands(tmp_path: Path) -> None:
    settings = served_scene(tmp_path / "models", None)
    analyzer = build_analyzer(settings)
    (result,) = analyzer.analyze([png(red_and_blue(), "p")])
    assert analyzer.verifier is None
    assert boxes(result.damages) == sorted([RED_LOW, BLUE_LOW, BLUE_HIGH])


def test_served_conf_is_the_rules_base_only_for_a_damage_model_served_without_it(
    verified_settings: Settings,
) -> None:
    registry = Registry.load(verified_settings.model_dir)
    damage_model, parts = registry.promoted_entry("damage"), registry.promoted_entry("parts")
    off = verified_settings.model_copy(update={"damage_verifier": False})
    # with its verifier the model runs at its own threshold; without it, at the base
    assert served_conf(verified_settings, damage_model) == SERVED_CONF
    assert served_conf(off, damage_model) == SERVED_RULE.base_conf
    # the operator's threshold wins either way
    override = {"damage_conf": 0.4}
    assert served_conf(off.model_copy(update=override), damage_model) == 0.4
    assert served_conf(verified_settings.model_copy(update=override), damage_model) == 0.4
    # a damage model without a verifier, and a part model, keep their own
    assert served_conf(off, replace(damage_model, verifier={})) == SERVED_CONF
    assert served_conf(off, parts) == parts.served_conf


def test_a_damaged_verifier_record_makes_the_damage_model_unavailable(tmp_path: Path) -> None:
    settings = served_scene(tmp_path / "models", {"file": "v.onnx", "sha256": "0" * 64})
    with pytest.raises(ModelUnavailable, match=r"damage model: damage-fake-1: verifier"):
        build_analyzer(settings)


def test_a_changed_verifier_file_makes_serving_refuse(verified_settings: Settings) -> None:
    # given the verifier file swapped after registering
    make_verifier(verified_settings.model_dir / "damage-verifier-1.onnx", "scratch,dent")
    entry = Registry.load(verified_settings.model_dir).promoted_entry("damage")
    with pytest.raises(ModelUnavailable, match="does not match its registry checksum"):
        served_verifier(verified_settings, entry, threads=1)
    with pytest.raises(ModelUnavailable, match="does not match its registry checksum"):
        build_analyzer(verified_settings)
    # and when the operator turned the verifier off it is not even read
    off = verified_settings.model_copy(update={"damage_verifier": False})
    assert served_verifier(off, entry, threads=1) is None


def test_a_photos_memo_answers_a_damage_it_has_seen_without_looking_again(tmp_path: Path) -> None:
    # given the verifier's answers for two damages of a red photo, kept in the photo's memo
    verifier = DamageVerifier.load(make_verifier(tmp_path / "v.onnx"), RULE)
    seen = [damage(Box(30, 40, 50, 60), 0.05), damage(Box(30, 40, 50, 60), 0.5)]
    memo: dict = {}
    first = verifier.probabilities(solid(100, 200, RED), (1.0, 1.0), seen, [], 200, 100, memo=memo)
    # when it is asked again, with one new damage, on an image it would answer otherwise
    new = damage(Box(130, 40, 150, 60), 0.05)
    again = verifier.probabilities(
        solid(100, 200, BLUE), (1.0, 1.0), [seen[1], new, seen[0]], [], 200, 100, memo=memo
    )
    # then the damages it has seen keep their answers and only the new one is read afresh
    assert again.dtype == np.float32
    assert again.tolist() == pytest.approx([first[1], expected(-1.0, 0.05), first[0]], abs=1e-6)
    # and without a memo every damage is read
    plain = verifier.probabilities(solid(100, 200, BLUE), (1.0, 1.0), seen, [], 200, 100)
    assert plain.tolist() == pytest.approx([expected(-1.0, 0.05), expected(-1.0, 0.5)], abs=1e-5)
