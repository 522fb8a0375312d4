"""Training the damage verifier (training/damage_verifier.py): its arguments, its labels, its
perceptron, and the exported net on a tiny generated backbone."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pytest

from cdat.findings import Box, DamageInstance, PhotoAnalysis
from cdat.taxonomy import DamageType, Severity
from cdat.verified import VerifierRule
from training.claim_eval import INTACT_CLOSEUPS
from training.damage_verifier import (
    VerifierHyperparameters,
    fit_perceptron,
    get_args_parser,
    hyperparameters,
    labels,
    main,
)
from training.errors import TrainingError
from training.train_pass import OUTLINED, TrainPhoto, train_photos

# --- the script's arguments ----------------------------------------------------------------


@pytest.fixture
def checkpoint(tmp_path: Path) -> Path:
    """A file where the damage model's checkpoint is expected, and its served .onnx beside it
    (neither read: the checks come first)."""
    path = tmp_path / "damage.pt"
    path.write_bytes(b"not a checkpoint")
    path.with_suffix(".onnx").write_bytes(b"not a model")
    return path


def parsed(*argv: str) -> argparse.Namespace:
    return get_args_parser().parse_args(list(argv))


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--out", "{tmp}/v.pt"], r"--out .*v\.pt: name an \.onnx file"),
        (["--out", "{tmp}/v"], r"--out .*: name an \.onnx file"),
        (["--damage", "{tmp}/missing.pt"], r"--damage .*missing\.pt: no such checkpoint"),
        (["--backbone", "{tmp}/gone.onnx"], r"--backbone .*gone\.onnx: no such file"),
        (["--pass-conf", "0"], "--pass-conf 0.0: need 0 < conf < 1"),
        (["--pass-conf", "1"], "--pass-conf 1.0"),
        (["--pass-conf", "-0.1"], "--pass-conf -0.1"),
        (["--side", "33"], "--side 33: a multiple of 32"),
        (["--side", "0"], "--side 0"),
        (["--side", "16"], "--side 16"),
        (["--side", "672"], "--side 672"),
        (["--hidden", "0"], "--hidden"),
        (["--epochs", "0"], "--epochs"),
        (["--max-photos", "0"], "--max-photos"),
        (["--weight-decay", "-0.01"], "--weight-decay >= 0"),
        (["--intact-folds", "1"], "--intact-folds 1: at least 2"),
        (["--intact-fold", "4"], "--intact-fold 4: a fold from 0 to 3"),
    ],
)
def test_argument_errors_are_refused_before_any_work(
    tmp_path: Path, checkpoint: Path, argv: list[str], message: str
) -> None:
    # given otherwise valid arguments and one bad one (later options win)
    base = ["--out", f"{tmp_path}/v.onnx", "--damage", str(checkpoint),
            "--cache", f"{tmp_path}/pass.pkl"]  # fmt: skip
    args = parsed(*base, *(a.format(tmp=tmp_path) for a in argv))
    # when the hyperparameters are read, or the script is run, then it is one error
    with pytest.raises(TrainingError, match=message):
        hyperparameters(args)
    with pytest.raises(TrainingError, match=message):
        main(args)
    # and nothing was written
    assert sorted(p.name for p in tmp_path.iterdir()) == ["damage.onnx", "damage.pt"]


def test_valid_arguments_become_the_hyperparameters(tmp_path: Path, checkpoint: Path) -> None:
    args = parsed("--out", str(tmp_path / "v.onnx"), "--damage", str(checkpoint),
                  "--pass-conf", "0.05", "--side", "32", "--hidden", "16", "--epochs", "3",
                  "--weight-decay", "0", "--max-photos", "7", "--seed", "4")  # fmt: skip
    hp = hyperparameters(args)
    assert (hp.pass_conf, hp.side, hp.hidden, hp.epochs) == (0.05, 32, 16, 3)
    assert (hp.weight_decay, hp.max_photos, hp.seed) == (0.0, 7, 4)
    assert hp.taps == VerifierHyperparameters().taps


def test_the_defaults_are_valid_arguments(tmp_path: Path, checkpoint: Path) -> None:
    hp = hyperparameters(parsed("--out", str(tmp_path / "v.onnx"), "--damage", str(checkpoint)))
    assert hp == VerifierHyperparameters()
    assert 0 < hp.negative_iou < hp.positive_iou < 1


# --- labels --------------------------------------------------------------------------------

SIZE = 100


def square(x1: float, y1: float, x2: float, y2: float) -> tuple[tuple[float, float], ...]:
    return ((x1, y1), (x2, y1), (x2, y2), (x1, y2))


def detection(polygon: tuple[tuple[float, float], ...] = ()) -> DamageInstance:
    return DamageInstance(DamageType.DENT, Severity.MINOR, 0.05, Box(0, 0, 1, 1), polygon)


def scene() -> PhotoAnalysis:
    """A 100 x 100 photo with four detections against one labelled region, the square
    20..60 (41 x 41 pixels): the same square (IoU 1), one far away (0), its top 10 rows
    (IoU 410 / 1681 = 0.24, between the bars), and one with no outline at all."""
    damages = (
        detection(square(20, 20, 60, 60)),
        detection(square(70, 70, 90, 90)),
        detection(square(20, 20, 60, 29)),
        detection(),
    )
    return PhotoAnalysis("p", SIZE, SIZE, damages=damages)


REGION = [0.2, 0.2, 0.6, 0.2, 0.6, 0.6, 0.2, 0.6]
"""The labelled square, as a data set stores it: normalised polygon points."""


def test_a_detection_is_real_on_a_region_not_damage_away_from_all_and_left_out_between(
    tmp_path: Path,
) -> None:
    photo = TrainPhoto("damage-severity", tmp_path / "p.jpg", [("moderate-dent", REGION)])
    got = labels(photo, scene(), VerifierHyperparameters())
    assert got.tolist() == [1, 0, -1, 0]


def test_the_bars_are_the_hyperparameters(tmp_path: Path) -> None:
    photo = TrainPhoto("damage-severity", tmp_path / "p.jpg", [("moderate-dent", REGION)])
    loose = VerifierHyperparameters(positive_iou=0.2)
    assert labels(photo, scene(), loose).tolist() == [1, 0, 1, 0]
    strict = VerifierHyperparameters(negative_iou=0.25)
    assert labels(photo, scene(), strict).tolist() == [1, 0, 0, 0]


def test_a_part_named_source_labels_the_same_way(tmp_path: Path) -> None:
    photo = TrainPhoto("damaged-parts", tmp_path / "p.jpg", [("Door", REGION)])
    assert labels(photo, scene(), VerifierHyperparameters()).tolist() == [1, 0, -1, 0]


@pytest.mark.parametrize("source", ["car-parts", INTACT_CLOSEUPS])
def test_nothing_on_an_intact_car_or_its_close_up_is_damage(tmp_path: Path, source: str) -> None:
    # given an intact car (or a close-up of one) whose made-up label would overlap a detection
    photo = TrainPhoto(source, tmp_path / "p.jpg", [("moderate-dent", REGION)])
    # then every detection is a false one
    assert labels(photo, scene(), VerifierHyperparameters()).tolist() == [0, 0, 0, 0]


def test_intact_close_ups_are_an_option(tmp_path: Path, checkpoint: Path) -> None:
    plain = hyperparameters(parsed("--out", str(tmp_path / "v.onnx"), "--damage", str(checkpoint)))
    with_closeups = hyperparameters(
        parsed("--out", str(tmp_path / "v.onnx"), "--damage", str(checkpoint), "--intact-closeups")
    )
    assert (plain.intact_closeups, with_closeups.intact_closeups) == (False, True)


def test_intact_close_ups_are_written_where_the_pass_reads_them(
    tmp_path: Path, data_root: Path
) -> None:
    if not (data_root / "car-parts").is_dir():
        pytest.skip("car-parts not available")
    # given the real data sets, a sample of one photo per outlined source
    hp = VerifierHyperparameters(max_photos=1, intact_closeups=True)
    # when the train photos are gathered with intact close-ups
    photos = train_photos(hp, data_root, tmp_path / "closeups")
    # then each close-up is a file of its own in the folder, with no label
    closeups = [p for p in photos if p.source == INTACT_CLOSEUPS]
    assert len(closeups) > 300  # about two of each of the 349 intact train cars
    assert all(p.path.parent == tmp_path / "closeups" and p.path.is_file() for p in closeups)
    assert all(p.instances == [] for p in closeups)
    assert {p.source for p in photos} == {*OUTLINED, "car-parts", INTACT_CLOSEUPS}


def test_a_photo_without_regions_has_only_false_detections(tmp_path: Path) -> None:
    photo = TrainPhoto("damage-severity", tmp_path / "p.jpg", [])
    assert labels(photo, scene(), VerifierHyperparameters()).tolist() == [0, 0, 0, 0]


# --- fit_perceptron ------------------------------------------------------------------------


def clusters(n: int = 120, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Two clusters in 5 dimensions, unit spread, 4 apart, on a scale far from standard."""
    rng = np.random.default_rng(seed)
    real = rng.normal(2.0, 1.0, (n, 5))
    false = rng.normal(-2.0, 1.0, (n, 5))
    x = np.vstack([real, false]) * [1.0, 10.0, 100.0, 0.1, 1.0] + [0, 50, -300, 0, 7]
    return x, np.r_[np.ones(n), np.zeros(n)]


def answers(fitted: tuple[object, np.ndarray, np.ndarray], x: np.ndarray) -> np.ndarray:
    import torch

    mlp, mean, scale = fitted
    inputs = torch.from_numpy(((x - mean) / scale).astype(np.float32))
    with torch.no_grad():
        return torch.sigmoid(mlp(inputs).squeeze(1)).numpy()  # type: ignore[operator]


def test_the_perceptron_separates_two_clusters() -> None:
    # given two separable clusters
    x, y = clusters()
    hp = VerifierHyperparameters(hidden=8, epochs=40, lr=1e-2, weight_decay=0.0)
    # when it is fitted
    fitted = fit_perceptron(x, y, hp)
    # then it standardises with the data's own mean and spread
    _, mean, scale = fitted
    assert mean == pytest.approx(x.mean(0)) and scale == pytest.approx(x.std(0) + 1e-6)
    # and it tells new points of the two clusters apart, confidently
    new_x, new_y = clusters(50, seed=1)
    p = answers(fitted, new_x)
    assert ((p >= 0.5) == (new_y == 1)).all()
    assert p[new_y == 1].mean() > 0.9 and p[new_y == 0].mean() < 0.1


def test_the_perceptron_is_seeded_and_answers_without_dropout() -> None:
    x, y = clusters(40)
    hp = VerifierHyperparameters(hidden=4, epochs=2, dropout=0.5)
    a, b = fit_perceptron(x, y, hp), fit_perceptron(x, y, hp)
    # then two fits with the same seed agree, and an answer is the same twice (eval mode)
    assert np.array_equal(answers(a, x), answers(b, x))
    assert np.array_equal(answers(a, x), answers(a, x))
    other = fit_perceptron(x, y, VerifierHyperparameters(hidden=4, epochs=2, dropout=0.5, seed=1))
    assert not np.array_equal(answers(a, x), answers(other, x))


# --- the exported net ----------------------------------------------------------------------

TAPS = (4, 6)
SIDE = 32
CLASSES = ("dent", "scratch")


@pytest.mark.slow
def test_the_exported_verifier_serves_what_the_net_answers(tmp_path: Path) -> None:
    import cv2
    import torch

    from inference.crops import damage_crop
    from inference.damage_verifier import DamageVerifier, extra_names, verifier_extras
    from tests.training.test_stage_loops import tiny_model
    from training.damage_verifier import _classes, verifier_net
    from training.gate_net import load_gate_net
    from training.stage_head import export_head

    # given a tiny generated backbone (.pt and its .onnx) and a perceptron fitted on its
    # pooled features + extras
    weights = tiny_model(tmp_path)
    assert _classes(weights) == ("0", "1")
    body = load_gate_net(weights, TAPS)
    with torch.no_grad():
        width = body.features(torch.zeros(1, 3, SIDE, SIDE)).shape[1]
    names = extra_names(CLASSES)
    rng = np.random.default_rng(0)
    x = rng.normal(0.0, 1.0, (64, width + len(names)))
    y = (x[:, 0] > 0).astype(float)
    fitted = fit_perceptron(x, y, VerifierHyperparameters(hidden=8, epochs=1))
    # when the verifier net is made and exported as training does
    net = verifier_net(weights, TAPS, fitted)
    out = tmp_path / "damage-verifier.onnx"
    metadata = {"classes": ",".join(CLASSES), "side": str(SIDE)}
    backbone = weights.with_suffix(".onnx")
    assert export_head(net, out, backbone, metadata, "damage", len(names)) < 1e-3
    # then the served verifier loads it on the backbone, and answers on a photo as the net does
    verifier = DamageVerifier.load(out, VerifierRule(0.3, 0.7), backbone=backbone)
    assert verifier.side == SIDE and verifier.classes == CLASSES
    image = cv2.resize(rng.integers(0, 256, (12, 16, 3), dtype=np.uint8), (160, 120),
                       interpolation=cv2.INTER_NEAREST)  # fmt: skip
    damages = [
        DamageInstance(DamageType.DENT, Severity.MINOR, 0.05, Box(10, 10, 40, 50)),
        DamageInstance(DamageType.SCRATCH, Severity.MINOR, 0.6, Box(90, 60, 150, 110)),
    ]
    served = verifier.probabilities(image, (1.0, 1.0), damages, [], 160, 120)
    crops = torch.from_numpy(np.stack([damage_crop(image, d.box, SIDE) for d in damages]))
    extras = torch.tensor([verifier_extras(d, [], 160, 120, CLASSES) for d in damages])
    with torch.no_grad():
        direct = net(crops, extras).numpy()
        mlp, mean, scale = fitted
        joined = torch.cat([body.features(crops), extras], dim=1).numpy()
        by_hand = (
            torch.sigmoid(mlp(torch.from_numpy(((joined - mean) / scale).astype(np.float32))))
            .squeeze(1)
            .numpy()
        )
    assert served.shape == (2,)
    assert served == pytest.approx(direct, abs=1e-4)
    assert direct == pytest.approx(by_hand, abs=1e-5)
    assert ((served > 0) & (served < 1)).all()


def test_a_cache_that_is_not_a_train_pass_is_one_clear_error(tmp_path: Path) -> None:
    from training.train_pass import train_pass

    # given a --cache file that is not a pickled train pass
    cache = tmp_path / "pass.pkl"
    cache.write_bytes(b"not a pickle")
    # when the train pass would read it, then the error names the file, before any analysis
    with pytest.raises(TrainingError, match=r"pass\.pkl: not a train pass"):
        train_pass([], 0.02, cache)
    assert cache.read_bytes() == b"not a pickle"


@pytest.mark.parametrize("seed", [0, 1])
def test_any_seed_trains_on_the_converted_train_photos_only(data_root: Path, seed: int) -> None:
    if not all((data_root / s).is_dir() for s in ("car-parts", "damaged-parts")):
        pytest.skip("car-parts and damaged-parts not available")
    from training.backgrounds import split_photos
    from training.claim_eval import DATASETS

    # given the val and test photos of the re-split every evaluation reads (seed 0)
    held = {
        str(path)
        for source in ("car-parts", "damaged-parts")
        for split in ("val", "test")
        for path in split_photos(DATASETS / f"{source}.yaml", split, 0, data_root)
    }
    # when the pass's photos are gathered with another sample seed, every photo kept
    photos = train_photos(VerifierHyperparameters(max_photos=100_000, seed=seed), data_root)
    # then none of them is a val or test photo, and the intact cars are all 349 train cars
    assert held and not {str(p.path) for p in photos} & held
    assert sum(p.source == "car-parts" for p in photos) == 349


def test_an_epoch_checkpoint_is_read_as_its_stripped_copy(tmp_path: Path) -> None:
    import torch

    from tests.training.test_vehicle_gate import _tiny_checkpoint
    from training.damage_verifier import _classes
    from training.gate_net import load_gate_net

    # given a finished run's checkpoint and what --save-period keeps of the same weights:
    # the network under `ema`, `model` empty, the optimizer's state beside it
    finished = _tiny_checkpoint(tmp_path, ("dent", "scratch"))
    kept = torch.load(finished, map_location="cpu", weights_only=False)
    epoch = tmp_path / "epoch1.pt"
    torch.save({**kept, "model": None, "ema": kept["model"], "optimizer": {}}, epoch)
    # when the verifier's training reads either, then it finds the same classes and layers
    assert _classes(epoch) == _classes(finished) == ("dent", "scratch")
    photo = torch.rand(1, 3, SIDE, SIDE)
    with torch.no_grad():
        same = load_gate_net(epoch, TAPS).features(photo)
        assert torch.equal(same, load_gate_net(finished, TAPS).features(photo))
