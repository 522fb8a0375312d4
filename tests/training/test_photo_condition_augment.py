"""Training under phone conditions (`--photo-conditions`): a share of the training images is
shown compressed, dark, noisy or colour-cast, their labels where they were."""

from __future__ import annotations

import json
import random
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from training.cli import main as cli
from training.photo_conditions import PhotoConditionAugment, random_condition_image

from .conftest import coco_config, make_coco, write_yaml


def _labels(seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    image = np.clip(rng.normal(128, 40, (48, 64, 3)), 0, 255).astype(np.uint8)
    return {"img": image, "cls": np.array([[1.0]]), "instances": "kept as given"}


def test_every_image_shown_under_a_condition_keeps_its_size_and_labels() -> None:
    # given a training image and its labels, and the step at share 1
    labels = _labels()
    original = labels["img"].copy()
    random.seed(3)
    # when the step runs
    out = PhotoConditionAugment(1.0)(labels)
    # then the image changed, at its size and type, and nothing else did
    assert out["img"].shape == original.shape and out["img"].dtype == np.uint8
    assert np.abs(out["img"].astype(int) - original.astype(int)).mean() > 0.5
    assert out["cls"].tolist() == [[1.0]] and out["instances"] == "kept as given"


def test_the_share_is_honoured_and_draws_repeat_under_the_same_seed() -> None:
    # given share 0, then no image is touched
    labels = _labels()
    assert PhotoConditionAugment(0.0)(dict(labels))["img"] is labels["img"]

    # given share 0.5 over 200 images, then about half are changed
    # (a fresh labels dict each time: an untouched one keeps its very array)
    random.seed(5)
    step = PhotoConditionAugment(0.5)
    touched = 0
    for i in range(200):
        labels = _labels(i)
        before = labels["img"]
        touched += step(labels)["img"] is not before
    assert 70 <= touched <= 130
    # and the same seed draws the same conditions
    random.seed(9)
    first = PhotoConditionAugment(1.0)(_labels())["img"]
    random.seed(9)
    assert np.array_equal(PhotoConditionAugment(1.0)(_labels())["img"], first)
    # a share outside [0, 1] is refused
    with pytest.raises(ValueError, match="between 0 and 1"):
        PhotoConditionAugment(1.5)


def test_an_image_condition_is_the_bytes_condition_decoded() -> None:
    import cv2

    from training.photo_conditions import random_condition

    # given an image and its PNG bytes (lossless, so both start from the same pixels)
    image = _labels(4)["img"]
    data = cv2.imencode(".png", image)[1].tobytes()
    # when both forms are conditioned by generators in the same state
    as_image = random_condition_image(image, np.random.default_rng(11))
    as_bytes = random_condition(data, np.random.default_rng(11))
    # then they are the same photo
    decoded = cv2.imdecode(np.frombuffer(as_bytes, np.uint8), cv2.IMREAD_COLOR)
    assert np.array_equal(as_image, decoded)


def test_ultralytics_pipelines_get_the_step_only_when_asked() -> None:
    pytest.importorskip("ultralytics")
    from training.ultra import load_ultralytics

    def pipeline_steps() -> list[str]:
        import ultralytics.data.dataset as dataset
        from ultralytics.cfg import get_cfg

        stand_in = SimpleNamespace(data={}, cache=None, use_keypoints=False)
        built = dataset.v8_transforms(stand_in, 64, get_cfg())
        return [type(step).__name__ for step in built.transforms]

    try:
        # given Ultralytics loaded with a share of photo conditions
        load_ultralytics(1, photo_conditions=0.25)
        # then a training pipeline shows images under them, after its colour-free steps
        steps = pipeline_steps()
        at = steps.index("PhotoConditionAugment")
        assert steps[at - 1] == "Albumentations" and steps[at + 1] == "RandomHSV"
        assert steps.count("PhotoConditionAugment") == 1
        # and loaded again (a second run in the same process) the step is not doubled
        load_ultralytics(1, photo_conditions=0.25)
        assert pipeline_steps().count("PhotoConditionAugment") == 1
    finally:
        # given it loaded without, then pipelines are Ultralytics' own again
        load_ultralytics(1)
    assert "PhotoConditionAugment" not in pipeline_steps()


@pytest.mark.slow
def test_a_run_trains_under_photo_conditions_and_records_the_share(tmp_path: Path) -> None:
    # given tiny generated data, when one epoch is trained with every image conditioned
    root = make_coco(tmp_path / "coco", {"train": 4, "val": 2, "test": 1})
    config = write_yaml(tmp_path / "d.yaml", coco_config(root))
    try:
        code = cli(["train", "--config", str(config), "--imgsz", "64", "--epochs", "1",
                    "--batch", "4", "--project", str(tmp_path / "runs"), "--name", "p",
                    "--data-dir", str(tmp_path / "data"), "--threads", "2",
                    "--photo-conditions", "1"])  # fmt: skip
    finally:
        from training.ultra import load_ultralytics

        load_ultralytics(1)
    # then it trains to weights and records the share it was trained with
    run = tmp_path / "runs" / "p"
    assert code == 0 and (run / "weights" / "last.pt").is_file()
    recorded = json.loads((run / "cdat_run.json").read_text())["hyperparameters"]
    assert recorded["photo_conditions"] == 1.0


def test_a_resumed_run_keeps_the_share_it_started_with(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import training.ultra

    # given a run started with --photo-conditions 0.4, interrupted after its last.pt
    run = tmp_path / "runs" / "r"
    (run / "weights").mkdir(parents=True)
    (run / "weights" / "last.pt").write_bytes(b"an interrupted run's checkpoint")
    record = {"hyperparameters": {"photo_conditions": 0.4, "device": "cpu"}}
    (run / "cdat_run.json").write_text(json.dumps(record))
    root = make_coco(tmp_path / "coco", {"train": 2, "val": 1, "test": 1})
    config = write_yaml(tmp_path / "d.yaml", coco_config(root))
    asked: list[float] = []

    def loaded(threads: int | None = None, photo_conditions: float = 0.0) -> None:
        asked.append(photo_conditions)
        raise SystemExit(3)  # stop before Ultralytics reads the stand-in checkpoint

    monkeypatch.setattr(training.ultra, "load_ultralytics", loaded)
    # when it is resumed without the flag
    with pytest.raises(SystemExit):
        cli(["train", "--config", str(config), "--project", str(tmp_path / "runs"),
             "--name", "r", "--data-dir", str(tmp_path / "data"), "--resume"])  # fmt: skip
    # then Ultralytics is loaded with the share the run started with
    assert asked == [0.4]
