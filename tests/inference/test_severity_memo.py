"""A photo analysed again (the looks taken where damage is found) reads the severity features
of the damages its first analysis measured from the photo's memo, not from its pixels again."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from cdat.findings import Box, DamageInstance
from cdat.taxonomy import DamageType, Severity
from inference.crop_memo import CropMemo
from inference.runtime import severities_reread, severity_features_of
from inference.severity import SeverityModel, severity_view, view_features

from .conftest import textured

STAGE = (
    Path(__file__).resolve().parents[2]
    / "inference/models/damage-type-seg-n-20261127.severity.json"
)


def _mask(x0: int, y0: int, x1: int, y1: int) -> np.ndarray:
    mask = np.zeros((120, 160), bool)
    mask[y0:y1, x0:x1] = True
    return mask


def test_a_damage_measured_once_is_looked_up_the_next_time() -> None:
    # given a photo's severity view and a memo
    view = severity_view(textured(160, 120, seed=3))
    memo: CropMemo = {}
    dent = (DamageType.DENT, Box(10.0, 10.0, 60.0, 50.0), 0.42)
    mask = _mask(10, 10, 60, 50)
    # when a damage's features are asked for twice
    first = severity_features_of(memo, dent, view, mask)
    again = severity_features_of(memo, dent, view, _mask(0, 0, 1, 1))
    # then they are measured once, on its mask, and the second answer is the first
    np.testing.assert_array_equal(first, view_features(view, mask, DamageType.DENT))
    assert again is first and len(memo) == 1
    # and a damage of another type on the same box, or another box, is measured on its own
    scratch = (DamageType.SCRATCH, dent[1], dent[2])
    np.testing.assert_array_equal(
        severity_features_of(memo, scratch, view, mask),
        view_features(view, mask, DamageType.SCRATCH),
    )
    severity_features_of(memo, (DamageType.DENT, Box(70.0, 60.0, 150.0, 110.0), 0.42), view,
                         _mask(70, 60, 150, 110))  # fmt: skip
    assert len(memo) == 3
    # and without a memo every answer is measured
    assert severity_features_of(None, dent, view, mask) is not first


def test_a_close_up_reread_takes_the_features_the_memo_holds() -> None:
    # given a close-up's damage whose features the first analysis put in the photo's memo
    stage = SeverityModel.load(STAGE)
    view = severity_view(textured(160, 120, seed=4))
    damage = DamageInstance(DamageType.DENT, Severity.MINOR, 0.5, Box(20.0, 20.0, 40.0, 40.0))
    mask = _mask(20, 20, 40, 40)
    measured = view_features(view, mask, DamageType.DENT)
    # stand-in features far from the measured ones, under the damage's key
    other = measured + 5.0
    memo: CropMemo = {
        ("severity features", damage.damage_type, damage.box, damage.confidence): other
    }
    # when the close-up stage reads it again with the memo, and without
    kept = severities_reread(stage, (damage,), mask[None], view, memo)[0]
    fresh = severities_reread(stage, (damage,), mask[None], view)[0]
    # then with the memo it reads what the memo holds, without it what the mask shows
    assert stage.predict(other)[0] is not stage.predict(measured)[0]
    assert kept.severity is stage.predict(other)[0]
    assert fresh.severity is stage.predict(measured)[0]
