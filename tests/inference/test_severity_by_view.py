"""Severity by view: a damage model's entry may name a second severity stage that re-reads
every damage on a photo which is no whole-car view (`closeup_severity_model`), the first
keeping whole-car views."""

from __future__ import annotations

import json
import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from cdat.errors import ModelUnavailable
from cdat.findings import PhotoAnalysis
from cdat.settings import Settings
from cdat.taxonomy import CarPart, Severity
from cdat.whole_car import WholeCarRule
from inference.loading import build_analyzer
from inference.registry import Registry
from inference.severity import FEATURE_NAMES, FEATURE_VERSION

from .conftest import textured, write_registry
from .test_pipeline import IMGSZ, H, W, damage_det, part_det, photo
from .test_vehicle_gate import add_gate


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


def scene(
    model_dir: Path,
    min_parts: int,
    closeup_stage: bool = True,
    view_below: float | None = None,
    view_probability: float | None = None,
) -> Settings:
    """Ten small parts and one severe dent the model is sure of; the whole-car rule asks
    `min_parts` parts of a whole-car view (or the gate's read view at `view_probability`),
    and the entry names the always-minor close-up stage where `closeup_stage`, read under
    `view_below` where given."""
    parts = [part_det(p, (40 * i, 60, 40 * i + 30, 100)) for i, p in enumerate(list(CarPart)[:10])]
    damages = [damage_det("severe-dent", (82, 62, 98, 90), 0.9)]
    rule = WholeCarRule(min_parts=min_parts, whole_car_conf=0.2, view_probability=view_probability)
    settings = write_registry(model_dir, IMGSZ, damages, parts, whole_car_rule=rule)
    if closeup_stage:
        always_minor(model_dir / "closeup-severity.json")
        registry = Registry.load(model_dir)
        k = next(i for i, e in enumerate(registry.entries) if e.task == "damage")
        entry = replace(
            registry.entries[k],
            closeup_severity_model="closeup-severity.json",
            closeup_severity_view_below=view_below,
        )
        registry.entries[k] = entry
        registry.save()
    return settings


def severities(settings: Settings) -> list[Severity]:
    return [d.severity for d in analysed(settings).damages]


def analysed(settings: Settings) -> PhotoAnalysis:
    (result,) = build_analyzer(settings).analyze([photo(textured(W, H))])
    return result


def with_view_read_at(model_dir: Path, probability: float, view_below: float | None) -> Settings:
    """The scene with a gate that passes the photo and reads its whole-car view at about
    `probability`; the rule reads views at 0.5."""
    probe = add_gate(scene(model_dir / "probe", 10, view_probability=0.5), 0.01, view_logit=-10.0)
    read = analysed(probe).whole_car_view_probability
    assert read is not None and 0.0 < read < 1.0
    logit = math.log(probability / (1 - probability)) - math.log(read / (1 - read)) - 10.0
    settings = scene(model_dir / "m", 10, view_below=view_below, view_probability=0.5)
    return add_gate(settings, 0.01, view_logit=logit)


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


def test_a_photo_says_whether_the_close_up_stage_read_it(tmp_path: Path) -> None:
    # given the close-up stage, a photo read as a whole-car view and the same as a close-up
    whole = analysed(scene(tmp_path / "whole", min_parts=10))
    close = analysed(scene(tmp_path / "close", min_parts=11))
    # then only the close-up says so (its findings' severity waits on an adjuster)
    assert (whole.severity_read_close_up, close.severity_read_close_up) == (False, True)
    # and without a close-up stage no photo does
    plain = analysed(scene(tmp_path / "plain", min_parts=11, closeup_stage=False))
    assert plain.severity_read_close_up is False


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


@pytest.mark.parametrize(
    ("view", "expected"),
    [(0.03, Severity.MINOR), (0.3, Severity.SEVERE), (0.97, Severity.SEVERE)],
    ids=["sure-close-up", "unsure", "whole-car"],
)
def test_under_a_bar_only_photos_the_gate_is_sure_of_are_re_read(
    tmp_path: Path, view: float, expected: Severity
) -> None:
    # given the close-up stage read only under a view of 0.1, and a gate reading the view
    settings = with_view_read_at(tmp_path, view, view_below=0.1)
    # when the photo is analysed, then only a view under the bar is re-read
    result = analysed(settings)
    assert result.whole_car_view_probability == pytest.approx(view, abs=0.01)
    assert [d.severity for d in result.damages] == [expected]


def test_without_a_bar_a_photo_of_no_whole_car_view_is_re_read_however_unsure(
    tmp_path: Path,
) -> None:
    settings = with_view_read_at(tmp_path, 0.3, view_below=None)
    assert severities(settings) == [Severity.MINOR]


def test_a_bar_with_no_view_read_leaves_severity_as_the_model_said(tmp_path: Path) -> None:
    # given a bar but no gate to read the view (the rule counts parts: eleven wanted)
    settings = scene(tmp_path / "m", min_parts=11, view_below=0.1)
    # then nothing is re-read: no view was read to be sure of
    assert severities(settings) == [Severity.SEVERE]


@pytest.mark.parametrize("bar", [0.0, 1.5])
def test_a_bar_out_of_range_makes_the_damage_model_unavailable(tmp_path: Path, bar: float) -> None:
    settings = scene(tmp_path / "m", min_parts=11, view_below=bar)
    with pytest.raises(ModelUnavailable, match="closeup_severity_view_below"):
        build_analyzer(settings)


def test_a_missing_close_up_stage_makes_the_damage_model_unavailable(tmp_path: Path) -> None:
    settings = scene(tmp_path / "m", min_parts=11)
    (tmp_path / "m" / "closeup-severity.json").unlink()
    with pytest.raises(ModelUnavailable, match=r"closeup-severity\.json"):
        build_analyzer(settings)
