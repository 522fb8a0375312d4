"""The parity gate: a precision is recorded as passed only when its detections match FP32's."""

from __future__ import annotations

import pytest

from cdat.analysis import PhotoInput
from inference import precision_gate
from inference.backends import available
from inference.parity import Parity, Tolerance, judge
from inference.pipeline import build_analyzer
from inference.registry import Registry
from inference.runtime_choice import choose_backend

from .conftest import DAMAGE_CLASSES, PART_CLASSES, FakeDet, textured, write_registry
from .test_runtime_choice import SAPPHIRE, everything

IMGSZ = 96


def dets(nc_scores: list[tuple[int, float]]) -> list[FakeDet]:
    return [
        FakeDet(20 + 14 * k, 30 + 9 * k, 18, 22, cls, s) for k, (cls, s) in enumerate(nc_scores)
    ]


@pytest.fixture
def model_dir(tmp_path, encode):
    """Fake damage and part models promoted, and a folder of 'val' photos."""
    damage = dets([(0, 0.62), (1, 0.41), (3, 0.93)])
    parts = dets([(2, 0.8), (5, 0.55)])
    settings = write_registry(tmp_path / "models", IMGSZ, damage, parts)
    photos = tmp_path / "val"
    photos.mkdir()
    for k in range(4):
        (photos / f"p{k}.png").write_bytes(encode(textured(160 + 16 * k, 120, seed=k)))
    return settings.model_dir, photos


def args(model_dir, photos, *extra: str):
    parser = precision_gate.get_args_parser()
    return parser.parse_args(
        ["--model-dir", str(model_dir), "--images", str(photos), "--threads", "1", *extra]
    )


def test_a_quantised_model_whose_detections_drift_is_refused_and_not_served(model_dir):
    pytest.importorskip("onnxruntime.quantization")
    from inference.quantize import quantize_model

    folder, photos = model_dir
    # given an INT8 copy of the damage model, every layer quantised: 8-bit steps across
    # box coordinates of up to ~100 px cannot hold scores of 0.4-0.9
    registry = Registry.load(folder)
    source = registry.path_of(registry.promoted_entry("damage"))
    quantize_model(source, folder / "damage.int8.onnx", sorted(photos.iterdir()))
    # when the gate judges it
    status = precision_gate.main(
        args(
            folder,
            photos,
            "--task",
            "damage",
            "--precision",
            "int8",
            "--runtime",
            "onnxruntime",
            "--file",
            "damage.int8.onnx",
        )
    )
    # then it is refused, the refusal is recorded, and serving keeps FP32
    assert status == 1
    entry = Registry.load(folder).promoted_entry("damage")
    record = entry.precisions["int8"]
    assert record["passed"] is False and record["reasons"]
    assert entry.passed("int8") is None
    choice = choose_backend(entry, SAPPHIRE, precision="int8", installed=everything)
    assert (choice.backend, choice.precision) == ("onnxruntime", "fp32")


def test_bf16_that_matches_fp32_is_recorded_and_then_served(model_dir):
    if not available("openvino"):
        pytest.skip("openvino is not installed (pip install openvino)")
    folder, photos = model_dir
    status = precision_gate.main(args(folder, photos, "--task", "parts", "--precision", "bf16"))
    assert status == 0
    entry = Registry.load(folder).promoted_entry("parts")
    assert entry.precisions["bf16"]["parity"]["matched"] == 8
    choice = choose_backend(entry, SAPPHIRE, installed=everything)
    assert (choice.backend, choice.precision) == ("openvino", "bf16")


def test_a_dry_run_records_nothing(model_dir):
    if not available("openvino"):
        pytest.skip("openvino is not installed (pip install openvino)")
    folder, photos = model_dir
    before = (folder / "registry.json").read_text()
    assert (
        precision_gate.main(
            args(folder, photos, "--task", "parts", "--precision", "bf16", "--dry-run")
        )
        == 0
    )
    assert (folder / "registry.json").read_text() == before


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--precision", "int8"], "needs --file"),
        (["--precision", "int8", "--file", "nope.onnx"], "no such model file"),
        (["--precision", "bf16", "--runtime", "onnxruntime"], "openvino only"),
    ],
)
def test_bad_input_is_one_error_line(model_dir, capsys, extra, message):
    folder, photos = model_dir
    assert precision_gate.main(args(folder, photos, "--task", "damage", *extra)) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0]


def test_judge_names_each_limit_a_candidate_misses():
    lost = Parity(
        10,
        reference=20,
        candidate=15,
        matched=12,
        mean_box_iou=0.9,
        mean_mask_iou=0.7,
        mean_score_drift=0.05,
        max_score_drift=0.3,
    )
    verdict = judge(lost, Tolerance())
    assert not verdict.passed
    text = " ".join(verdict.reasons)
    for words in (
        "found 12 of the reference's 20",
        "3 of its 15",
        "mask IoU",
        "mean score",
        "largest score",
    ):
        assert words in text
    close = Parity(10, 20, 20, 20, 0.98, 0.95, 0.005, 0.03)
    assert judge(close).passed
    assert not judge(Parity(10, 0, 0, 0, None, None, None, None)).passed


def test_the_analyzer_serves_openvino_when_pinned_with_the_same_findings(tmp_path):
    if not available("openvino"):
        pytest.skip("openvino is not installed (pip install openvino)")
    damage = dets([(0, 0.8)])
    parts = dets([(PART_CLASSES.index("hood"), 0.9)])
    assert DAMAGE_CLASSES[0] == "minor-dent"
    settings = write_registry(tmp_path / "m", IMGSZ, damage, parts)
    import cv2

    _, data = cv2.imencode(".png", textured(200, 150, seed=5))
    photo = PhotoInput("p", data.tobytes())
    served = build_analyzer(settings).analyze([photo])[0]
    pinned = settings.model_copy(update={"inference_runtime": "openvino"})
    other = build_analyzer(pinned).analyze([photo])[0]
    assert served.damages and served.parts
    assert [d.box for d in served.damages] == [d.box for d in other.damages]
    assert [p.part for p in served.parts] == [p.part for p in other.parts]
