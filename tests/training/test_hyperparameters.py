"""Hyperparameters: per-task defaults, CLI flags, and the offline AMP decision."""

from __future__ import annotations

import pytest

from training.train import get_args_parser, hyperparameters_from

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


def _args(*extra: str) -> dict:
    args = get_args_parser().parse_args(["--config", "c.yaml", *extra])
    return hyperparameters_from(args).ultralytics_args("damage")


def test_damage_defaults_weight_classes_and_flip() -> None:
    # given no class-weight or flip flag, when damage arguments are built
    args = hyperparameters_from(get_args_parser().parse_args(["--config", "c.yaml"]))
    # then damage weighs rare classes up and flips; parts does neither (left/right parts)
    assert args.ultralytics_args("damage")["cls_pw"] == 0.5
    assert args.ultralytics_args("damage")["fliplr"] == 0.5
    assert args.ultralytics_args("parts")["cls_pw"] == 0.0
    assert args.ultralytics_args("parts")["fliplr"] == 0.0


def test_flags_override_defaults_and_booleans_switch_both_ways() -> None:
    assert _args("--cls-pw", "0.25")["cls_pw"] == 0.25
    assert _args()["scale"] == 0.5 and _args("--scale", "0.2")["scale"] == 0.2
    assert _args()["copy_paste"] == 0.0 and _args("--copy-paste", "0.3")["copy_paste"] == 0.3
    assert _args()["freeze"] == 0 and _args("--freeze", "10")["freeze"] == 10
    assert _args()["amp"] is True and _args("--no-amp")["amp"] is False
    assert _args("--cpu-bf16")["amp"] == "bf16" and "cpu_bf16" not in _args()
    assert _args()["cache"] is False and _args("--cache")["cache"] is True
    assert "threads" not in _args("--threads", "2") and "model" not in _args()
    assert _args()["save_period"] == -1 and _args("--save-period", "2")["save_period"] == 2
    assert _args()["mosaic"] == 1.0 and _args("--mosaic", "0")["mosaic"] == 0.0
    assert _args()["single_cls"] is False and _args("--single-cls")["single_cls"] is True


def test_amp_check_runs_offline_and_is_off_on_the_cpu() -> None:
    torch = pytest.importorskip("torch")
    from training.ultra import load_ultralytics

    load_ultralytics()
    import ultralytics.engine.trainer as trainer

    # when Ultralytics asks whether AMP works for a model on the CPU
    model = torch.nn.Linear(2, 2)
    # then our offline check answers without fetching reference weights: no AMP on the CPU
    assert trainer.check_amp(model) is False


@pytest.mark.parametrize("flag", ["--cls-pw", "--fliplr", "--scale", "--copy-paste", "--mosaic"])
@pytest.mark.parametrize("value", ["2", "-0.1", "half"])
def test_out_of_range_fraction_is_a_command_line_error(
    flag: str, value: str, capsys: pytest.CaptureFixture
) -> None:
    # when a fraction outside [0, 1] is given, then argparse refuses it before any work
    with pytest.raises(SystemExit) as exited:
        get_args_parser().parse_args(["--config", "c.yaml", flag, value])
    assert exited.value.code == 2
    assert f"argument {flag}" in capsys.readouterr().err


@pytest.mark.parametrize("value", ["-1", "2.5", "backbone"])
def test_freeze_takes_a_whole_number_of_layers(value: str, capsys: pytest.CaptureFixture) -> None:
    # when --freeze is not a count of layers, then argparse refuses it before any work
    with pytest.raises(SystemExit) as exited:
        get_args_parser().parse_args(["--config", "c.yaml", "--freeze", value])
    assert exited.value.code == 2
    assert "argument --freeze" in capsys.readouterr().err


@pytest.mark.parametrize("value", ["0", "-2", "two"])
def test_a_save_period_that_is_no_period_is_a_command_line_error(
    value: str, capsys: pytest.CaptureFixture
) -> None:
    # when --save-period is neither -1 nor a whole number of epochs, then argparse refuses it
    with pytest.raises(SystemExit) as exited:
        get_args_parser().parse_args(["--config", "c.yaml", "--save-period", value])
    assert exited.value.code == 2
    assert "argument --save-period" in capsys.readouterr().err
