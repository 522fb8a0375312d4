"""The precision gate: a precision is served only where accuracy on labelled val is kept.

Tiny generated data: fake models that emit known detections (conftest), photos with one
labelled damage outline each, and a candidate "quantised" file that drops exactly the
detection on the outline. Parity with FP32 stays within its limits (19 of 20 detections);
the damage found does not.
"""

from __future__ import annotations

import shutil
from dataclasses import fields, replace
from pathlib import Path

import pytest

from cdat.taxonomy import DamageType
from inference.loading import build_analyzer
from inference.parity import gate
from inference.registry import Registry
from inference.runtime import OnnxRuntime
from inference.runtime_choice import choose_backend
from training.claim_eval import analyse, outlines_of
from training.mask_map import MAP_CONFIG, LabelledPhoto, average_precision, mask_map50
from training.outline_tally import OutlineTally
from training.precision_gate import candidate_model, gate_accuracy
from training.precision_verdict import AccuracyTolerance, claim_figures, judge_accuracy

from .conftest import DAMAGE_CLASSES, FakeDet, make_fake_model, textured, write_registry
from .test_detector_look import SECOND_SCRATCH, found, with_second_scratch
from .test_pipeline import H, W, photo
from .test_runtime_choice import SAPPHIRE, everything

IMGSZ = 96
PHOTO = 192  # square, twice the model input: photo pixels = 2 x model pixels, no padding
GRID = [(10 + 18 * i, 10 + 22 * j) for j in range(4) for i in range(5)]
"""20 boxes of 16 x 16 model pixels that never overlap (NMS keeps them all)."""


def detections(drop_first: bool = False) -> list[FakeDet]:
    # the first box scores highest and is the one on the labelled outline
    dets = [FakeDet(cx, cy, 16, 16, 0, 0.9 - 0.02 * k) for k, (cx, cy) in enumerate(GRID)]
    return dets[1:] if drop_first else dets


def outline() -> tuple[float, ...]:
    """The first box in photo pixels, normalised: (2..18 model px) x 2 / 192."""
    lo, hi = 2 * 2 / PHOTO, 18 * 2 / PHOTO
    return (lo, lo, hi, lo, hi, hi, lo, hi)


@pytest.fixture
def world(tmp_path, encode):
    settings = write_registry(
        tmp_path / "models", IMGSZ, detections(), [FakeDet(48, 48, 80, 80, 6, 0.9)]
    )
    photos = []
    for k in range(2):
        path = tmp_path / f"val{k}.png"
        image = textured(PHOTO, PHOTO, seed=k)
        path.write_bytes(encode(image))
        photos.append((path, image))
    return settings, photos


def measure_claims(photos):
    """Damage found per labelled outline, measured with claim_eval's own tally."""

    def claims(analyzer):
        tally = OutlineTally()
        for path, _ in photos:
            analysis = analyse(analyzer, path)
            shape = (analysis.height, analysis.width)
            tally.add_photo(analysis, outlines_of([("dent", list(outline()))], shape, None))
        return {"damage_recall_iou30": {"tiny": tally.report()["damage_recall_iou30"]}}

    return claims


def run_gate(settings, photos, candidate: Path):
    registry = Registry.load(settings.model_dir)
    fp32 = registry.path_of(registry.promoted_entry("damage"))
    labelled = [LabelledPhoto(image, ((0, outline()),)) for _, image in photos]
    return gate_accuracy(
        lambda: build_analyzer(settings),
        "damage",
        lambda model: candidate_model(model, candidate, "onnxruntime", "int8", 1, settings),
        measure_claims(photos),
        lambda runtime: mask_map50(runtime, labelled, DAMAGE_CLASSES),
        lambda is_candidate: OnnxRuntime(
            candidate if is_candidate else fp32, threads=1, config=MAP_CONFIG
        ),
    )


def test_a_candidate_within_parity_that_loses_the_labelled_damage_is_refused(world):
    settings, photos = world
    candidate = make_fake_model(
        settings.model_dir / "damage.int8.onnx", IMGSZ, len(DAMAGE_CLASSES), detections(True)
    )
    # given a candidate whose detections are within the parity limits of FP32's
    registry = Registry.load(settings.model_dir)
    fp32 = registry.path_of(registry.promoted_entry("damage"))
    images = [image for _, image in photos]
    parity = gate(OnnxRuntime(fp32, threads=1), OnnxRuntime(candidate, threads=1), images)
    assert parity.passed, parity.reasons
    assert parity.parity.recall == pytest.approx(0.95)
    # when the gate measures accuracy on the labelled photos
    verdict, raw = run_gate(settings, photos, candidate)
    # then it is refused for the damage it no longer finds, and for its mask mAP50
    assert not verdict.passed
    assert verdict.reference["damage_recall_iou30/tiny"] == 1.0
    assert verdict.candidate["damage_recall_iou30/tiny"] == 0.0
    assert any(r.startswith("damage_recall_iou30/tiny") for r in verdict.reasons)
    assert any(r.startswith("mask_map50/damage") for r in verdict.reasons)
    assert raw["mask_map50"]["fp32"]["mask_map50"] == pytest.approx(1.0)
    # and a record of it, saved, never serves
    record = {"passed": verdict.passed, "runtime": "onnxruntime", "file": candidate.name}
    record |= {"sha256": "x", "accuracy": verdict.as_dict(), "parity": parity.as_dict()}
    registry.record_precision("damage-fake-1", "int8", record)
    registry.save()
    entry = Registry.load(settings.model_dir).promoted_entry("damage")
    choice = choose_backend(entry, SAPPHIRE, precision="int8", installed=everything)
    assert (choice.backend, choice.precision) == ("onnxruntime", "fp32")


def test_a_candidate_that_keeps_accuracy_passes_and_is_served(world):
    settings, photos = world
    registry = Registry.load(settings.model_dir)
    fp32 = registry.path_of(registry.promoted_entry("damage"))
    candidate = settings.model_dir / "damage.int8.onnx"
    shutil.copy(fp32, candidate)  # the same detections: nothing is lost
    verdict, _ = run_gate(settings, photos, candidate)
    assert verdict.passed, verdict.reasons
    assert verdict.as_dict()["deltas"] == {
        "damage_recall_iou30/tiny": 0.0,
        "mask_map50/damage": 0.0,
    }
    record = {"passed": True, "runtime": "onnxruntime", "file": candidate.name, "sha256": "x"}
    registry.record_precision("damage-fake-1", "int8", record | {"accuracy": verdict.as_dict()})
    registry.save()
    entry = Registry.load(settings.model_dir).promoted_entry("damage")
    choice = choose_backend(entry, SAPPHIRE, precision="int8", installed=everything)
    assert (choice.backend, choice.precision, choice.file) == (
        "onnxruntime",
        "int8",
        "damage.int8.onnx",
    )


def test_each_figure_is_judged_in_its_own_direction_and_tolerance():
    reference = {
        "damage_recall_iou30/damaged-parts": 0.50,
        "part_family_accuracy/damaged-parts": 0.80,
        "intact_photos_with_damage": 0.10,
        "intact_closeups_with_damage": 0.157,
        "closeups_refused": 0.00,
        "non_vehicle_refused": 0.97,
        "mask_map50/parts": 0.70,
        "part_family_accuracy/car-parts-damage": None,  # not measured: not judged
    }
    within = {
        "damage_recall_iou30/damaged-parts": 0.485,  # 0.015 lower: within 0.02
        "part_family_accuracy/damaged-parts": 0.90,  # better: never refuses
        "intact_photos_with_damage": 0.12,  # one intact photo more of 50: within 0.02
        "intact_closeups_with_damage": 0.169,  # one close-up window more of 89: within
        "closeups_refused": 0.005,
        "non_vehicle_refused": 0.965,
        "mask_map50/parts": 0.69,
    }
    assert judge_accuracy(reference, within).passed
    worse = {**within, "intact_photos_with_damage": 0.14, "closeups_refused": 0.02}
    worse["intact_closeups_with_damage"] = 0.180  # two windows more of 89
    verdict = judge_accuracy(reference, worse)
    assert [r.split(":")[0] for r in verdict.reasons] == [
        "closeups_refused",
        "intact_closeups_with_damage",
        "intact_photos_with_damage",
    ]
    missing = {k: v for k, v in within.items() if k != "mask_map50/parts"}
    assert (
        "mask_map50/parts: FP32 has 0.7000, the candidate nothing"
        in judge_accuracy(reference, missing).reasons
    )
    strict = AccuracyTolerance(max_recall_drop=0.01)
    assert not judge_accuracy(reference, within, strict).passed


def test_fp32_that_measured_nothing_cannot_pass_anything():
    assert not judge_accuracy({"closeups_refused": None}, {"closeups_refused": None}).passed


def test_claim_figures_flatten_the_claim_headline():
    headline = {
        "damage_recall_iou30": {"car-parts-damage": 0.5, "damage-severity": 0.2},
        "part_family_accuracy": {"damaged-parts": 0.8},
        "intact_photos_with_damage": 0.1,
        "intact_closeups_with_damage": 0.16,
        "non_vehicle_refused": 0.97,
        "closeups_refused": 0.0,
        "per_source": {},
    }
    assert claim_figures(headline) == {
        "damage_recall_iou30/car-parts-damage": 0.5,
        "damage_recall_iou30/damage-severity": 0.2,
        "part_family_accuracy/damaged-parts": 0.8,
        "intact_photos_with_damage": 0.1,
        "intact_closeups_with_damage": 0.16,
        "non_vehicle_refused": 0.97,
        "closeups_refused": 0.0,
    }


def test_average_precision_by_hand():
    # two truths; detections by score: hit, miss, hit -> precision 1, 1/2, 2/3 at recall
    # 0.5, 0.5, 1.0; the envelope is 1 up to recall 0.5 and 2/3 beyond
    ap = average_precision([0.9, 0.8, 0.7], [True, False, True], 2)
    assert ap == pytest.approx((51 * 1.0 + 50 * 2 / 3) / 101)
    assert average_precision([], [], 3) == 0.0
    assert average_precision([0.5], [True], 0) == 0.0


def test_bf16_is_never_judged_on_a_cpu_that_would_run_it_in_fp32(world, monkeypatch, capsys):
    # given a CPU without native bf16 (OpenVINO's bf16 hint then runs FP32: a "bf16"
    # candidate would be the reference itself, and pass whatever bf16 would do)
    from inference.cpu_features import CpuFeatures
    from training import precision_gate

    settings, _ = world
    before = (settings.model_dir / "registry.json").read_bytes()
    plain = CpuFeatures("a CPU without bf16", frozenset({"avx2", "avx512f"}), 2)
    monkeypatch.setattr(precision_gate, "read_cpu_features", lambda: plain)
    for precision in ("bf16", "bf16-fp32-head"):
        args = precision_gate.get_args_parser().parse_args(
            ["--model-dir", str(settings.model_dir), "--task", "damage", "--precision", precision]
        )
        # when the gate is asked to judge bf16, then it refuses in one line, before any work
        assert precision_gate.main(args) == 2
        err = capsys.readouterr().err
        assert err.startswith("error: ") and "no native bf16" in err and err.count("\n") == 1
    # and crop stages are judged in bf16 alone: asked with another precision, one line too
    common = ["--model-dir", str(settings.model_dir), "--task", "damage", "--stages"]
    args = precision_gate.get_args_parser().parse_args(
        [*common, "--precision", "int8", "--file", "damage.onnx"]
    )
    assert precision_gate.main(args) == 2
    err = capsys.readouterr().err
    assert "--stages judges crop stages in bf16 only, not int8" in err and err.count("\n") == 1
    # and nothing was recorded
    assert (settings.model_dir / "registry.json").read_bytes() == before


def test_a_candidate_is_judged_with_the_looks_its_entry_is_served_with(world):
    # given a promoted damage entry served with the zoomed-out look where damage is found
    settings, _ = world
    registry = Registry.load(settings.model_dir)
    k = next(i for i, e in enumerate(registry.entries) if e.task == "damage")
    look = {"zoom_look_view_below": 0.5, "zoom_look_where_found": True}
    registry.entries[k] = replace(registry.entries[k], **look)  # type: ignore[arg-type]
    registry.save()
    served = build_analyzer(settings).damage
    # when its file is put in the candidate's backend and precision
    fp32 = Registry.load(settings.model_dir).path_of(served.entry)
    candidate = candidate_model(served, fp32, "onnxruntime", "fp32", 1, settings)
    # then the candidate takes the same look on the same photos as the served model
    assert served.closeup_runtime is not None
    assert candidate.closeup_runtime is not None
    assert candidate.closeup_runtime.look == served.closeup_runtime.look
    assert candidate.looks_again(0.1) and not candidate.looks_again(0.9)


def test_a_candidate_is_judged_with_its_second_detector_and_corner_looks(tmp_path):
    # given a promoted damage entry whose second detector finds a scratch the first look
    # misses, served with the middle and corner looks where damage is found
    settings = with_second_scratch(tmp_path / "models", first_finds=True)
    registry = Registry.load(settings.model_dir)
    k = next(i for i, e in enumerate(registry.entries) if e.task == "damage")
    looks = {"middle_look_where_found": True, "corner_looks_where_found": True,
             "zoom_look_view_below": 0.5, "zoom_look_where_found": True}  # fmt: skip
    registry.entries[k] = replace(registry.entries[k], **looks)  # type: ignore[arg-type]
    registry.save()
    analyzer = build_analyzer(settings)
    served_model = analyzer.damage
    served = found(analyzer.analyze([photo(textured(W, H))])[0])
    scratch = (DamageType.SCRATCH, pytest.approx(SECOND_SCRATCH, abs=1.5))
    assert scratch in served
    # when its file is put in the candidate's backend and precision
    fp32 = Registry.load(settings.model_dir).path_of(served_model.entry)
    analyzer.damage = candidate_model(served_model, fp32, "onnxruntime", "fp32", 1, settings)
    # then the candidate has every part the served model has (a look added to the served
    # model and not to the gate's candidate fails here) and finds what the served analysis finds
    assert set_parts(analyzer.damage) == set_parts(served_model) >= {"corner_runtime"}
    assert found(analyzer.analyze([photo(textured(W, H))])[0]) == served


def set_parts(model: object) -> set[str]:
    return {f.name for f in fields(model) if getattr(model, f.name) is not None}  # type: ignore[arg-type]


def test_the_crop_stages_are_swapped_on_the_candidate_analyzer_alone(world):
    # given a gate whose candidate serves its crop stages in the candidate precision
    settings, photos = world
    registry = Registry.load(settings.model_dir)
    fp32 = registry.path_of(registry.promoted_entry("damage"))
    labelled = [LabelledPhoto(image, ((0, outline()),)) for _, image in photos]
    swapped: list[object] = []

    def swap_stages(analyzer):
        # stands in for stages that lose the damage: the analyzer keeps nothing under 0.99
        swapped.append(analyzer)
        analyzer.damage = candidate_model(analyzer.damage, fp32, "onnxruntime", "fp32", 1, settings)
        analyzer.damage.runtime.config = replace(analyzer.damage.runtime.config, conf=0.99)

    # when it measures FP32 and the candidate
    verdict, _ = gate_accuracy(
        lambda: build_analyzer(settings),
        "damage",
        lambda model: model,
        measure_claims(photos),
        lambda runtime: mask_map50(runtime, labelled, DAMAGE_CLASSES),
        lambda is_candidate: OnnxRuntime(fp32, threads=1, config=MAP_CONFIG),
        swap_stages=swap_stages,
    )
    # then the stages were swapped once, on the candidate's analyzer, and judged with it:
    # FP32 found the outline, the candidate with its stages lost it
    assert len(swapped) == 1
    assert verdict.reference["damage_recall_iou30/tiny"] == 1.0
    assert verdict.candidate["damage_recall_iou30/tiny"] == 0.0
    assert not verdict.passed
