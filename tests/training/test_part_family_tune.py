"""The part-family stage fine-tuned end to end (training/part_family_tune.py): its crops and
boxes, what learns and what stays, the script's checks, and the whole loop on a tiny
generated part model, served whole."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pytest

from cdat.findings import Box
from cdat.part_family import FamilyRule
from cdat.taxonomy import PartFamily
from tests.training.test_stage_loops import BLUE, LEFT, RED, RIGHT, photo, regions_of, tiny_model
from training.errors import TrainingError
from training.part_family import Region
from training.part_family_tune import (
    FamilyTuner,
    TuneHyperparameters,
    crops_of,
    get_args_parser,
    jittered,
    main,
    train,
)


@pytest.mark.parametrize("seed", range(5))
def test_a_jittered_box_stays_in_the_photo_near_the_box_it_came_from(seed: int) -> None:
    rng = np.random.default_rng(seed)
    for box in (Box(0.4, 0.4, 0.6, 0.7), Box(0.0, 0.0, 0.05, 0.9), Box(0.9, 0.95, 1.0, 1.0)):
        for _ in range(50):
            moved = jittered(box, rng, 0.25)
            assert 0.0 <= moved.x1 < moved.x2 <= 1.0 and 0.0 <= moved.y1 < moved.y2 <= 1.0
            w, h = box.x2 - box.x1, box.y2 - box.y1
            # its centre moves by at most a quarter of the side, clipping aside
            if moved.x1 > 0.0 and moved.x2 < 1.0:
                assert abs((moved.x1 + moved.x2) - (box.x1 + box.x2)) / 2 <= 0.25 * w + 1e-9
            if moved.y1 > 0.0 and moved.y2 < 1.0:
                assert abs((moved.y1 + moved.y2) - (box.y1 + box.y2)) / 2 <= 0.25 * h + 1e-9


def test_no_jitter_leaves_the_box_as_it_is() -> None:
    box = Box(0.2, 0.3, 0.5, 0.6)
    got = jittered(box, np.random.default_rng(0), 0.0)
    assert np.allclose([got.x1, got.y1, got.x2, got.y2], [0.2, 0.3, 0.5, 0.6])


def test_crops_are_the_served_crops_as_bytes(tmp_path: Path) -> None:
    from inference.crops import damage_crop

    # given a photo with a red region
    path = photo(tmp_path / "a.png", 0, {RED: LEFT})
    image = cv2.imread(str(path))
    assert image is not None
    h, w = image.shape[:2]
    region = Region(path, Box(LEFT.x1 / w, LEFT.y1 / h, LEFT.x2 / w, LEFT.y2 / h),
                    PartFamily.DOOR, "car-parts-damage")  # fmt: skip
    # when it is cropped for training
    crops = crops_of([region, region], 32)
    # then each crop is the served crop of that box, exactly, as 8-bit values
    served = damage_crop(image, LEFT, 32)
    assert crops.shape == (2, 3, 32, 32) and crops.dtype == np.uint8
    assert np.array_equal(crops[0].astype(np.float32) / 255.0, served)


def doors_and_fenders(tmp_path: Path) -> tuple[Path, np.ndarray, np.ndarray]:
    """A tiny part model, and its train crops of red doors (0) and blue fenders (1)."""
    items = regions_of(tmp_path / "train", 3, 0)
    labels = np.array([0 if r.family is PartFamily.DOOR else 1 for r in items])
    return tiny_model(tmp_path), crops_of(items, 32), labels


def test_layers_before_the_first_trainable_one_keep_the_part_models_weights(
    tmp_path: Path,
) -> None:
    import torch

    # given a tiny part model, and crops of red doors and blue fenders
    weights, crops, labels = doors_and_fenders(tmp_path)
    hp = TuneHyperparameters(side=32, trainable_from=6, epochs=2, batch=4, lr=1e-2, head_lr=1e-1)
    net = FamilyTuner.build(weights, hp, 2, crops)
    before = {k: v.clone() for k, v in net.state_dict().items()}
    epochs: list[int] = []
    # when it is fine-tuned
    train(net, crops, labels, hp, epochs.append)
    after = net.state_dict()
    # then layers 0-5 are as they were, later layers and the linear layer have learnt,
    # and batch norm kept the part model's statistics
    layer = {k: int(k.split(".")[2]) for k in before if k.startswith("body.layers.")}
    frozen = [k for k, n in layer.items() if n < 6]
    learnt = [k for k, n in layer.items() if n >= 6 and k.endswith(".weight")]
    assert frozen and learnt and epochs == [0, 1]
    assert all(torch.equal(before[k], after[k]) for k in frozen)
    assert any(not torch.equal(before[k], after[k]) for k in learnt)
    assert not torch.equal(before["linear.weight"], after["linear.weight"])
    stats = [k for k in before if k.endswith(("running_mean", "running_var"))]
    assert stats and all(torch.equal(before[k], after[k]) for k in stats)


def tune(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, *more: str) -> Path:
    """The script's `main` on a tiny part model and labelled regions of both sources, red
    crops doors and blue crops fenders; the stage it wrote."""
    from training import part_family_tune

    weights = tiny_model(tmp_path)
    splits = {"train": regions_of(tmp_path / "train", 6, 0),
              "val": regions_of(tmp_path / "val", 2, 100)}  # fmt: skip
    monkeypatch.setattr(part_family_tune, "regions", lambda split, seed, root, more: splits[split])
    out = tmp_path / "family" / "tuned.onnx"
    out.parent.mkdir()
    args = get_args_parser().parse_args(
        ["--out", str(out), "--parts", str(weights), "--side", "32", "--epochs", "6",
         "--batch", "8", "--lr", "0.003", "--head-lr", "0.05", "--threads", "1", *more]
    )  # fmt: skip
    assert main(args) == 0
    return out


def test_the_tuned_stage_learns_the_regions_and_is_served_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from inference.part_family import FamilyStage

    # given a tiny part model and labelled regions; when the script runs
    out = tune(tmp_path, monkeypatch)
    # then it writes the stage and a report of the epoch kept, chosen on val
    report = json.loads(out.with_suffix(".report.json").read_text())
    assert report["families"] == ["door", "fender"]
    assert report["train_regions"] == {"car-parts-damage": 12, "damaged-parts": 12}
    assert [h["epoch"] for h in report["history"]] == [1, 2, 3, 4, 5, 6]
    means = [np.mean([s["accuracy"] for s in h["val"].values()]) for h in report["history"]]
    kept = np.mean([s["accuracy"] for s in report["val"].values()])
    assert kept == max(means) and report["history"][report["epoch"] - 1]["val"] == report["val"]
    assert report["onnx_parity_max_abs"] < 1e-3
    # and the served stage loads it whole, no part model needed, and tells red from blue
    stage = FamilyStage.load(out, FamilyRule(0.5))
    assert stage.side == 32 and stage.families == (PartFamily.DOOR, PartFamily.FENDER)
    image = cv2.imread(str(photo(tmp_path / "new.png", 999, {RED: LEFT, BLUE: RIGHT})))
    assert image is not None
    p = stage.probabilities(image, [LEFT, RIGHT])
    assert p.shape == (2, 2) and np.allclose(p.sum(1), 1.0, atol=1e-5)
    assert p[0].argmax() == 0 and p[1].argmax() == 1
    assert kept == 1.0


def test_detections_over_labelled_regions_are_examples_too(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from training import part_family_tune

    # given the damage model's boxes over labelled train regions (as detection_regions names
    # them: wider than the outlines, of the region's family)
    asked: list[tuple[Path, float]] = []

    def detection_regions(seed: int, root: Path | None, cache: Path, iou: float) -> list[Region]:
        asked.append((cache, iou))
        found = regions_of(tmp_path / "detected", 2, 50)
        b = [(r, r.box) for r in found]
        return [replace(r, box=Box(max(0.0, x.x1 - 0.05), x.y1, min(1.0, x.x2 + 0.05), x.y2))
                for r, x in b]  # fmt: skip

    monkeypatch.setattr(part_family_tune, "detection_regions", detection_regions)
    # when the script runs with and without --detections
    (tmp_path / "plain").mkdir()
    (tmp_path / "detected-run").mkdir()
    plain = tune(tmp_path / "plain", monkeypatch)
    cache = tmp_path / "pass.pkl"
    detected = tune(tmp_path / "detected-run", monkeypatch, "--detections", "--cache", str(cache))
    # then only the second learns from them, from the pass named, at IoU 0.3
    assert asked == [(cache, 0.3)]
    plain_report = json.loads(plain.with_suffix(".report.json").read_text())
    report = json.loads(detected.with_suffix(".report.json").read_text())
    assert plain_report["train_detections"] == {}
    assert report["train_detections"] == {"car-parts-damage": 4, "damaged-parts": 4}
    assert report["hyperparameters"]["detections"] is True
    assert report["train_regions"] == plain_report["train_regions"]


DAMAGE_CONFIG = Path(__file__).parents[2] / "datasets" / "damage.yaml"
"""A data set config that names no part families."""


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--out", "{tmp}/stage.pt"], r"--out .*\.onnx"),
        (["--out", "{tmp}/stage.onnx", "--parts", "{tmp}/missing.pt"], r"--parts .*missing\.pt"),
        (["--out", "{tmp}/stage.onnx", "--side", "33"], "--side 33"),
        (["--out", "{tmp}/stage.onnx", "--epochs", "0"], "--epochs 0"),
        (["--out", "{tmp}/stage.onnx", "--batch", "0"], "--batch 0"),
        (["--out", "{tmp}/stage.onnx", "--lr", "0"], "--lr 0"),
        (["--out", "{tmp}/stage.onnx", "--head-lr", "-1"], "--head-lr -1"),
        (["--out", "{tmp}/stage.onnx", "--jitter", "1"], "--jitter 1"),
        (["--out", "{tmp}/stage.onnx", "--trainable-from", "-1"], "--trainable-from -1"),
        (["--out", "{tmp}/stage.onnx", "--max-regions", "0"], "--max-regions 0"),
        (["--out", "{tmp}/stage.onnx", "--detections", "--cache", "{tmp}"], "--cache .*folder"),
        (["--out", "{tmp}/folder.onnx"], "is a folder"),
        (["--out", "{tmp}/stage.onnx", "--with-data", "{tmp}/none.yaml"], r"--with-data .*none"),
        (["--out", "{tmp}/stage.onnx", "--with-data", str(DAMAGE_CONFIG)], "part_families"),
    ],
)
def test_argument_errors_are_refused_before_any_work(
    tmp_path: Path, argv: list[str], message: str
) -> None:
    # given a part model's checkpoint (not read: the checks come first) and a folder where
    # the report of `folder.onnx` would go
    (tmp_path / "parts.pt").write_bytes(b"not a checkpoint")
    (tmp_path / "folder.report.json").mkdir()
    args = [a.format(tmp=tmp_path) for a in argv]
    if "--parts" not in args:
        args += ["--parts", str(tmp_path / "parts.pt")]
    # when the script is run with a bad argument
    with pytest.raises(TrainingError, match=message):
        main(get_args_parser().parse_args(args))
    # then nothing was written
    assert sorted(p.name for p in tmp_path.iterdir()) == ["folder.report.json", "parts.pt"]


def test_a_cpu_bf16_run_computes_its_layers_in_bf16_and_keeps_fp32_weights(
    tmp_path: Path,
) -> None:
    import torch

    # given a tiny part model, crops of red doors and blue fenders, and bf16 asked for
    weights, crops, labels = doors_and_fenders(tmp_path)
    hp = TuneHyperparameters(side=32, trainable_from=6, epochs=1, batch=4, lr=1e-2, head_lr=1e-1,
                             cpu_bf16=True)  # fmt: skip
    net = FamilyTuner.build(weights, hp, 2, crops)
    before = net.linear.weight.detach().clone()
    conv = next(m for m in net.body.modules() if isinstance(m, torch.nn.Conv2d))
    computed: list[torch.dtype] = []
    conv.register_forward_hook(lambda module, given, out: computed.append(out.dtype))
    # when it is fine-tuned
    train(net, crops, labels, hp, lambda epoch: None)
    # then its layers ran in bf16, and what it learnt is kept in FP32
    assert computed and set(computed) == {torch.bfloat16}
    assert all(p.dtype == torch.float32 for p in net.parameters())
    assert not torch.equal(before, net.linear.weight)


@pytest.mark.parametrize("script", ["training.part_family_tune", "training.verifier_tune"])
def test_cpu_bf16_on_a_plain_cpu_is_refused_before_any_work(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, script: str
) -> None:
    import importlib

    from inference.cpu_features import CpuFeatures
    from training.errors import TrainingError

    module = importlib.import_module(script)
    # given a CPU without native bf16
    plain = CpuFeatures("Old Xeon", frozenset({"avx2"}), 2)
    monkeypatch.setattr(module, "read_cpu_features", lambda: plain)
    out = tmp_path / "stage.onnx"
    argv = ["--out", str(out), "--cpu-bf16"]
    if script == "training.verifier_tune":
        argv += ["--damage", str(tiny_model(tmp_path)), "--cache", str(tmp_path / "p.pkl")]
    else:
        argv += ["--parts", str(tiny_model(tmp_path))]
    # when a run asks for bf16, then it is refused, naming the CPU, and nothing is written
    with pytest.raises(TrainingError, match=r"Old Xeon x2 .* no native bf16"):
        module.hyperparameters(module.get_args_parser().parse_args(argv))
    assert not out.exists()
