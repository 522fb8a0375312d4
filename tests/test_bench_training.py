"""The training-step bench (bench/bench_training.py): what it measures and refuses."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.bench_training import default_precisions, get_args_parser, main, summarise
from inference.cpu_features import CpuFeatures
from tests.training.conftest import coco_config, make_coco, write_yaml


def test_summary_is_each_precisions_mean_and_bf16s_share() -> None:
    # given two measurements of each precision
    measured = [
        {"precision": "fp32", "seconds_per_step": 4.0},
        {"precision": "bf16", "seconds_per_step": 2.0},
        {"precision": "fp32", "seconds_per_step": 5.0},
        {"precision": "bf16", "seconds_per_step": 3.0},
    ]
    # then the summary is their means, and bf16's time over FP32's
    assert summarise(measured) == {"fp32": 4.5, "bf16": 2.5, "bf16_over_fp32": 0.556}
    # and one precision alone has no share
    assert summarise(measured[:1]) == {"fp32": 4.0}


def test_bf16_is_timed_by_default_only_where_the_cpu_has_it() -> None:
    amx = CpuFeatures("Xeon with AMX", frozenset({"amx_bf16"}), 2)
    plain = CpuFeatures("Old Xeon", frozenset({"avx2"}), 2)
    assert default_precisions(amx) == ["fp32", "bf16"]
    assert default_precisions(plain) == ["fp32"]


@pytest.mark.slow
def test_times_steps_of_a_real_run_and_writes_the_report(tmp_path: Path) -> None:
    # given tiny generated data and a checkpoint trained on it
    from training.cli import main as cli

    root = make_coco(tmp_path / "coco", {"train": 8, "val": 2, "test": 1})
    config = write_yaml(tmp_path / "d.yaml", coco_config(root))
    assert cli(["train", "--config", str(config), "--imgsz", "64", "--epochs", "1", "--batch",
                "4", "--project", str(tmp_path / "runs"), "--name", "t", "--data-dir",
                str(tmp_path / "data"), "--threads", "2"]) == 0  # fmt: skip
    weights = tmp_path / "runs" / "t" / "weights" / "best.pt"
    out = tmp_path / "steps.json"
    # when FP32 steps are timed (an epoch of 16 photos at batch 2 is 8 steps)
    argv = ["--config", str(config), "--data-dir", str(tmp_path / "data"), "--init",
            str(weights), "--imgsz", "64", "--batch", "2", "--warmup", "1", "--steps", "3",
            "--rounds", "1", "--precisions", "fp32", "--out", str(out)]  # fmt: skip
    args = get_args_parser().parse_args(argv)
    assert main(args) == 0
    # then one measurement is written, with its seconds per step and the loss after it
    report = json.loads(out.read_text())
    (measured,) = report["measurements"]
    assert measured["precision"] == "fp32" and measured["seconds_per_step"] > 0
    assert set(measured["loss_after"]) >= {"box_loss", "seg_loss"}
    assert report["summary"] == {"fp32": measured["seconds_per_step"]}
    # and more steps than an epoch holds is an error that says so
    args.steps = 50
    with pytest.raises(SystemExit, match="fewer than --warmup 1 \\+ --steps 50"):
        main(args)


def test_a_missing_checkpoint_is_an_error(tmp_path: Path) -> None:
    args = get_args_parser().parse_args(["--init", str(tmp_path / "none.pt")])
    with pytest.raises(SystemExit, match="no such checkpoint"):
        main(args)


def test_a_config_that_does_not_exist_is_an_error(tmp_path: Path) -> None:
    weights = tmp_path / "w.pt"
    weights.write_bytes(b"a checkpoint")
    argv = ["--init", str(weights), "--config", str(tmp_path / "none.yaml")]
    with pytest.raises(SystemExit, match=r"error: .*none\.yaml"):
        main(get_args_parser().parse_args(argv))
