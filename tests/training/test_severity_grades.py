"""The photo-level severity check against damaged-parts' file-name grades (bench script)."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from bench.bench_severity_grades import NONE_FOUND, photo_severity, summarise
from cdat.taxonomy import Severity
from training.closeup import photo_grade


def test_file_name_prefixes_are_grades_and_damage_is_none() -> None:
    assert photo_grade(Path("minor_12_JPEG.rf.ab.jpg")) is Severity.MINOR
    assert photo_grade(Path("major_3_JPEG.rf.cd.jpg")) is Severity.SEVERE
    assert photo_grade(Path("damage_3_JPEG.rf.cd.jpg")) is None
    assert photo_grade(Path("0001_JPEG.rf.ef.jpg")) is None


def test_a_photo_is_as_severe_as_its_worst_damage() -> None:
    damages = [SimpleNamespace(severity=Severity.MINOR), SimpleNamespace(severity=Severity.SEVERE)]
    assert photo_severity(SimpleNamespace(damages=damages)) == "severe"
    assert photo_severity(SimpleNamespace(damages=[])) == NONE_FOUND


def test_agreement_is_counted_only_where_damage_was_found() -> None:
    pairs = [
        (Severity.MINOR, "minor"),
        (Severity.MINOR, "severe"),
        (Severity.MODERATE, NONE_FOUND),
        (Severity.SEVERE, "severe"),
        (Severity.SEVERE, "moderate"),
    ]
    summary = summarise(pairs)
    assert summary["photos"] == 5 and summary["photos_with_damage_found"] == 4
    assert summary["accuracy_when_found"] == pytest.approx(2 / 4)
    # minor right 1 of 2, severe right 1 of 2; moderate had nothing found: not in the mean
    assert summary["balanced_accuracy_when_found"] == pytest.approx(0.5)
    assert summary["per_grade"]["moderate"] == {
        "photos": 1, "none_found": 1, "right_when_found": None}  # fmt: skip
    assert summary["confusion"]["matrix"][0] == [0, 1, 0, 1]


def test_rank_correlation_gives_tied_grades_their_mean_rank() -> None:
    # given grades minor, minor, severe against predictions minor, severe, severe
    pairs = [(Severity.MINOR, "minor"), (Severity.MINOR, "severe"), (Severity.SEVERE, "severe")]
    # then Spearman's rho on mean ranks (0.5, 0.5, 2) and (0, 1.5, 1.5) is 0.5, not the 1.0
    # that ranking ties in their order of arrival would give
    assert summarise(pairs)["spearman_when_found"] == pytest.approx(0.5)
    # and with no spread in the predictions there is no correlation to report
    flat = [(Severity.MINOR, "severe"), (Severity.SEVERE, "severe"), (Severity.MODERATE, "severe")]
    assert summarise(flat)["spearman_when_found"] is None
