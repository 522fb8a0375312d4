"""Training the part-family stage's head (training/part_family.py): the fit, the folded
export weights and the script's argument checks, on synthetic features."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from training.errors import TrainingError
from training.part_family import get_args_parser, main
from training.softmax_head import SoftmaxHead, fit_head


def clusters(
    n: int, seed: int, sizes: tuple[int, int] | None = None, apart: float = 2.0
) -> tuple[np.ndarray, ...]:
    """Two Gaussian clusters in 6 dimensions, their centres `apart` standard deviations
    from the origin along the first two; features on very different scales (as pooled
    feature maps are)."""
    rng = np.random.default_rng(seed)
    a, b = sizes or (n, n)
    centre = np.array([apart, -apart, 0, 0, 0, 0])
    x = np.concatenate([rng.normal(centre, 1.0, (a, 6)), rng.normal(-centre, 1.0, (b, 6))])
    x = x * np.array([100.0, 0.01, 1, 1, 1, 1]) + 5.0
    y = np.concatenate([np.zeros(a, np.int64), np.ones(b, np.int64)])
    return x, y


def test_the_head_separates_two_clusters() -> None:
    # given features of two well separated clusters
    x, y = clusters(200, seed=0)
    # when the head is fitted
    head = fit_head(x, y, classes=2, l2=1e-3)
    # then it classifies fresh samples of the same clusters almost without error
    fresh, truth = clusters(300, seed=1)
    p = head.probabilities(fresh)
    assert p.shape == (600, 2) and np.allclose(p.sum(1), 1.0)
    assert float((p.argmax(1) == truth).mean()) > 0.97


APART = 0.7
"""Close enough that errors are a trade-off: unweighted, the rare class is found about half
the time."""


def test_the_head_is_balanced_across_classes() -> None:
    # given the second cluster nine times rarer than the first, and overlapping it
    x, y = clusters(0, seed=2, sizes=(450, 50), apart=APART)
    head = fit_head(x, y, classes=2, l2=1e-3)
    fresh, truth = clusters(0, seed=3, sizes=(450, 450), apart=APART)
    predicted = head.probabilities(fresh).argmax(1)
    # then the rare class is found about as often as the common one
    recall = [float((predicted[truth == k] == k).mean()) for k in (0, 1)]
    assert min(recall) > 0.7 and abs(recall[0] - recall[1]) < 0.15


def test_a_stronger_penalty_gives_less_confident_answers() -> None:
    x, y = clusters(100, seed=4)
    loose = fit_head(x, y, classes=2, l2=1e-3).probabilities(x).max(1).mean()
    strict = fit_head(x, y, classes=2, l2=1.0).probabilities(x).max(1).mean()
    assert float(strict) < float(loose)


def test_the_folded_weights_give_the_same_probabilities_on_raw_features() -> None:
    # given a head with standardisation, 5 features and 3 classes
    rng = np.random.default_rng(5)
    head = SoftmaxHead(rng.normal(0, 10, 5), rng.uniform(0.1, 20, 5), rng.normal(0, 1, (5, 3)),
                       rng.normal(0, 1, 3))  # fmt: skip
    features = rng.normal(0, 30, (40, 5))
    # when the standardisation is folded into one linear layer, as the export does
    weights, bias = head.folded()
    z = features @ weights + bias
    folded = np.exp(z - z.max(1, keepdims=True))
    folded /= folded.sum(1, keepdims=True)
    # then the layer and a softmax give the head's own probabilities
    assert weights.shape == (5, 3) and bias.shape == (3,)
    assert np.allclose(folded, head.probabilities(features), atol=1e-10)


def test_a_fitted_head_folds_as_well() -> None:
    x, y = clusters(50, seed=6)
    head = fit_head(x, y, classes=2, l2=1e-2)
    weights, bias = head.folded()
    z = x @ weights + bias
    p = np.exp(z - z.max(1, keepdims=True))
    assert np.allclose(p / p.sum(1, keepdims=True), head.probabilities(x), atol=1e-9)


# --- the script's arguments ----------------------------------------------------------------


@pytest.fixture
def checkpoint(tmp_path: Path) -> Path:
    """A file where the part model's checkpoint is expected, and its served .onnx beside it
    (neither read: the checks come first)."""
    path = tmp_path / "parts.pt"
    path.write_bytes(b"not a checkpoint")
    path.with_suffix(".onnx").write_bytes(b"not a model")
    return path


def run(*argv: str) -> None:
    main(get_args_parser().parse_args(list(argv)))
    raise AssertionError("main returned")  # pragma: no cover


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--out", "{tmp}/stage.pt", "--parts", "{parts}"], r"--out .*\.onnx"),
        (["--out", "{tmp}/stage.onnx", "--parts", "{tmp}/missing.pt"], r"--parts .*missing\.pt"),
        (
            ["--out", "{tmp}/stage.onnx", "--parts", "{parts}", "--backbone", "{tmp}/gone.onnx"],
            r"--backbone .*gone\.onnx: no such file",
        ),
        (["--out", "{tmp}/stage.onnx", "--parts", "{parts}", "--side", "33"], "--side 33"),
        (["--out", "{tmp}/stage.onnx", "--parts", "{parts}", "--side", "0"], "--side 0"),
        (["--out", "{tmp}/stage.onnx", "--parts", "{parts}", "--side", "672"], "--side 672"),
        (["--out", "{tmp}/stage.onnx", "--parts", "{parts}", "--l2", "0.1", "0"], "--l2"),
        (
            ["--out", "{tmp}/stage.onnx", "--parts", "{parts}", "--detections", "--cache", "{tmp}"],
            "--cache .*folder",
        ),
        (["--out", "{tmp}/folder.onnx", "--parts", "{parts}"], "is a folder"),
    ],
)
def test_argument_errors_are_refused_before_any_work(
    tmp_path: Path, checkpoint: Path, argv: list[str], message: str
) -> None:
    # given a folder where the report of `folder.onnx` would go
    (tmp_path / "folder.report.json").mkdir()
    args = [a.format(tmp=tmp_path, parts=checkpoint) for a in argv]
    # when the script is run with a bad argument
    with pytest.raises(TrainingError, match=message):
        run(*args)
    # then nothing was written
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "folder.report.json",
        "parts.onnx",
        "parts.pt",
    ]


def test_the_defaults_are_valid_arguments(tmp_path: Path) -> None:
    args = get_args_parser().parse_args(["--out", str(tmp_path / "stage.onnx")])
    assert args.side % 32 == 0 and 32 <= args.side <= 640
    assert all(v > 0 for v in args.l2) and args.taps and not args.no_mirror


def test_detections_are_named_by_the_labelled_region_they_overlap(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # imported before train_pass is patched below: it binds train_pass by name on import,
    # and would keep the fake for every later test (the verifier's loop among them)
    import training.damage_verifier  # noqa: F401
    from cdat.findings import Box, DamageInstance, PhotoAnalysis
    from cdat.taxonomy import DamageType, PartFamily, Severity
    from training import train_pass as pass_module
    from training.part_family import detection_regions
    from training.train_pass import TrainPhoto

    def dent(x1: float, y1: float, x2: float, y2: float) -> DamageInstance:
        polygon = ((x1, y1), (x2, y1), (x2, y2), (x1, y2))
        return DamageInstance(DamageType.DENT, Severity.MINOR, 0.1, Box(x1, y1, x2, y2), polygon)

    # given a close-up (200 x 100) whose labelled bumper is the left half, and the damage
    # model's detections on it: one over the bumper (IoU 0.8), one a third over it (IoU 0.18)
    # and one on plain panel; and a damage-severity photo, which names no part
    bumper = [0.0, 0.0, 0.5, 0.0, 0.5, 1.0, 0.0, 1.0]
    closeup = TrainPhoto("car-parts-damage", tmp_path / "a.jpg", [("Bumper", bumper)])
    typed = TrainPhoto("damage-severity", tmp_path / "b.jpg", [("minor-dent", bumper)])
    found = (dent(0, 0, 80, 100), dent(70, 0, 170, 100), dent(175, 10, 195, 90))
    analyses = {
        str(closeup.path): PhotoAnalysis("a", 200, 100, damages=found),
        str(typed.path): PhotoAnalysis("b", 200, 100, damages=found),
    }
    monkeypatch.setattr(pass_module, "train_photos", lambda hp, root: [closeup, typed])
    passes: list[tuple[Path, list[str]]] = []

    def train_pass(photos: list[TrainPhoto], conf: float, cache: Path) -> dict:
        passes.append((cache, [p.source for p in photos]))
        return analyses

    monkeypatch.setattr(pass_module, "train_pass", train_pass)
    # when the detections become examples
    regions = detection_regions(0, None, tmp_path / "pass.pkl", 0.3)
    # then only the one over the bumper is, named a bumper, its box normalised to the photo
    # (the pass is asked for every train photo: the verifier shares its cache)
    assert passes == [(tmp_path / "pass.pkl", ["car-parts-damage", "damage-severity"])]
    assert [(r.image, r.family, r.source) for r in regions] == [
        (closeup.path, PartFamily.BUMPER, "car-parts-damage")
    ]
    assert regions[0].box == Box(0.0, 0.0, 0.4, 1.0)


def test_crops_are_pooled_in_order_a_batch_at_a_time_then_mirrored(tmp_path: Path) -> None:
    import cv2
    import torch

    from cdat.findings import Box
    from cdat.taxonomy import PartFamily
    from training.part_family import Region, extract

    class LeftMinusRight:
        """A stand-in for the pooled layers: a crop's left half's mean less its right's."""

        def features(self, x: torch.Tensor) -> torch.Tensor:
            half = x.shape[-1] // 2
            return (x[..., :half].mean((1, 2, 3)) - x[..., half:].mean((1, 2, 3)))[:, None]

    # given a photo dark on its left and bright on its right, and 40 regions (more than one
    # batch of 32) sliding from left to right
    image = np.zeros((100, 200, 3), np.uint8)
    image[:, 100:] = 255
    path = tmp_path / "p.png"
    cv2.imwrite(str(path), image)
    items = [Region(path, Box(k / 50, 0.2, k / 50 + 0.2, 0.4), PartFamily.DOOR, "x")
             for k in range(40)]  # fmt: skip
    # when their crops are pooled, mirrored too
    out = extract(LeftMinusRight(), items, 32, mirrored=True)
    # then every crop comes first, in order, then each mirrored in the same order
    assert out.shape == (80, 1)
    single = [extract(LeftMinusRight(), [item], 32, mirrored=False)[0, 0] for item in items]
    assert np.allclose(out[:40, 0], single)
    assert np.allclose(out[40:, 0], -out[:40, 0])
    assert np.abs(out[:40, 0]).max() > 0.1  # crops over the dark-bright edge: not all zero
