"""The damage placer (inference/placer.py): each damage on the part of the placer's detection
that overlaps it most; the head cut from a fine-tuned model (training/placer_head.py) and
joined to the served model's graph; served from its registry record."""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pytest

from cdat.analysis import PhotoInput
from cdat.errors import CdatError
from cdat.placement import PlacementRule
from cdat.settings import Settings
from cdat.taxonomy import CarPart
from inference.backends import OrtSession, small_cpu_session
from inference.errors import ModelUnavailable
from inference.loading import build_analyzer
from inference.placer import Placer, TwinRuntime, twin_model
from inference.registry import ModelEntry, Registry, sha256_of
from inference.runtime import OnnxRuntime
from inference.stage_record import StageRecord
from training import placer_head
from training.errors import TrainingError

from .conftest import (
    DAMAGE_CLASSES,
    LEFT_HALF,
    PART_CLASSES,
    FakeDet,
    make_fake_head,
    make_fake_model,
    textured,
    to_model,
    write_registry,
)

IMGSZ = 320
W, H = 400, 200
DENT_BOX = (120, 20, 360, 180)
"""Two thirds of it on the hood (right half), a third on the door (left half)."""


def det(name: str, box: tuple[float, float, float, float], score: float = 0.8, proto: int = 0):
    cls = DAMAGE_CLASSES.index(name) if name in DAMAGE_CLASSES else PART_CLASSES.index(name)
    return FakeDet(*to_model(box, W, H, IMGSZ), cls=cls, score=score, proto=proto)


@pytest.fixture
def scene(tmp_path: Path) -> Settings:
    """The door on the left half of the photo, the hood on the right; one dent across both."""
    parts = [det("front_left_door", (0, 0, 200, 200), 0.9), det("hood", (200, 0, 400, 200), 0.9)]
    return write_registry(tmp_path / "models", IMGSZ, [det("moderate-dent", DENT_BOX)], parts)


def photo() -> PhotoInput:
    ok, data = cv2.imencode(".png", textured(W, H))
    assert ok
    return PhotoInput("p1", data.tobytes())


def with_fake_placer(
    settings: Settings, placer: list[FakeDet], min_iou: float = 0.5, damage: bool = True
):
    """The scene's analyzer with its damage model (the dent, or no damage) tapped for a fake
    placer head that emits `placer`."""
    analyzer = build_analyzer(settings)
    nc = len(DAMAGE_CLASSES)
    found = [det("moderate-dent", DENT_BOX)] if damage else []
    tapped = make_fake_model(settings.model_dir / "tapped.onnx", IMGSZ, nc, found, True)
    head = small_cpu_session(
        make_fake_head(settings.model_dir / "head.onnx", IMGSZ, nc, placer), 1, "placer"
    )
    config = analyzer.damage.runtime.config
    twin = TwinRuntime(OrtSession(tapped, threads=1), head, config, "placer-1")
    analyzer.damage = replace(analyzer.damage, runtime=twin)
    analyzer.placer = Placer(twin, PlacementRule(min_iou))
    return analyzer


def test_the_masks_alone_put_the_dent_on_the_hood(scene: Settings) -> None:
    (result,) = build_analyzer(scene).analyze([photo()])
    assert [d.part for d in result.damages] == [CarPart.HOOD]


def test_the_placer_moves_the_dent_to_the_part_its_own_mask_lies_on(scene: Settings) -> None:
    # given a placer that sees the same dent (same box) with its mask on the left half only
    analyzer = with_fake_placer(scene, [det("moderate-dent", DENT_BOX, 0.5, LEFT_HALF)])
    # when the photo is analysed
    (result,) = analyzer.analyze([photo()])
    # then the dent is the served model's (its score and box) on the placer's part, the door,
    # with its coverage measured against the door
    (dent,) = result.damages
    assert dent.part is CarPart.FRONT_LEFT_DOOR
    assert dent.confidence == pytest.approx(0.8, abs=1e-3)
    assert 0.0 < dent.part_coverage < 1.0
    assert analyzer.model_versions["placer"] == "placer-1"
    assert "placer_ms" in result.timings_ms


def test_a_photo_without_damage_never_runs_the_placer_head(scene: Settings) -> None:
    # given a damage model that finds nothing and a placer that would find the dent
    analyzer = with_fake_placer(scene, [det("moderate-dent", DENT_BOX, 0.5, LEFT_HALF)],
                                damage=False)  # fmt: skip
    # when the photo is analysed, then there is nothing to place and the head is not run
    (result,) = analyzer.analyze([photo()])
    assert result.damages == ()
    assert "placer_ms" not in result.timings_ms
    assert "damage_ms" in result.timings_ms


def test_a_placer_detection_elsewhere_leaves_the_dent_where_its_masks_put_it(
    scene: Settings,
) -> None:
    # given a placer whose only detection overlaps the dent's box at an IoU under 0.5
    beside = (10, 20, 150, 180)
    analyzer = with_fake_placer(scene, [det("moderate-dent", beside, 0.5, LEFT_HALF)])
    (result,) = analyzer.analyze([photo()])
    assert [d.part for d in result.damages] == [CarPart.HOOD]
    # and a placer with no detection at all changes nothing either
    (result,) = with_fake_placer(scene, []).analyze([photo()])
    assert [d.part for d in result.damages] == [CarPart.HOOD]


def test_the_rule_sets_how_much_overlap_places(scene: Settings) -> None:
    # given a placer detection over most of the dent (box IoU about 0.67)
    near = (120, 20, 280, 180)
    placer = [det("moderate-dent", near, 0.5, LEFT_HALF)]
    (placed,) = with_fake_placer(scene, placer, 0.5).analyze([photo()])
    (kept,) = with_fake_placer(scene, placer, 0.8).analyze([photo()])
    assert [d.part for d in placed.damages] == [CarPart.FRONT_LEFT_DOOR]
    assert [d.part for d in kept.damages] == [CarPart.HOOD]


# --- the head, cut from tiny Ultralytics models and joined ---------------------------------

SIDE = 64
NAMES = ("minor-dent", "severe-dent")


def _export(weights: Path, side: int = SIDE) -> Path:
    from training.export import export_onnx

    return export_onnx(weights, weights.with_suffix(".onnx"), side)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A served stand-in, a placer fine-tuned from it with layers 0-9 untouched, and a model
    whose backbone differs (layer 3), each as a checkpoint and its export."""
    os.environ.setdefault("YOLO_OFFLINE", "1")
    torch = pytest.importorskip("torch")
    ultralytics = pytest.importorskip("ultralytics")
    from tests.training.test_vehicle_gate import _tiny_checkpoint

    folder = tmp_path_factory.mktemp("placer")
    (folder / "base").mkdir()
    base = _tiny_checkpoint(folder / "base", NAMES)
    made = {"base": _export(base)}
    for name, changed in (("placer", lambda k: k >= 10), ("other", lambda k: k == 3)):
        model = ultralytics.YOLO(str(base))
        generator = torch.Generator().manual_seed(1)
        with torch.no_grad():
            for key, value in model.model.named_parameters():
                if changed(int(key.split(".")[1])):
                    value.add_(0.05 * torch.randn(value.shape, generator=generator))
        (folder / name).mkdir()
        model.save(str(folder / name / "tiny.pt"))
        made[name] = _export(folder / name / "tiny.pt")
    # the placer with other class names, and exported at another input size
    renamed = ultralytics.YOLO(str(folder / "placer" / "tiny.pt"))
    renamed.model.names = {0: "minor-scratch", 1: "severe-dent"}
    (folder / "renamed").mkdir()
    renamed.save(str(folder / "renamed" / "tiny.pt"))
    made["renamed"] = _export(folder / "renamed" / "tiny.pt")
    (folder / "larger").mkdir()
    shutil.copyfile(folder / "placer" / "tiny.pt", folder / "larger" / "tiny.pt")
    made["larger"] = _export(folder / "larger" / "tiny.pt", 2 * SIDE)
    return made


def cut(tiny: dict[str, Path], out: Path, candidate: str = "placer") -> int:
    args = placer_head.get_args_parser().parse_args(
        ["--candidate", str(tiny[candidate]), "--damage", str(tiny["base"]), "--out", str(out)]
    )
    return placer_head.main(args)


@pytest.mark.slow
def test_the_joined_graph_answers_as_both_models_alone(
    tiny: dict[str, Path], tmp_path: Path
) -> None:
    # given the placer's head cut against the served stand-in
    head = tmp_path / "head.onnx"
    assert cut(tiny, head) == 0
    assert head.stat().st_size < tiny["placer"].stat().st_size
    # when a photo goes through the joined graph and through each model alone
    image = textured(90, 70, seed=3)
    runtime = TwinRuntime.joined(tiny["base"], head, None, threads=1)
    ((damage, taps),) = runtime.infer_with_taps([image])
    placed = runtime.placer_detections(taps)
    (alone,) = OnnxRuntime(tiny["base"], threads=1).infer([image])
    (placer_alone,) = OnnxRuntime(tiny["placer"], threads=1).infer([image])
    # then the tapped model and the head give each model's own detections
    for joined, own in ((damage, alone), (placed, placer_alone)):
        assert len(joined) == len(own) > 0
        np.testing.assert_allclose(joined.boxes, own.boxes, atol=1e-3)
        np.testing.assert_array_equal(joined.masks, own.masks)
    # and the two models do differ, so the comparison tells them apart
    same = len(alone) == len(placer_alone) and np.allclose(alone.scores, placer_alone.scores)
    assert not same


@pytest.mark.slow
def test_a_model_with_another_backbone_is_refused(tiny: dict[str, Path], tmp_path: Path) -> None:
    head = tmp_path / "head.onnx"
    with pytest.raises(TrainingError, match=r"first 10 layers differ .* --freeze 10"):
        cut(tiny, head, candidate="other")
    assert not head.exists()


@pytest.mark.slow
@pytest.mark.parametrize(
    ("candidate", "message"),
    [("renamed", "its names .* differ from the damage model's"),
     ("larger", "its input .* is not the damage model's .*export it at the damage model's size")],
)  # fmt: skip
def test_a_placer_must_name_its_classes_and_read_the_size_as_the_damage_model(
    tiny: dict[str, Path], tmp_path: Path, candidate: str, message: str
) -> None:
    # given a placer fine-tuned from the damage model, but with other class names or size
    head = tmp_path / "head.onnx"
    # when it is cut, then it is refused, naming what differs, and nothing is written
    with pytest.raises(TrainingError, match=message):
        cut(tiny, head, candidate=candidate)
    assert not head.exists()


@pytest.mark.slow
def test_a_head_whose_classes_differ_is_not_served(tiny: dict[str, Path], tmp_path: Path) -> None:
    import onnx

    # given a head cut as it should be, then its stored class names changed by hand
    head = tmp_path / "head.onnx"
    cut(tiny, head)
    model = onnx.load(str(head))
    names = {p.key: p.value for p in model.metadata_props} | {"names": "{0: 'dent'}"}
    onnx.helper.set_model_props(model, names)
    onnx.save(model, str(head))
    # when it is joined to the damage model, then it is refused
    with pytest.raises(ModelUnavailable, match=r"its names .* differ"):
        TwinRuntime.joined(tiny["base"], head, None, threads=1)


@pytest.mark.slow
def test_a_head_joins_only_the_file_it_was_cut_against(
    tiny: dict[str, Path], tmp_path: Path
) -> None:
    head = tmp_path / "head.onnx"
    cut(tiny, head)
    with pytest.raises(ModelUnavailable, match="was not cut against"):
        twin_model(tiny["other"], head)


def tiny_registry(tiny: dict[str, Path], folder: Path) -> Path:
    """The served stand-in promoted with its placer record, the fake part model beside it."""
    model_dir = folder / "models"
    fake = write_registry(model_dir, IMGSZ, None, [det("hood", (200, 0, 400, 200), 0.9)])
    shutil.copyfile(tiny["base"], model_dir / "damage.onnx")
    head = model_dir / "placer-head.onnx"
    cut(tiny, head)
    registry = Registry.load(model_dir)
    record = StageRecord(head.name, sha256_of(head), PlacementRule(0.5)).to_record()
    checksum = sha256_of(model_dir / "damage.onnx")
    damage = ModelEntry(
        "damage-tiny-1", "damage", "damage.onnx", checksum, list(NAMES), SIDE, placer=record
    )
    registry.register(damage)
    registry.promoted["damage"] = damage.id
    registry.save()
    return fake.model_dir


def served(model_dir: Path, **overrides: object) -> Settings:
    return Settings(model_dir=model_dir, onnx_threads=1, min_image_side=64, **overrides)  # type: ignore[arg-type]


@pytest.mark.slow
def test_the_promoted_placer_is_served_unless_turned_off(
    tiny: dict[str, Path], tmp_path: Path
) -> None:
    # given a promoted damage model whose entry names its placer
    model_dir = tiny_registry(tiny, tmp_path)
    # when the analyzer is built, then the placer runs with the damage model, in one graph
    analyzer = build_analyzer(served(model_dir))
    assert analyzer.placer is not None and analyzer.damage.runtime is analyzer.placer.runtime
    assert analyzer.model_versions["placer"] == "placer-head"
    (result,) = analyzer.analyze([photo()])
    assert not result.quality_issues or all(
        i.code != "analysis_failed" for i in result.quality_issues
    )
    # and the operator can serve the damage model's own masks instead
    plain = build_analyzer(served(model_dir, damage_placer=False))
    assert plain.placer is None and "placer" not in plain.model_versions


@pytest.mark.slow
def test_a_placer_file_that_is_not_the_one_recorded_stops_loading(
    tiny: dict[str, Path], tmp_path: Path
) -> None:
    model_dir = tiny_registry(tiny, tmp_path)
    (model_dir / "placer-head.onnx").write_bytes(b"not the head")
    with pytest.raises(ModelUnavailable, match=r"damage placer .* does not match its registry"):
        build_analyzer(served(model_dir))


@pytest.mark.slow
def test_registering_copies_the_measured_placer_after_joining_it(
    tiny: dict[str, Path], tmp_path: Path
) -> None:
    from training.registry_cli import _report_stage

    # given an evaluation measured with a placer head kept in runs/
    head = tmp_path / "runs" / "placer-head.onnx"
    head.parent.mkdir()
    cut(tiny, head)
    record = StageRecord(str(head), sha256_of(head), PlacementRule(0.5)).to_record()
    report = tmp_path / "report.json"
    report.write_text(json.dumps({"claims": {}, "placer": record}))
    model_dir = tmp_path / "models"
    model_dir.mkdir()
    # when the damage model it was cut against is registered, then the head is copied beside it
    got = _report_stage(report, "placer", "damage", model_dir, tiny["base"])
    assert got == {"file": "placer-head.onnx", "sha256": sha256_of(head),
                   "rule": {"min_iou": 0.5}}  # fmt: skip
    assert (model_dir / "placer-head.onnx").read_bytes() == head.read_bytes()
    # and registering another damage model with it is refused
    with pytest.raises(CdatError, match=r"placer: .*was not cut against"):
        _report_stage(report, "placer", "damage", tmp_path / "other", tiny["other"])


@pytest.mark.slow
def test_evaluate_refuses_a_placer_cut_against_another_model_before_measuring(
    tiny: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from training.cli import main as cli_main

    # given a head cut against the served stand-in
    head = tmp_path / "head.onnx"
    cut(tiny, head)
    # when another model is evaluated with it, then it is one error line before any data set
    # is read or converted
    config = Path(__file__).resolve().parents[2] / "datasets" / "damage.yaml"
    code = cli_main(["evaluate", "--config", str(config), "--data-dir", str(tmp_path / "data"),
                     "--model",
                     str(tiny["other"]), "--claims", "--placer", str(head), "--placer-rule",
                     '{"min_iou": 0.5}'])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 2
    assert "--placer: damage placer" in err and "was not cut against" in err
    assert not (tmp_path / "data").exists()
