"""`python -m training.X`: a script's own error is one line and status 2, never a traceback."""

from __future__ import annotations

import argparse
import subprocess
import sys

import pytest

from training.errors import DatasetError, run_script


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser()
    parser.add_argument("--fail", action="store_true", help="raise the package's error")
    return parser


def _main(args: argparse.Namespace) -> int:
    if args.fail:
        raise DatasetError("no photos under data/train")
    return 0


def test_a_training_error_is_one_line_and_status_two(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # given a script whose main raises the package's error
    monkeypatch.setattr(sys, "argv", ["script", "--fail"])
    # when it runs as a script
    with pytest.raises(SystemExit) as exited:
        run_script(_main, _parser())
    # then it exits 2 with the message alone
    assert exited.value.code == 2
    assert capsys.readouterr().err == "error: no photos under data/train\n"


def test_main_s_status_is_the_exit_status(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "argv", ["script"])
    with pytest.raises(SystemExit) as exited:
        run_script(_main, _parser())
    assert exited.value.code == 0


def test_a_real_script_reports_a_missing_data_root_in_one_line(tmp_path) -> None:
    # given a data root that holds no data set
    command = [sys.executable, "-m", "training.backgrounds", "--data-root", str(tmp_path)]
    command += ["--out", str(tmp_path / "out")]
    # when the script runs
    done = subprocess.run(command, capture_output=True, text=True, timeout=120)
    # then it says what is missing, in one line, with status 2
    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith("error: ") and done.stderr.count("\n") == 1


def test_a_stage_file_that_is_not_one_is_one_line(tmp_path) -> None:
    # given the vehicle gate's file named where a damage verifier is expected
    cache = tmp_path / "pass.pkl"
    cache.write_bytes(b"")
    command = [sys.executable, "-m", "training.verifier_sweep", "--cache", str(cache)]
    command += ["--verifier", "inference/models/vehicle-gate-20261206.onnx"]
    command += ["--data-root", str(tmp_path)]
    # when the sweep loads it
    done = subprocess.run(command, capture_output=True, text=True, timeout=120)
    # then the model's own complaint is one line with status 2, not a traceback
    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith("error: ") and done.stderr.count("\n") == 1
    assert "classes" in done.stderr
