"""Training in bf16 on the CPU: refused where it would not pay, and a whole run where asked."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from inference.cpu_features import CpuFeatures
from training.cli import main as cli
from training.cpu_bf16 import check_cpu_bf16
from training.errors import TrainingError

from .conftest import coco_config, make_coco, write_yaml

AMX = CpuFeatures("Xeon with AMX", frozenset({"avx512f", "amx_bf16"}), 2)
PLAIN = CpuFeatures("Old Xeon", frozenset({"avx2"}), 2)


def train_tiny(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, *flags: str) -> int:
    """One epoch on tiny generated data, on a CPU said to have AMX (emulated bf16 is correct,
    only slow), as run `b`; the CLI's exit code."""
    import training.train

    monkeypatch.setattr(training.train, "read_cpu_features", lambda: AMX)
    root = make_coco(tmp_path / "coco", {"train": 4, "val": 2, "test": 1})
    config = write_yaml(tmp_path / "d.yaml", coco_config(root))
    return cli(["train", "--config", str(config), "--imgsz", "64", "--epochs", "1", "--batch",
                "4", "--project", str(tmp_path / "runs"), "--name", "b", "--data-dir",
                str(tmp_path / "data"), "--threads", "2", *flags])  # fmt: skip


def test_cpu_bf16_is_allowed_only_on_a_cpu_with_native_bf16() -> None:
    # given a CPU with AMX, then bf16 training on it is allowed
    check_cpu_bf16("cpu", AMX)
    # given one without, then it is refused, naming the CPU and what it lacks
    with pytest.raises(TrainingError, match=r"Old Xeon x2 .* no native bf16"):
        check_cpu_bf16("cpu", PLAIN)
    # given a GPU device, then the flag is refused and --amp named instead
    with pytest.raises(TrainingError, match="not --device 0; on a GPU, --amp"):
        check_cpu_bf16("0", AMX)


def test_patched_autocast_runs_cpu_layers_in_bf16_and_leaves_the_rest_alone() -> None:
    torch = pytest.importorskip("torch")
    from training.ultra import load_ultralytics

    # given Ultralytics loaded twice (the patch must not wrap itself)
    load_ultralytics()
    load_ultralytics()
    import ultralytics.engine.trainer as trainer

    conv = torch.nn.Conv2d(3, 4, 3)
    image = torch.rand(1, 3, 8, 8)
    # when the trainer's autocast is asked for bf16 on the CPU, then layers run in bf16
    with trainer.autocast(torch.bfloat16, device="cpu"):
        assert conv(image).dtype == torch.bfloat16
    # when it is asked for no mixed precision, then they stay FP32
    with trainer.autocast(False, device="cpu"):
        assert conv(image).dtype == torch.float32
    # and the patch wraps Ultralytics' own autocast, not an earlier copy of itself
    wrapped = trainer.autocast.ultralytics_autocast  # type: ignore[attr-defined]
    assert not getattr(wrapped, "cdat_cpu_bf16", False)


@pytest.mark.slow
def test_a_cpu_bf16_run_trains_and_records_its_precision(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    # given tiny generated data and a CPU with AMX, when one epoch is trained with --cpu-bf16
    code = train_tiny(tmp_path, monkeypatch, "--cpu-bf16")
    # then it trains to weights, and the run records that it trained in bf16
    run = tmp_path / "runs" / "b"
    assert code == 0 and (run / "weights" / "best.pt").is_file()
    assert json.loads((run / "cdat_run.json").read_text())["hyperparameters"]["cpu_bf16"] is True
    assert "amp: bf16" in (run / "args.yaml").read_text()
    assert "--cpu-bf16 trains a step" not in capsys.readouterr().err


def test_cpu_bf16_on_a_plain_cpu_is_an_error_line_and_writes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    import training.train

    # given a CPU without native bf16
    monkeypatch.setattr(training.train, "read_cpu_features", lambda: PLAIN)
    config = write_yaml(tmp_path / "d.yaml", coco_config(tmp_path / "nowhere"))
    # when training is asked for in bf16
    code = cli(["train", "--config", str(config), "--project", str(tmp_path / "runs"),
                "--data-dir", str(tmp_path / "data"), "--cpu-bf16"])  # fmt: skip
    # then it is refused with a reason, before any folder is written
    assert code != 0
    assert "no native bf16" in capsys.readouterr().err
    assert not (tmp_path / "runs").exists() and not (tmp_path / "data").exists()


def test_resuming_a_cpu_bf16_run_on_a_plain_cpu_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    import training.train

    # given a run started with --cpu-bf16, interrupted after its last.pt
    run = tmp_path / "runs" / "b"
    (run / "weights").mkdir(parents=True)
    (run / "weights" / "last.pt").write_bytes(b"an interrupted run's checkpoint")
    record = {"hyperparameters": {"cpu_bf16": True, "device": "cpu"}}
    (run / "cdat_run.json").write_text(json.dumps(record))
    config = write_yaml(tmp_path / "d.yaml", coco_config(tmp_path / "nowhere"))
    # when it is resumed on a CPU without native bf16
    monkeypatch.setattr(training.train, "read_cpu_features", lambda: PLAIN)
    code = cli(["train", "--config", str(config), "--project", str(tmp_path / "runs"),
                "--name", "b", "--resume"])  # fmt: skip
    # then it is refused with the reason, and the checkpoint is left as it was
    assert code != 0
    assert "no native bf16" in capsys.readouterr().err
    assert (run / "weights" / "last.pt").read_bytes() == b"an interrupted run's checkpoint"


@pytest.mark.slow
def test_training_in_fp32_on_a_cpu_with_native_bf16_names_the_flag(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    # given tiny generated data and a CPU with AMX, when a run trains without --cpu-bf16
    code = train_tiny(tmp_path, monkeypatch)
    # then it trains, and is told of the flag
    assert code == 0
    assert "--cpu-bf16 trains a step in about half" in capsys.readouterr().err
