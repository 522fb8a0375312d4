"""A second damage detector looked with where the first look finds damage
(`detector_where_found`): what it adds, where it is never asked, and the entries refused."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from cdat.errors import ModelUnavailable
from cdat.findings import PhotoAnalysis
from cdat.settings import Settings
from cdat.taxonomy import CarPart, DamageType
from inference.loading import build_analyzer
from inference.postprocess import PostprocessConfig, RawDetections, grid_shape, joined_apart
from inference.registry import ModelEntry, Registry, sha256_of
from training.claims import without_looks_again

from .conftest import DAMAGE_CLASSES, FakeDet, make_fake_model, textured, write_registry
from .test_pipeline import IMGSZ, H, W, damage_det, part_det, photo

FIRST_DENT = (20, 50, 100, 150)
SECOND_SCRATCH = (250, 60, 350, 140)


def second_detector(model_dir: Path, dets: list[FakeDet], nc: int = len(DAMAGE_CLASSES)) -> dict:
    path = make_fake_model(model_dir / "second.onnx", IMGSZ, nc, dets)
    return {"file": path.name, "sha256": sha256_of(path)}


def scene(model_dir: Path, first_finds: bool, **fields: Any) -> Settings:
    """A door filling the photo; the served detector finds a dent on it (or nothing), and
    the damage entry carries `fields`."""
    parts = [part_det(CarPart.FRONT_LEFT_DOOR, (0, 0, 400, 200))]
    damages = [damage_det("moderate-dent", FIRST_DENT, 0.8)] if first_finds else []
    settings = write_registry(model_dir, IMGSZ, damages, parts)
    registry = Registry.load(model_dir)
    k = next(i for i, e in enumerate(registry.entries) if e.task == "damage")
    registry.entries[k] = replace(registry.entries[k], **fields)
    registry.save()
    return settings


def with_second_scratch(model_dir: Path, first_finds: bool) -> Settings:
    model_dir.mkdir(parents=True, exist_ok=True)
    record = second_detector(model_dir, [damage_det("minor-scratch", SECOND_SCRATCH, 0.8)])
    return scene(model_dir, first_finds, detector_where_found=record)


def analysed(settings: Settings) -> PhotoAnalysis:
    (result,) = build_analyzer(settings).analyze([photo(textured(W, H))])
    return result


def found(result: PhotoAnalysis) -> list[tuple[DamageType, tuple[float, ...]]]:
    return sorted((d.damage_type, (d.box.x1, d.box.y1, d.box.x2, d.box.y2)) for d in result.damages)


def test_where_the_first_look_finds_damage_the_second_detectors_is_pooled_beside_it(
    tmp_path: Path,
) -> None:
    # given a served detector that finds a dent and a second detector that finds a scratch
    settings = with_second_scratch(tmp_path, first_finds=True)
    # when the photo is analysed
    result = analysed(settings)
    # then both are reported, each on the door, and the second analysis is timed
    assert found(result) == [
        (DamageType.DENT, pytest.approx(FIRST_DENT, abs=1.5)),
        (DamageType.SCRATCH, pytest.approx(SECOND_SCRATCH, abs=1.5)),
    ]
    assert {d.part for d in result.damages} == {CarPart.FRONT_LEFT_DOOR}
    assert "looks_again_ms" in result.timings_ms


def test_a_photo_the_first_look_leaves_intact_is_never_shown_to_the_second_detector(
    tmp_path: Path,
) -> None:
    # given a served detector that finds nothing beside a second one that would
    settings = with_second_scratch(tmp_path, first_finds=False)
    # then the photo stays intact, and no look is taken again
    result = analysed(settings)
    assert result.damages == ()
    assert "looks_again_ms" not in result.timings_ms


def test_the_served_detectors_damage_stays_its_own_where_the_second_scores_higher(
    tmp_path: Path,
) -> None:
    # given a second detector that sees the served dent's box as a dent, more surely
    tmp_path.mkdir(exist_ok=True)
    record = second_detector(tmp_path, [damage_det("moderate-dent", FIRST_DENT, 0.95)])
    settings = scene(tmp_path, first_finds=True, detector_where_found=record)
    # then the dent is reported once, as the served detector found it
    (dent,) = analysed(settings).damages
    assert dent.confidence == pytest.approx(0.8, abs=1e-3)


def raw(boxes: list[list[float]], scores: list[float], classes: list[int]) -> RawDetections:
    n, grid = len(boxes), grid_shape(W, H)
    masks = np.zeros((n, *grid), bool)
    for k in range(n):
        masks[k, k] = True  # each detection's mask tells it apart
    return RawDetections(
        np.array(boxes, np.float32).reshape(n, 4), np.array(scores, np.float32),
        np.array(classes, np.int64), masks, max(scores, default=0.0),
    )  # fmt: skip


def test_the_second_detector_adds_apart_and_never_replaces() -> None:
    # given the other looks' dent, and the second detector's higher-scoring dent on nearly
    # the same box (IoU 0.9), its scratch on the same box as another type, and a scratch
    # elsewhere
    first = raw([[0, 0, 100, 100]], [0.3], [0])
    added = raw([[0, 0, 100, 90], [0, 0, 100, 100], [200, 0, 260, 60]], [0.9, 0.8, 0.5], [0, 1, 1])
    # when joined
    joined = joined_apart(first, added, PostprocessConfig(iou=0.7))
    # then the dent stays the first look's own, and only the scratch elsewhere joins, best
    # first, the photo's best score the second detector's
    assert joined.boxes.tolist() == [[200, 0, 260, 60], [0, 0, 100, 100]]
    assert joined.scores.tolist() == pytest.approx([0.5, 0.3])
    assert joined.masks[1].tolist() == first.masks[0].tolist()
    assert joined.best_score == pytest.approx(0.9)


def test_a_box_overlapping_at_the_nms_iou_or_less_joins() -> None:
    # given a second detection overlapping the first at IoU 0.5 (under the bar of 0.7)
    first = raw([[0, 0, 100, 100]], [0.6], [0])
    added = raw([[50, 0, 150, 100]], [0.4], [0])
    assert len(joined_apart(first, added, PostprocessConfig(iou=0.7))) == 2
    # and at a bar of 0.3 it is dropped
    assert len(joined_apart(first, added, PostprocessConfig(iou=0.3))) == 1
    # and with nothing else found, or nothing added, what there is stays
    assert len(joined_apart(raw([], [], []), added, PostprocessConfig())) == 1
    assert joined_apart(first, raw([], [], []), PostprocessConfig()).boxes.tolist() == [
        [0, 0, 100, 100]
    ]


def test_an_entry_naming_no_second_detector_reports_its_own_damage_alone(tmp_path: Path) -> None:
    result = analysed(scene(tmp_path, first_finds=True))
    assert found(result) == [(DamageType.DENT, pytest.approx(FIRST_DENT, abs=1.5))]


def test_a_pass_for_the_verifiers_leaves_the_second_detector_out(tmp_path: Path) -> None:
    # given the analyzer of an entry with a second detector
    analyzer = build_analyzer(with_second_scratch(tmp_path, first_finds=True))
    assert analyzer.damage.detector_look is not None
    # when it is made to look once (as training passes do), the detector goes with its field
    once = without_looks_again(analyzer.damage)
    assert once.detector_look is None and once.entry.detector_where_found == {}
    analyzer.damage = once
    (result,) = analyzer.analyze([photo(textured(W, H))])
    assert found(result) == [(DamageType.DENT, pytest.approx(FIRST_DENT, abs=1.5))]


def altered(record: dict) -> dict:
    return {**record, "sha256": "0" * 64}


BAD_RECORDS = [
    (lambda r: {**r, "rule": {}}, "detector_where_found: model file: unknown field"),
    (lambda r: {"file": r["file"]}, "detector_where_found: model file: sha256 required"),
    (lambda r: ["second.onnx"], "detector_where_found: model file: must be a record"),
    (lambda r: {**r, "file": "gone.onnx"}, "second detector file missing"),
    (altered, "second detector .* does not match its registry checksum"),
]


@pytest.mark.parametrize(("spoil", "message"), BAD_RECORDS)
def test_a_second_detector_badly_recorded_or_altered_is_refused_by_name(
    tmp_path: Path, spoil: Any, message: str
) -> None:
    # given an entry whose second detector record is spoiled, or whose file is not the one
    record = second_detector(tmp_path, [damage_det("minor-scratch", SECOND_SCRATCH)])
    settings = scene(tmp_path, first_finds=True, detector_where_found=spoil(record))
    # then the analyzer is refused with the reason, before any photo
    with pytest.raises(ModelUnavailable, match=message):
        build_analyzer(settings)


def test_a_second_detector_of_other_classes_is_refused(tmp_path: Path) -> None:
    record = second_detector(tmp_path, [], nc=len(DAMAGE_CLASSES) + 1)
    settings = scene(tmp_path, first_finds=True, detector_where_found=record)
    with pytest.raises(ModelUnavailable, match=f"predicts {len(DAMAGE_CLASSES) + 1} classes"):
        build_analyzer(settings)


def test_a_second_detector_cannot_be_served_beside_a_placer(tmp_path: Path) -> None:
    record = second_detector(tmp_path, [])
    placer = {"file": "placer.onnx", "sha256": "0" * 64, "rule": {"min_iou": 0.5}}
    settings = scene(tmp_path, first_finds=True, detector_where_found=record, placer=placer)
    with pytest.raises(ModelUnavailable, match="detector_where_found needs a damage model"):
        build_analyzer(settings)


def test_an_entry_without_a_second_detector_is_stored_as_it_was(tmp_path: Path) -> None:
    # given an entry with no second detector and one with
    plain = ModelEntry("d-1", "damage", "d.onnx", "a" * 64, ["dent"], 320)
    record = {"file": "second.onnx", "sha256": "b" * 64}
    named = replace(plain, id="d-2", detector_where_found=record)
    Registry(tmp_path, [plain, named], {}).save()
    # then the first is written without the field, and the second reads back as it was
    text = (tmp_path / "registry.json").read_text()
    assert text.count("detector_where_found") == 1
    again = Registry.load(tmp_path)
    assert again.get("d-1").served_detector_where_found is None
    assert again.get("d-2").served_detector_where_found.to_record() == record  # type: ignore[union-attr]
