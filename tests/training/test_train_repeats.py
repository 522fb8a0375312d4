"""A training config's mix of its data sets: one source weighed up (its train photos written
more than once), and a bad `closeup_crops` or `train_repeats` refused by name."""

from __future__ import annotations

from pathlib import Path

import pytest

from training.convert import write_dataset
from training.dataconfig import load_training_config
from training.errors import DatasetConfigError

from .conftest import mixed_training_config


def test_a_repeated_source_writes_each_train_photo_again_with_its_labels(
    tmp_path: Path, coco_root: Path
) -> None:
    # given the same data converted once as it is and once with its photos repeated 3 times
    once = write_dataset(
        load_training_config(mixed_training_config(tmp_path, coco_root, {})), tmp_path / "once"
    )
    thrice = write_dataset(
        load_training_config(
            mixed_training_config(tmp_path, coco_root, {"train_repeats": {"gen-coco": 3}})
        ),
        tmp_path / "thrice",
    )
    # then train holds each photo three times, each copy with the photo's own labels and
    # severity, and val and test are as they were
    assert thrice["images"]["train"] == 3 * once["images"]["train"]
    assert thrice["images"]["val"] == once["images"]["val"]
    assert thrice["images"]["test"] == once["images"]["test"]
    train_counts = once["instances"]["train"]
    assert thrice["instances"]["train"] == {c: 3 * n for c, n in train_counts.items()}
    for label in (tmp_path / "once" / "labels" / "train").glob("*.txt"):
        for k in (1, 2):
            copy = f"{label.stem}__again{k}.txt"
            assert (tmp_path / "thrice" / "labels" / "train" / copy).read_text() == (
                label.read_text()
            )
            severity = tmp_path / "once" / "severity" / "train" / label.name
            assert (tmp_path / "thrice" / "severity" / "train" / copy).read_text() == (
                severity.read_text()
            )
    for split in ("val", "test"):
        assert not list((tmp_path / "thrice" / "images" / split).glob("*__again*"))


@pytest.mark.parametrize(
    ("mix", "field"),
    [
        ({"closeup_crops": {"no-such-set": 1}}, "closeup_crops"),
        ({"closeup_crops": {"gen-coco": 40}}, "closeup_crops.gen-coco"),
        ({"closeup_crops": {"gen-coco": "two"}}, "closeup_crops.gen-coco"),
        ({"closeup_crops": [1]}, "closeup_crops"),
        ({"train_repeats": {"no-such-set": 2}}, "train_repeats"),
        ({"train_repeats": {"gen-coco": 0}}, "train_repeats.gen-coco"),
        ({"train_repeats": {"gen-coco": 9}}, "train_repeats.gen-coco"),
        ({"train_repeats": {"gen-coco": True}}, "train_repeats.gen-coco"),
        ({"train_repeats": [2]}, "train_repeats"),
    ],
)
def test_a_bad_mix_request_names_the_field(
    tmp_path: Path, coco_root: Path, mix: dict[str, object], field: str
) -> None:
    # given a training config with a bad `closeup_crops` or `train_repeats`, when it is loaded
    with pytest.raises(DatasetConfigError) as err:
        load_training_config(mixed_training_config(tmp_path, coco_root, mix))
    # then the error names the field
    assert err.value.field == field
