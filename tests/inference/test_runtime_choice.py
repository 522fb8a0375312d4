"""The served backend and precision follow the CPU's features, what is installed, the
operator's settings and what the model passed the precision gate in (accuracy on val)."""

from __future__ import annotations

import json

import pytest

from inference.cpu_features import CpuFeatures, parse_cpuinfo, read_cpu_features
from inference.registry import ModelEntry, Registry
from inference.runtime_choice import choose_backend

PLAIN = CpuFeatures("old", frozenset({"sse4_2", "avx2"}), 2)
VNNI = CpuFeatures("cascade lake", frozenset({"avx2", "avx512f", "avx512_vnni"}), 2)
SAPPHIRE = CpuFeatures(
    "sapphire rapids", frozenset({"avx512f", "avx512_vnni", "avx512_bf16", "amx_bf16"}), 2
)
ACCURACY_KEPT = {"passed": True, "reasons": []}
BF16_RECORD = {"passed": True, "runtime": "openvino", "accuracy": ACCURACY_KEPT, "parity": {}}
INT8_RECORD = {
    "passed": True,
    "runtime": "openvino",
    "accuracy": ACCURACY_KEPT,
    "file": "d.int8.onnx",
    "sha256": "ab",
}


def entry(**precisions) -> ModelEntry:
    return ModelEntry("d-1", "damage", "d.onnx", "cd", ["dent"], 416, precisions=precisions)


def everything(_backend) -> bool:
    return True


def only_onnxruntime(backend) -> bool:
    return backend == "onnxruntime"


def test_a_cpu_without_bf16_or_vnni_serves_onnxruntime_fp32():
    choice = choose_backend(entry(bf16=BF16_RECORD, int8=INT8_RECORD), PLAIN, installed=everything)
    assert (choice.backend, choice.precision, choice.file) == ("onnxruntime", "fp32", "d.onnx")


def test_bf16_cpu_serves_openvino_bf16_where_the_model_passed_it():
    choice = choose_backend(entry(bf16=BF16_RECORD), SAPPHIRE, installed=everything)
    assert (choice.backend, choice.precision, choice.file) == ("openvino", "bf16", "d.onnx")


def test_an_entry_without_precisions_is_fp32_only_on_any_cpu():
    choice = choose_backend(entry(), SAPPHIRE, installed=everything)
    assert (choice.backend, choice.precision) == ("onnxruntime", "fp32")
    assert "not passed the precision gate (accuracy on val) in bf16" in choice.reason


def test_a_parity_only_record_is_not_served():
    # given a bf16 record from the parity-only gate: detections close to FP32's, but no
    # accuracy on labelled val measured
    parity_only = {"passed": True, "runtime": "openvino", "parity": {"recall": 0.99}}
    choice = choose_backend(entry(bf16=parity_only), SAPPHIRE, installed=everything)
    # then it does not serve: parity is information, accuracy is the gate
    assert (choice.backend, choice.precision) == ("onnxruntime", "fp32")


def test_a_record_whose_accuracy_failed_is_not_served():
    lost = {**BF16_RECORD, "accuracy": {"passed": False, "reasons": ["recall fell"]}}
    choice = choose_backend(entry(bf16=lost), SAPPHIRE, installed=everything)
    assert (choice.backend, choice.precision) == ("onnxruntime", "fp32")


def test_a_failed_gate_record_is_not_served():
    failed = {**BF16_RECORD, "passed": False}
    choice = choose_backend(entry(bf16=failed), SAPPHIRE, installed=everything)
    assert (choice.backend, choice.precision) == ("onnxruntime", "fp32")


def test_without_openvino_installed_the_fallback_is_onnxruntime_fp32():
    choice = choose_backend(entry(bf16=BF16_RECORD), SAPPHIRE, installed=only_onnxruntime)
    assert (choice.backend, choice.precision) == ("onnxruntime", "fp32")
    assert "openvino is not installed" in choice.reason


def test_vnni_cpu_serves_the_quantised_file_that_passed():
    choice = choose_backend(entry(bf16=BF16_RECORD, int8=INT8_RECORD), VNNI, installed=everything)
    assert (choice.backend, choice.precision, choice.file) == ("openvino", "int8", "d.int8.onnx")
    assert choice.sha256 == "ab"


def test_bf16_is_preferred_over_int8_where_both_passed():
    choice = choose_backend(
        entry(bf16=BF16_RECORD, int8=INT8_RECORD), SAPPHIRE, installed=everything
    )
    assert choice.precision == "bf16"


def test_pinned_runtime_onnxruntime_keeps_fp32_on_a_bf16_cpu():
    choice = choose_backend(entry(bf16=BF16_RECORD), SAPPHIRE, "onnxruntime", installed=everything)
    assert (choice.backend, choice.precision) == ("onnxruntime", "fp32")


def test_pinned_runtime_openvino_without_gated_precisions_is_openvino_fp32():
    choice = choose_backend(entry(), SAPPHIRE, "openvino", installed=everything)
    assert (choice.backend, choice.precision) == ("openvino", "fp32")


def test_pinned_precision_is_served_where_passed_even_without_native_support():
    choice = choose_backend(entry(bf16=BF16_RECORD), PLAIN, precision="bf16", installed=everything)
    assert (choice.backend, choice.precision) == ("openvino", "bf16")


def test_pinned_precision_the_model_did_not_pass_falls_back_to_fp32():
    choice = choose_backend(entry(), SAPPHIRE, precision="int8", installed=everything)
    assert (choice.backend, choice.precision) == ("onnxruntime", "fp32")
    assert choice.reason.startswith("fallback")


def test_cpuinfo_flags_and_model_name_are_read_from_the_first_processor(tmp_path):
    text = (
        "processor\t: 0\nmodel name\t: Intel(R) Xeon(R) Processor\n"
        "flags\t\t: fpu avx2 avx512f avx512_bf16 amx_int8\n\n"
        "processor\t: 1\nmodel name\t: other\nflags\t\t: fpu\n"
    )
    model, flags = parse_cpuinfo(text)
    assert model == "Intel(R) Xeon(R) Processor"
    assert {"avx512_bf16", "amx_int8"} <= flags and "other" not in flags
    (tmp_path / "cpuinfo").write_text(text)
    cpu = read_cpu_features(tmp_path / "cpuinfo")
    assert cpu.bf16 and cpu.int8
    assert not read_cpu_features(tmp_path / "missing").flags


def test_an_old_registry_without_precisions_loads_as_fp32_only(tmp_path):
    old = {
        "promoted": {"damage": "d-1"},
        "entries": [
            {
                "id": "d-1",
                "task": "damage",
                "file": "d.onnx",
                "sha256": "x",
                "classes": ["dent"],
                "imgsz": 416,
            }
        ],
    }
    (tmp_path / "registry.json").write_text(json.dumps(old))
    loaded = Registry.load(tmp_path).get("d-1")
    assert loaded.precisions == {}
    assert loaded.passed("fp32") is not None and loaded.passed("bf16") is None


@pytest.mark.parametrize("precision", ["bf16", "int8"])
def test_recording_a_verdict_keeps_the_other_precisions(tmp_path, precision):
    registry = Registry(tmp_path, [entry(bf16=BF16_RECORD)], {"damage": "d-1"})
    registry.record_precision("d-1", precision, {"passed": False, "runtime": "openvino"})
    registry.save()
    again = Registry.load(tmp_path).get("d-1")
    assert again.passed(precision) is None
    assert (again.passed("bf16") is None) == (precision == "bf16")


def test_saving_leaves_entries_without_verdicts_as_they_were(tmp_path):
    Registry(tmp_path, [entry()], {"damage": "d-1"}).save()
    stored = json.loads((tmp_path / "registry.json").read_text())["entries"][0]
    assert "precisions" not in stored


def test_the_analyzer_names_the_runtime_each_model_serves_on(tmp_path):
    from inference.loading import build_analyzer

    from .conftest import FakeDet, write_registry

    settings = write_registry(
        tmp_path / "m", 64, [FakeDet(20, 20, 10, 10, 0, 0.9)], [FakeDet(30, 30, 20, 20, 0, 0.9)]
    )
    # an entry without gate verdicts serves FP32 on ONNX Runtime whatever the CPU offers
    assert build_analyzer(settings).runtimes == {
        "damage": "onnxruntime-fp32",
        "parts": "onnxruntime-fp32",
    }


def test_bf16_with_the_head_in_fp32_serves_where_only_it_passed():
    # given a model refused in bf16 throughout that passed with its head in FP32
    refused = {**BF16_RECORD, "passed": False}
    model = entry(bf16=refused, **{"bf16-fp32-head": BF16_RECORD})
    # then a bf16 CPU serves it that way, and bf16 throughout is preferred where it passed
    choice = choose_backend(model, SAPPHIRE, installed=everything)
    assert (choice.backend, choice.precision, choice.file) == (
        "openvino",
        "bf16-fp32-head",
        "d.onnx",
    )
    both = entry(bf16=BF16_RECORD, **{"bf16-fp32-head": BF16_RECORD})
    assert choose_backend(both, SAPPHIRE, installed=everything).precision == "bf16"
    # and a CPU without bf16 serves FP32, unless the operator pins it (never on onnxruntime)
    assert choose_backend(model, VNNI, installed=everything).precision == "fp32"
    pinned = choose_backend(model, VNNI, precision="bf16-fp32-head", installed=everything)
    assert (pinned.backend, pinned.precision) == ("openvino", "bf16-fp32-head")
    ort = choose_backend(
        model, SAPPHIRE, runtime="onnxruntime", precision="bf16-fp32-head", installed=everything
    )
    assert (ort.backend, ort.precision) == ("onnxruntime", "fp32")


def test_the_crop_stages_serve_in_bf16_only_where_the_gate_measured_them_so():
    from inference.runtime_choice import stage_precision

    measured = {**BF16_RECORD, "stages": "bf16"}
    # given a model whose bf16 record says the gate measured its stages in bf16 too
    model = entry(bf16=measured)
    # then on a bf16 CPU the stages serve in bf16 beside it
    choice = choose_backend(model, SAPPHIRE, installed=everything)
    assert stage_precision(model, choice) == "bf16"
    # and in FP32 where the model itself does not serve in bf16 on OpenVINO
    for cpu, pinned in ((VNNI, "auto"), (SAPPHIRE, "fp32")):
        choice = choose_backend(model, cpu, precision=pinned, installed=everything)
        assert stage_precision(model, choice) == "fp32"
    # and a record made before the gate measured stages serves its model in bf16, its
    # stages in FP32
    older = entry(bf16=BF16_RECORD)
    choice = choose_backend(older, SAPPHIRE, installed=everything)
    assert choice.precision == "bf16" and stage_precision(older, choice) == "fp32"
