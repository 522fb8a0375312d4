"""The damage verifier fine-tuned end to end (training/verifier_tune.py): its scores, its
held-out photos, what learns and what stays, the script's checks, and the whole loop on a
tiny generated damage model, served whole."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from cdat.findings import Box, DamageInstance, PartInstance
from cdat.taxonomy import CarPart, DamageType, Severity
from cdat.verified import VerifierRule
from tests.training.test_stage_loops import (
    BLOB,
    ELSEWHERE,
    RED,
    H,
    W,
    fake_models,
    normalised,
    photo,
    tiny_model,
)
from training.errors import TrainingError
from training.train_pass import TrainPhoto
from training.verifier_examples import Examples, held_out_photos, scores
from training.verifier_tune import (
    VerifierTuneHyperparameters,
    VerifierTuner,
    get_args_parser,
    hyperparameters,
    main,
    train,
)

# --- scores and held-out photos ------------------------------------------------------------


def test_a_perfect_ranking_has_auc_one_and_a_reversed_one_zero() -> None:
    y = np.array([1, 1, 0, 0])
    assert scores(np.array([0.9, 0.8, 0.2, 0.1]), y)["roc_auc"] == 1.0
    assert scores(np.array([0.1, 0.2, 0.8, 0.9]), y)["roc_auc"] == 0.0


def test_ties_count_half_and_log_loss_is_the_mean_of_each_examples_loss() -> None:
    # given one real and one false example, both at 0.5, and a third (real) above them
    got = scores(np.array([0.5, 0.5, 0.7]), np.array([1, 0, 1]))
    # then the real one tied with the false one counts half: (0.5 + 1) / 2
    assert got["roc_auc"] == 0.75
    expected = -(np.log(0.5) + np.log(0.5) + np.log(0.7)) / 3
    assert got["log_loss"] == pytest.approx(expected, abs=1e-4)


def test_held_out_photos_are_seeded_about_the_share_and_never_none() -> None:
    a, b = held_out_photos(1000, 0.1, 0), held_out_photos(1000, 0.1, 0)
    assert np.array_equal(a, b) and 60 < a.sum() < 140
    assert not np.array_equal(a, held_out_photos(1000, 0.1, 1))
    assert held_out_photos(3, 0.001, 0).sum() == 1


# --- the script's arguments ----------------------------------------------------------------


@pytest.fixture
def checkpoint(tmp_path: Path) -> Path:
    path = tmp_path / "damage.pt"
    path.write_bytes(b"not a checkpoint")  # not read: the checks come first
    return path


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--out", "{tmp}/v.pt"], r"--out .*v\.pt: name an \.onnx file"),
        (["--damage", "{tmp}/missing.pt"], r"--damage .*missing\.pt: no such checkpoint"),
        (["--detector", "{tmp}/gone.onnx"], r"--detector .*gone\.onnx: no such file"),
        (["--pass-conf", "0"], "--pass-conf 0.0: need 0 < conf < 1"),
        (["--side", "33"], "--side 33: a multiple of 32"),
        (["--epochs", "0"], "--epochs 0: at least 1"),
        (["--perceptron-epochs", "0"], "--perceptron-epochs 0: at least 1"),
        (["--batch", "0"], "--batch 0: at least 1"),
        (["--lr", "0"], "--lr 0.0: above 0"),
        (["--head-lr", "-1"], "--head-lr -1.0: above 0"),
        (["--held-out", "0"], "--held-out 0.0: a share between 0 and 1"),
        (["--held-out", "1"], "--held-out 1.0"),
        (["--trainable-from", "-1"], "--trainable-from -1: a layer index"),
        (["--intact-folds", "1"], "--intact-folds 1: at least 2"),
        (["--intact-fold", "4"], "--intact-fold 4: a fold from 0 to 3"),
        (["--intact-fold", "-1"], "--intact-fold -1: a fold from 0 to 3"),
        (["--intact-fold", "2", "--intact-folds", "2"], "--intact-fold 2: a fold from 0 to 1"),
        (["--zoom-look-view-below", "0"], "--zoom-look-view-below 0.0: a probability above 0"),
        (["--zoom-look-view-below", "1.5"], "--zoom-look-view-below 1.5: a probability"),
    ],
)
def test_argument_errors_are_refused_before_any_work(
    tmp_path: Path, checkpoint: Path, argv: list[str], message: str
) -> None:
    # given otherwise valid arguments and one bad one (later options win)
    base = ["--out", f"{tmp_path}/v.onnx", "--damage", str(checkpoint),
            "--cache", f"{tmp_path}/pass.pkl"]  # fmt: skip
    args = get_args_parser().parse_args([*base, *(a.format(tmp=tmp_path) for a in argv)])
    # when the script runs, then it is one error, and nothing was written
    with pytest.raises(TrainingError, match=message):
        main(args)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["damage.pt"]


def test_the_defaults_are_the_served_verifiers_pass_and_crops(
    tmp_path: Path, checkpoint: Path
) -> None:
    from training.damage_verifier import VerifierHyperparameters

    args = get_args_parser().parse_args(["--out", str(tmp_path / "v.onnx"),
                                         "--damage", str(checkpoint)])  # fmt: skip
    hp = hyperparameters(args)
    served = VerifierHyperparameters()
    assert hp == VerifierTuneHyperparameters()
    assert (hp.pass_conf, hp.max_photos, hp.side, hp.taps) == (
        served.pass_conf, served.max_photos, served.side, served.taps)  # fmt: skip
    assert hp.pass_hp().positive_iou == served.positive_iou
    assert not hp.pass_hp().intact_closeups


def test_intact_close_ups_are_an_option_of_the_pass(tmp_path: Path, checkpoint: Path) -> None:
    args = get_args_parser().parse_args(["--out", str(tmp_path / "v.onnx"), "--damage",
                                         str(checkpoint), "--intact-closeups"])  # fmt: skip
    assert hyperparameters(args).pass_hp().intact_closeups


def test_the_zoomed_out_look_is_an_option_of_the_pass(tmp_path: Path, checkpoint: Path) -> None:
    argv = ["--out", str(tmp_path / "v.onnx"), "--damage", str(checkpoint)]
    args = get_args_parser().parse_args([*argv, "--zoom-look-view-below", "0.5"])
    assert hyperparameters(args).zoom_look_view_below == 0.5


# --- what learns ---------------------------------------------------------------------------


def generated_examples(count: int, side: int, seed: int) -> Examples:
    """Red crops are real damage, grey ones are not; extras carry nothing."""
    rng = np.random.default_rng(seed)
    crops = rng.integers(90, 170, (count, 3, side, side)).astype(np.uint8)
    y = np.arange(count) % 2
    crops[y == 1, 0] = 220  # RGB: a red plane
    extras = np.zeros((count, 6), np.float32)
    return Examples(crops, extras, y.astype(np.int64), np.array(["damage-severity"] * count))


def tiny_tuner(
    tmp_path: Path, epochs: int, cpu_bf16: bool = False
) -> tuple[Any, Examples, VerifierTuneHyperparameters]:
    """A verifier built on a tiny damage model, learning from layer 6 on, and its crops."""
    weights = tiny_model(tmp_path, ("dent", "scratch"))
    found = generated_examples(16, 32, 0)
    hp = VerifierTuneHyperparameters(side=32, trainable_from=6, epochs=epochs, batch=4,
                                     lr=1e-2, head_lr=1e-2, perceptron_epochs=2, hidden=4,
                                     cpu_bf16=cpu_bf16)  # fmt: skip
    return VerifierTuner.build(weights, hp, found), found, hp


@pytest.mark.slow
def test_layers_before_the_first_trainable_one_keep_the_damage_models_weights(
    tmp_path: Path,
) -> None:
    import torch

    # given a tiny damage model and red (real) and grey (false) crops
    net, found, hp = tiny_tuner(tmp_path, epochs=2)
    before = {k: v.clone() for k, v in net.state_dict().items()}
    epochs: list[int] = []
    # when it is fine-tuned
    train(net, found, hp, epochs.append)
    after = net.state_dict()
    # then layers 0-5 are as they were, later layers and the perceptron have learnt, batch
    # norm kept the model's statistics, and the standardisation is the frozen features'
    layer = {k: int(k.split(".")[2]) for k in before if k.startswith("body.layers.")}
    frozen = [k for k, n in layer.items() if n < 6]
    learnt = [k for k, n in layer.items() if n >= 6 and k.endswith(".weight")]
    assert frozen and learnt and epochs == [1, 2]
    assert all(torch.equal(before[k], after[k]) for k in frozen)
    assert any(not torch.equal(before[k], after[k]) for k in learnt)
    assert any(not torch.equal(before[k], after[k]) for k in before if k.startswith("mlp."))
    stats = [k for k in before if k.endswith(("running_mean", "running_var"))]
    assert stats and all(torch.equal(before[k], after[k]) for k in stats)
    assert torch.equal(before["mean"], after["mean"])


# --- the whole loop ------------------------------------------------------------------------


def tune(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, *options: str, name: str = "tuned"
) -> tuple[Path, list[TrainPhoto]]:
    """The script's `main` over the served analyzer of fake models (a dent on the red blob,
    another on grey), on eight damaged photos whose blob is labelled and four intact cars;
    `options` added to its arguments."""
    from training import verifier_tune

    weights = tiny_model(tmp_path, ("dent", "scratch"))
    fake_models(tmp_path / "models")
    monkeypatch.setenv("CDAT_MODEL_DIR", str(tmp_path / "models"))
    damaged = [
        TrainPhoto("damage-severity", photo(tmp_path / f"d{k}.jpg", k, {RED: BLOB}),
                   [("minor-dent", normalised(BLOB))])
        for k in range(8)
    ]  # fmt: skip
    intact = [TrainPhoto("car-parts", photo(tmp_path / f"c{k}.jpg", 10 + k, {}), [])
              for k in range(4)]  # fmt: skip
    photos = damaged + intact
    monkeypatch.setattr(verifier_tune, "train_photos", lambda hp, root, closeups: photos)
    out = tmp_path / "verifier" / f"{name}.onnx"
    out.parent.mkdir(exist_ok=True)
    args = get_args_parser().parse_args(
        ["--out", str(out), "--damage", str(weights), "--cache", str(tmp_path / "pass.pkl"),
         "--side", "32", "--epochs", "2", "--perceptron-epochs", "20", "--hidden", "8",
         "--batch", "4", "--held-out", "0.34", "--lr", "0.0001", "--head-lr", "0.0001",
         "--threads", "1", *options]
    )  # fmt: skip
    assert main(args) == 0
    return out, photos


@pytest.mark.slow
def test_the_tuned_verifier_learns_the_train_pass_and_is_served_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from inference.damage_verifier import DamageVerifier, extra_names

    # when the script runs on the tiny loop
    out, photos = tune(tmp_path, monkeypatch)
    # then its report counts each detection on the blob real, each elsewhere or on an intact
    # car not damage; some photos were held out; the epoch kept has the lowest held-out loss
    report = json.loads(out.with_suffix(".report.json").read_text())
    assert report["examples"]["damage-severity"] == {"real": 8, "not_damage": 8}
    assert report["examples"]["car-parts"] == {"real": 0, "not_damage": 8}
    assert 0 < report["held_out_examples"] < 32
    losses = [h["log_loss"] for h in report["history"]]
    assert [h["epoch"] for h in report["history"]] == [0, 1, 2]
    assert report["held_out"]["log_loss"] == min(losses)
    assert report["epoch"] >= 1 and min(losses) < losses[0]  # the layers learning helped
    assert report["onnx_parity_max_abs"] < 1e-3
    assert report["command"].startswith("python -m training.verifier_tune ")
    # and the served verifier loads it whole, without the damage model's file
    verifier = DamageVerifier.load(out, VerifierRule(0.1, 0.5))
    assert verifier.side == 32 and verifier.classes == ("dent", "scratch")
    assert verifier.net.body is None
    assert verifier.net.metadata["extras"] == ",".join(extra_names(verifier.classes))
    # and it tells the blob from the grey on a damaged photo
    image = cv2.imread(str(photos[0].path))
    assert image is not None
    found = [DamageInstance(DamageType.DENT, Severity.MINOR, s, b)
             for b, s in ((BLOB, 0.6), (ELSEWHERE, 0.4))]  # fmt: skip
    door = PartInstance(CarPart.FRONT_LEFT_DOOR, 0.9, Box(0, 0, W, H))  # as the fake models say
    p = verifier.probabilities(image, (1.0, 1.0), found, [door], W, H)
    assert p.shape == (2,) and p[0] > p[1]


def test_a_damage_model_that_names_no_damage_types_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given a tiny checkpoint whose classes are "0" and "1"
    weights = tiny_model(tmp_path)
    args = get_args_parser().parse_args(["--out", str(tmp_path / "v.onnx"),
                                         "--damage", str(weights)])  # fmt: skip
    # then the script refuses it before any pass, naming its classes
    with pytest.raises(TrainingError, match=r"its classes \(0, 1\) are not all damage types"):
        main(args)
    assert not (tmp_path / "v.onnx").exists()


@pytest.mark.parametrize("script", ["training.verifier_tune", "training.damage_verifier"])
def test_a_damage_file_that_is_no_checkpoint_is_one_error_line(tmp_path: Path, script: str) -> None:
    import subprocess
    import sys

    # given a --damage file that is no PyTorch checkpoint, and a served .onnx beside it
    damage = tmp_path / "damage.pt"
    damage.write_bytes(b"not a checkpoint")
    damage.with_suffix(".onnx").write_bytes(b"not read")
    out = tmp_path / "v.onnx"
    # when either verifier script runs, then it stops with one error line, writing nothing
    done = subprocess.run(
        [sys.executable, "-m", script, "--out", str(out), "--damage", str(damage)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    assert f"--damage {damage}: not a PyTorch checkpoint of a damage model" in done.stderr
    assert not out.exists()


@pytest.mark.slow
def test_a_cpu_bf16_run_computes_its_layers_in_bf16_and_keeps_fp32_weights(
    tmp_path: Path,
) -> None:
    import torch

    # given a tiny damage model, its crops, and bf16 asked for
    net, found, hp = tiny_tuner(tmp_path, epochs=1, cpu_bf16=True)
    before = {k: v.clone() for k, v in net.state_dict().items()}
    conv = next(m for m in net.body.modules() if isinstance(m, torch.nn.Conv2d))
    computed: list[torch.dtype] = []
    conv.register_forward_hook(lambda module, given, out: computed.append(out.dtype))
    # when it is fine-tuned
    train(net, found, hp, lambda epoch: None)
    # then its layers ran in bf16, and what it learnt is kept in FP32
    assert computed and set(computed) == {torch.bfloat16}
    after = net.state_dict()
    assert all(v.dtype == before[k].dtype for k, v in after.items())
    assert any(not torch.equal(before[k], after[k]) for k in before if k.startswith("mlp."))
