"""The photo-level severity check against damaged-parts' file-name grades (bench script)."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.bench_severity_grades import NONE_FOUND, photo_severity, served_analyzer, summarise
from cdat.findings import Box, DamageInstance, PhotoAnalysis
from cdat.taxonomy import CarPart, DamageType, Severity
from training.closeup import photo_grade, photo_grader
from training.errors import DatasetConfigError


def test_file_name_prefixes_are_grades_and_damage_is_none() -> None:
    assert photo_grade(Path("minor_12_JPEG.rf.ab.jpg")) is Severity.MINOR
    assert photo_grade(Path("major_3_JPEG.rf.cd.jpg")) is Severity.SEVERE
    assert photo_grade(Path("damage_3_JPEG.rf.cd.jpg")) is None
    assert photo_grade(Path("0001_JPEG.rf.ef.jpg")) is None


def test_a_config_without_a_grades_file_grades_by_file_name(tmp_path: Path) -> None:
    config = tmp_path / "set.yaml"
    config.write_text("name: set\n")
    assert photo_grader(config)(Path("moderate_1.rf.ab.jpg")) is Severity.MODERATE


def test_a_grades_file_grades_the_photos_it_names_and_no_others(tmp_path: Path) -> None:
    # given a config whose grades file names two photos (a file name with no prefix)
    (tmp_path / "grades.csv").write_text("split,file,grade\ntrain,a.jpg,severe\nval,b.jpg,minor\n")
    config = tmp_path / "set.yaml"
    config.write_text("photo_grades: grades.csv\n")
    grade = photo_grader(config)
    # then each named photo takes its grade, and a photo it does not name has none, even
    # one whose file name would be a grade
    assert grade(tmp_path / "x" / "a.jpg") is Severity.SEVERE
    assert grade(Path("b.jpg")) is Severity.MINOR
    assert grade(Path("minor_1.rf.ab.jpg")) is None


@pytest.mark.parametrize(
    "body", ["split,file,grade\ntrain,a.jpg,awful\n", "split,name\ntrain,a.jpg\n", None]
)
def test_a_bad_grades_file_is_one_config_error(tmp_path: Path, body: str | None) -> None:
    if body is not None:
        (tmp_path / "grades.csv").write_text(body)
    config = tmp_path / "set.yaml"
    config.write_text("photo_grades: grades.csv\n")
    with pytest.raises(DatasetConfigError, match="photo_grades"):
        photo_grader(config)


def _dent(part: CarPart, severity: Severity, confidence: float) -> DamageInstance:
    return DamageInstance(DamageType.DENT, severity, confidence, Box(0, 0, 10, 10), part=part)


def test_a_photo_is_as_severe_as_its_claims_worst_finding() -> None:
    door, hood = CarPart.FRONT_LEFT_DOOR, CarPart.HOOD
    # given a confident moderate dent on a door and a faint severe guess on the same door
    faint = (_dent(door, Severity.MODERATE, 0.8), _dent(door, Severity.SEVERE, 0.2))
    photo = PhotoAnalysis("p", 256, 256, damages=faint)
    # then the photo is as severe as a claim of it says: the faint guess does not decide
    assert photo_severity(photo) == "moderate"
    # and a credible severe dent elsewhere makes it severe; nothing found is said so
    worse = PhotoAnalysis("p", 256, 256, damages=(*faint, _dent(hood, Severity.SEVERE, 0.7)))
    assert photo_severity(worse) == "severe"
    assert photo_severity(PhotoAnalysis("p", 256, 256)) == NONE_FOUND


@pytest.mark.slow
def test_the_bench_reads_the_pipeline_the_service_builds() -> None:
    from cdat.settings import Settings
    from inference.readiness import readiness

    if not readiness(Settings()).ready:
        pytest.skip("shipped models not installed")
    # when the bench builds its analyzer from the shipped models
    analyzer = served_analyzer(None)
    # then the damage model's served threshold comes with the stages it is served with
    assert analyzer.verifier is not None and analyzer.whole_car is not None
    assert analyzer.family is not None and analyzer.gate is not None


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


def test_a_minor_closeup_is_priced_without_a_new_panel_for_a_share_it_cannot_measure() -> None:
    from dataclasses import replace

    from bench.bench_severity_grades import bench_pricing, priced, summarise_prices
    from cdat.findings import PartInstance
    from cdat.settings import Settings

    pricing = bench_pricing(Settings(_env_file=None))  # type: ignore[call-arg]
    # given a severe dent over 80% of the hood in a photo that shows the hood whole
    dent = replace(_dent(CarPart.HOOD, Severity.SEVERE, 0.9), part_coverage=0.8)
    whole = PhotoAnalysis(
        "w",
        256,
        256,
        damages=(dent,),
        parts=(PartInstance(CarPart.HOOD, 0.9, Box(40, 40, 200, 200)),),
    )
    # and the same in a close-up whose hood runs off the frame
    closeup = replace(whole, parts=(PartInstance(CarPart.HOOD, 0.9, Box(0, 0, 256, 256)),))
    seen_whole, cut = priced(whole, pricing), priced(closeup, pricing)
    # then the whole view is replaced for its coverage, the close-up is not
    assert seen_whole.replaced and seen_whole.replaced_for_coverage
    assert not cut.replaced and cut.total < seen_whole.total
    # and the grades count them
    summary = summarise_prices([(Severity.SEVERE, seen_whole), (Severity.MINOR, cut)])
    assert summary["severe"]["replaced_for_coverage"] == 1
    assert summary["minor"] == {
        "photos": 1,
        "with_a_replacement": 0,
        "replaced_for_coverage": 0,
        "median_total": str(cut.total),
    }
    assert summary["moderate"]["photos"] == 0
