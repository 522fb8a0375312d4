"""Severity by view: a damage model's entry may name a second severity stage that re-reads
every damage on a photo which is no whole-car view (`closeup_severity_model`), the first
keeping whole-car views."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from cdat.errors import ModelUnavailable
from cdat.settings import Settings
from cdat.taxonomy import CarPart, Severity
from cdat.whole_car import WholeCarRule
from inference.loading import build_analyzer
from inference.registry import Registry
from inference.severity import FEATURE_NAMES, FEATURE_VERSION

from .conftest import textured, write_registry
from .test_pipeline import IMGSZ, H, W, damage_det, part_det, photo


def always_minor(path: Path) -> Path:
    """A severity stage whose bias alone decides: every damage is minor."""
    weights = np.zeros((len(FEATURE_NAMES) + 1, 3))
    weights[-1] = [10.0, 0.0, 0.0]
    body = {
        "mean": [0.0] * len(FEATURE_NAMES),
        "scale": [1.0] * len(FEATURE_NAMES),
        "weights": weights.tolist(),
        "feature_version": FEATURE_VERSION,
    }
    path.write_text(json.dumps(body))
    return path


def scene(model_dir: Path, min_parts: int, closeup_stage: bool = True) -> Settings:
    """Ten small parts and one severe dent the model is sure of; the whole-car rule asks
    `min_parts` parts of a whole-car view, and the entry names the always-minor close-up
    stage where `closeup_stage`."""
    parts = [part_det(p, (40 * i, 60, 40 * i + 30, 100)) for i, p in enumerate(list(CarPart)[:10])]
    damages = [damage_det("severe-dent", (82, 62, 98, 90), 0.9)]
    rule = WholeCarRule(min_parts=min_parts, whole_car_conf=0.2)
    settings = write_registry(model_dir, IMGSZ, damages, parts, whole_car_rule=rule)
    if closeup_stage:
        always_minor(model_dir / "closeup-severity.json")
        registry = Registry.load(model_dir)
        k = next(i for i, e in enumerate(registry.entries) if e.task == "damage")
        entry = replace(registry.entries[k], closeup_severity_model="closeup-severity.json")
        registry.entries[k] = entry
        registry.save()
    return settings


def severities(settings: Settings) -> list[Severity]:
    (result,) = build_analyzer(settings).analyze([photo(textured(W, H))])
    return [d.severity for d in result.damages]


def test_a_close_up_is_read_by_the_close_up_stage_and_a_whole_car_view_is_not(
    tmp_path: Path,
) -> None:
    # given a damage model whose entry names a close-up severity stage that says minor
    # when a photo of ten parts is a whole-car view (the rule asks ten)
    whole = severities(scene(tmp_path / "whole", min_parts=10))
    # and when the same photo is a close-up (the rule asks eleven)
    close = severities(scene(tmp_path / "close", min_parts=11))
    # then the whole-car view keeps the model's own severity, and the close-up's damage is
    # re-read as minor
    assert whole == [Severity.SEVERE]
    assert close == [Severity.MINOR]


def test_without_a_close_up_stage_a_close_up_keeps_its_severity(tmp_path: Path) -> None:
    settings = scene(tmp_path / "m", min_parts=11, closeup_stage=False)
    assert severities(settings) == [Severity.SEVERE]
    # and the entry is stored without the field, as entries were before it existed
    stored = json.loads((tmp_path / "m" / "registry.json").read_text())
    assert all("closeup_severity_model" not in e for e in stored["entries"])


def test_with_the_whole_car_rule_off_every_photo_is_read_as_a_close_up(tmp_path: Path) -> None:
    # given the whole-car view above, with the operator's whole-car rule off: no view is
    # known, and the close-up stage reads it (as the close-up verifier would)
    settings = scene(tmp_path / "m", min_parts=10)
    assert severities(settings.model_copy(update={"damage_whole_car": False})) == [Severity.MINOR]


def test_a_missing_close_up_stage_makes_the_damage_model_unavailable(tmp_path: Path) -> None:
    settings = scene(tmp_path / "m", min_parts=11)
    (tmp_path / "m" / "closeup-severity.json").unlink()
    with pytest.raises(ModelUnavailable, match=r"closeup-severity\.json"):
        build_analyzer(settings)
