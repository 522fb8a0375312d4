"""Damage measured as a claim is, on tiny sets whose answers are known."""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pytest

from cdat.analysis import PhotoInput
from cdat.findings import NO_VEHICLE, Box, DamageInstance, PhotoAnalysis, QualityIssue
from cdat.taxonomy import CarPart, DamageType, PartFamily, Severity
from training.claim_eval import headline, no_vehicle_report, outlines_of
from training.claims import get_args_parser, main
from training.closeup import _polygon_mask
from training.errors import TrainingError
from training.outline_tally import Outline, OutlineTally

if TYPE_CHECKING:
    from inference.registry import Registry, Task

SIZE = 100


def _square(x0: int, y0: int, side: int = 20) -> tuple[tuple[float, float], ...]:
    return ((x0, y0), (x0 + side, y0), (x0 + side, y0 + side), (x0, y0 + side))


def _damage(
    x0: int,
    y0: int,
    part: CarPart | None,
    severity: Severity = Severity.MINOR,
    kind: DamageType = DamageType.DENT,
) -> DamageInstance:
    return DamageInstance(kind, severity, 0.5, Box(x0, y0, x0 + 20, y0 + 20), _square(x0, y0), part)


def _outline(x0: int, y0: int, family: PartFamily | None, severity: str | None = None) -> Outline:
    return Outline(_polygon_mask(_square(x0, y0), (SIZE, SIZE), scale=False), family, severity)


def _analysis(*damages: DamageInstance, refused: bool = False) -> PhotoAnalysis:
    issues = (QualityIssue(NO_VEHICLE, "none", "retake", blocking=True),) if refused else ()
    return PhotoAnalysis("p", SIZE, SIZE, damages=damages, quality_issues=issues)


def test_regions_found_and_the_family_they_land_on() -> None:
    tally = OutlineTally()
    # given photo 1: a door region found on a door, a bumper region found on a door,
    # and a fender region found on no listed part (right: a fender no part names)
    tally.add_photo(
        _analysis(
            _damage(10, 10, CarPart.FRONT_LEFT_DOOR),
            _damage(50, 10, CarPart.BACK_LEFT_DOOR),
            _damage(10, 60, None),
        ),
        [
            _outline(10, 10, PartFamily.DOOR),
            _outline(52, 12, PartFamily.BUMPER),
            _outline(10, 60, PartFamily.FENDER, "severe"),
        ],
    )
    # and photo 2: a light region nothing overlaps, refused as showing no vehicle
    tally.add_photo(_analysis(refused=True), [_outline(60, 60, PartFamily.LIGHT, "severe")])
    report = tally.report()
    # then 3 of 4 regions are found, 2 of those 3 on the named family
    assert report["damage_recall_iou30"] == pytest.approx(3 / 4)
    assert report["part_family_accuracy"] == pytest.approx(2 / 3)
    assert report["severe_damage_recall_iou30"] == pytest.approx(1 / 2)
    # and the severe one found is reported minor: under-called
    assert report["severe_called"] == {"minor": 1} and report["severe_called_severe"] == 0.0
    assert report["photos_with_damage"] == pytest.approx(1 / 2)
    assert report["refused_no_vehicle"] == pytest.approx(1 / 2)
    # and an adjuster reads three damages over the two photos
    assert report["damages_per_photo"] == pytest.approx(3 / 2)
    # and one of the three found lies on no part, unpriced: the fender's
    assert report["found_on_no_part"] == pytest.approx(1 / 3)
    assert report["per_family"]["fender"]["found_on_no_part"] == 1.0
    assert report["per_family"]["bumper"] == {
        "regions": 1, "damage_recall_iou30": 1.0, "part_family_accuracy": 0.0,
        "found_on_no_part": 0.0, "landed_on": {"door": 1},
    }  # fmt: skip
    assert report["per_family"]["fender"]["landed_on"] == {"unlisted_panel": 1}
    assert report["per_family"]["light"]["part_family_accuracy"] is None


def test_a_damage_overlapping_under_iou_0_3_is_not_a_find() -> None:
    tally = OutlineTally()
    # a 20x20 damage shifted by 12 px overlaps the region at IoU 64/736
    tally.add_photo(_analysis(_damage(22, 22, None)), [_outline(10, 10, None)])
    assert tally.report()["damage_recall_iou30"] == 0.0


def test_damages_that_lie_off_every_labelled_region_are_counted() -> None:
    tally = OutlineTally()
    # given a photo with two labelled regions and four damages: one on the first region,
    # one a pixel off the second (19 of its 20 columns inside), one with 2 of its 20 rows
    # on the first (a tenth of it: inside), and one on none (off)
    tally.add_photo(
        _analysis(
            _damage(10, 10, None),
            _damage(51, 10, None),
            _damage(10, 28, None),
            _damage(70, 70, None),
        ),
        [_outline(10, 10, None), _outline(50, 10, None)],
    )
    # and a photo with no damage reported
    tally.add_photo(_analysis(), [_outline(60, 60, None)])
    # then one of the four reported damages lies off the labels
    assert tally.report()["damages_off_labels"] == pytest.approx(1 / 4)
    # and a source with no damage reported has no share
    empty = OutlineTally()
    empty.add_photo(_analysis(), [_outline(10, 10, None)])
    assert empty.report()["damages_off_labels"] is None


def test_outlines_take_their_severity_from_the_label_or_the_photo_grade() -> None:
    square = [v / SIZE for xy in _square(10, 10) for v in xy]
    typed = outlines_of([("severe-dent", square), ("minor-scratch", square)], (SIZE, SIZE), None)
    assert [o.severity for o in typed] == ["severe", "minor"]
    families = {"Door": PartFamily.DOOR}
    graded = outlines_of([("Door", square)], (SIZE, SIZE), families, "severe")
    assert graded[0].severity == "severe" and graded[0].family is PartFamily.DOOR
    # an outline that covers no pixel of the photo is left out
    outside = [2.0, 2.0, 2.1, 2.0, 2.1, 2.1]
    assert outlines_of([("Door", outside)], (SIZE, SIZE), families) == []


class _NamedAnalyzer:
    """Refuses photos whose name starts with 'r', finds damage on those starting with 'd'."""

    def analyze(self, photos: Sequence[PhotoInput]) -> list[PhotoAnalysis]:
        (photo,) = photos
        damages = (_damage(10, 10, None),) if photo.photo_id[1] == "d" else ()
        return [_analysis(*damages, refused=photo.photo_id[0] == "r")]


def test_a_photo_without_a_vehicle_counts_as_refused_only_with_no_damage(tmp_path: Path) -> None:
    # given four measure-only photos: refused clean, refused with damage, kept, kept with damage
    folder = tmp_path / "no-vehicle"
    (folder / "images").mkdir(parents=True)
    names = ["rx.jpg", "rd.jpg", "kx.jpg", "kd.jpg"]
    rows = ["file,source,source_path,licence,width,height"]
    for name in names:
        (folder / "images" / name).write_bytes(b"x")
        rows.append(f"{name},gen,test,CC-BY-NC-2.0,8,8")
    (folder / "manifest.csv").write_text("\n".join(rows) + "\n")
    # when measured, then only the clean refusal counts
    report = no_vehicle_report(_NamedAnalyzer(), "test", tmp_path)
    assert report["photos"] == 4 and report["non_vehicle_refused"] == pytest.approx(1 / 4)
    assert report["not_refused"] == ["kd.jpg", "kx.jpg", "rd.jpg"]


def test_headline_pools_close_up_refusals_over_both_sources() -> None:
    per_source = {
        "car-parts-damage": {"photos": 10, "closeups_refused": 0.1, "damage_recall_iou30": 0.5,
                             "part_family_accuracy": 0.7},
        "damaged-parts": {"photos": 30, "closeups_refused": 0.0, "damage_recall_iou30": 0.6,
                          "part_family_accuracy": 0.8},
        "damage-severity": {"damage_recall_iou30": 0.3},
        "car-parts": {"intact_photos_with_damage": 0.2},
        "no-vehicle": {"non_vehicle_refused": 0.9},
    }  # fmt: skip
    figures = headline(per_source)
    assert figures["closeups_refused"] == pytest.approx(1 / 40)
    assert figures["damage_recall_iou30"]["damaged-parts"] == 0.6
    assert figures["non_vehicle_refused"] == 0.9


def test_bad_options_are_one_error_line(tmp_path: Path) -> None:
    not_onnx = tmp_path / "model.pt"
    not_onnx.write_bytes(b"x")
    cases = [
        (["--damage", str(not_onnx)], "expected an existing .onnx"),
        (["--damage-conf", "0.2", "1.5"], "need 0 < conf < 1"),
        (["--out", str(tmp_path)], "is a folder"),
    ]
    for argv, message in cases:
        with pytest.raises(TrainingError, match=message):
            main(get_args_parser().parse_args(argv))
    assert not np.any([p.suffix == ".json" for p in tmp_path.iterdir()])


def test_a_missing_source_is_one_error_before_any_photo_is_analysed(tmp_path: Path) -> None:
    # given a data root that holds none of the sets
    # when the claim figures are asked for, then the first missing set is named, under it,
    # before the analyzer is even built (no model is loaded from this empty folder)
    args = ["--data-root", str(tmp_path), "--model-dir", str(tmp_path / "no-models")]
    with pytest.raises(TrainingError, match=f"not found: {tmp_path}/car-parts-damage"):
        main(get_args_parser().parse_args(args))


def test_a_candidate_part_model_serves_in_place_of_the_promoted_one(tmp_path: Path) -> None:
    from inference.registry import Registry
    from training.claims import build_claim_analyzer

    # given the shipped registry and a copy of its part model under a candidate's name
    shipped = Registry.load(Path(__file__).resolve().parents[2] / "inference" / "models")
    promoted = shipped.promoted_entry("parts")
    candidate = tmp_path / "parts-candidate.onnx"
    candidate.write_bytes(shipped.path_of(promoted).read_bytes())
    # when the claim analyzer is built with it
    analyzer = build_claim_analyzer(None, parts=candidate)
    # then the candidate serves the parts, at the served parts threshold, beside the
    # promoted damage model
    assert analyzer.model_versions["parts"] == "parts-candidate" != promoted.id
    assert analyzer.parts.runtime.config.conf == pytest.approx(0.25)
    assert analyzer.model_versions["damage"] == shipped.promoted_entry("damage").id


def test_a_candidate_part_model_that_is_not_onnx_is_one_error_line(tmp_path: Path) -> None:
    not_onnx = tmp_path / "parts.pt"
    not_onnx.write_bytes(b"x")
    for path in (not_onnx, tmp_path / "missing.onnx"):
        with pytest.raises(TrainingError, match=r"--parts .*expected an existing \.onnx part"):
            main(get_args_parser().parse_args(["--parts", str(path)]))


def test_evaluate_claims_serves_a_part_model_with_the_promoted_damage_model(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import argparse

    import training.claim_eval
    from cdat.whole_car import WholeCarRule
    from inference.registry import Registry
    from training.eval_stages import measure_claims

    # given a candidate part model (a copy of the shipped one under a new name)
    shipped = Registry.load(Path(__file__).resolve().parents[2] / "inference" / "models")
    candidate = tmp_path / "parts-candidate.onnx"
    candidate.write_bytes(shipped.path_of(shipped.promoted_entry("parts")).read_bytes())
    served: list[dict[str, str]] = []
    stages: list[object] = []
    rules: list[object] = []
    monkeypatch.setattr(
        training.claim_eval,
        "claim_report",
        lambda analyzer, *rest: (
            served.append(analyzer.model_versions)
            or stages.append(analyzer.family)
            or rules.append(analyzer.whole_car)
            or {"measured": True}
        ),
    )
    args = argparse.Namespace(
        model=candidate, model_dir=None, severity=None, conf=0.3, split="val", seed=0,
        data_root=None, whole_car_rule=None, gate=None, intact_windows=2,
    )  # fmt: skip
    # when cdat evaluate --claims measures it
    report = measure_claims(args, "parts", None)
    # then the claim figures come from the candidate parts beside the promoted damage model,
    # without the promoted part model's part-family stage (a candidate brings its own or none)
    assert report == {"measured": True}
    assert stages == [None]
    assert served[0]["parts"] == "parts-candidate"
    assert served[0]["damage"] == shipped.promoted_entry("damage").id
    assert rules == [shipped.promoted_entry("damage").served_whole_car_rule]
    # and measured with a whole-car rule, the promoted damage model serves that rule
    args.whole_car_rule = WholeCarRule(min_parts=8, whole_car_conf=0.2)
    measure_claims(args, "parts", None)
    assert rules[-1] == args.whole_car_rule
    assert served[-1]["damage"] == shipped.promoted_entry("damage").id
    # and a part model not exported to ONNX is refused
    args.model = tmp_path / "parts.pt"
    with pytest.raises(TrainingError, match=r"damage or part model's \.onnx"):
        measure_claims(args, "parts", None)


def shipped_candidate(tmp_path: Path, task: Task) -> tuple[Registry, Path]:
    """The shipped registry, and a copy of its promoted `task` model under a new name (a
    candidate with no registry entry)."""
    from inference.registry import Registry

    shipped = Registry.load(Path(__file__).resolve().parents[2] / "inference" / "models")
    candidate = tmp_path / f"{task}-candidate.onnx"
    candidate.write_bytes(shipped.path_of(shipped.promoted_entry(task)).read_bytes())
    return shipped, candidate


def test_a_candidate_damage_model_is_served_with_its_own_whole_car_rule_or_none(
    tmp_path: Path,
) -> None:
    from cdat.whole_car import WholeCarRule
    from training.claims import build_claim_analyzer

    # given the shipped registry, whose promoted damage model has a rule for its scores,
    # and a candidate damage model (a copy under a new name)
    shipped, candidate = shipped_candidate(tmp_path, "damage")
    promoted = shipped.promoted_entry("damage")
    assert promoted.served_whole_car_rule is not None
    severity = shipped.model_dir / promoted.severity_model
    # when the claim analyzer is built with the candidate and no rule, then it serves none
    assert build_claim_analyzer(None, candidate, severity, 0.1).whole_car is None
    # and with a rule, that rule
    rule = WholeCarRule(min_parts=6, whole_car_conf=0.2)
    assert build_claim_analyzer(None, candidate, severity, 0.1, whole_car=rule).whole_car == rule
    # and the served analyzer (no candidate) serves the promoted model's own
    assert build_claim_analyzer(None).whole_car == promoted.served_whole_car_rule


def test_a_candidate_damage_model_takes_the_zoomed_out_look_only_where_asked(
    tmp_path: Path,
) -> None:
    from inference.zoom_look import ZoomedOutRuntime
    from training.claims import build_claim_analyzer

    # given a candidate damage model (a copy of the shipped one under a new name)
    shipped, candidate = shipped_candidate(tmp_path, "damage")
    severity = shipped.model_dir / shipped.promoted_entry("damage").severity_model
    # when the claim analyzer is built with a zoom bar, then close-ups take the look there
    zoomed = build_claim_analyzer(None, candidate, severity, 0.1, zoom_look_view_below=0.5)
    assert zoomed.damage.entry.zoom_look_view_below == 0.5
    assert isinstance(zoomed.damage.closeup_runtime, ZoomedOutRuntime)
    # and without one, no photo does
    plain = build_claim_analyzer(None, candidate, severity, 0.1)
    assert plain.damage.closeup_runtime is None
    # and asked to take the looks only where damage is found, it takes both, so
    found = build_claim_analyzer(
        None, candidate, severity, 0.1, zoom_look_view_below=0.5, zoom_look_where_found=True,
        middle_look_where_found=True,
    )  # fmt: skip
    assert found.damage.entry.zoom_look_where_found
    assert found.damage.again_looks(0.1) == [
        found.damage.closeup_runtime,
        found.damage.middle_runtime,
    ]
    assert plain.damage.middle_runtime is None


def test_a_candidate_damage_model_takes_the_corners_and_a_second_detector_where_asked(
    tmp_path: Path,
) -> None:
    from inference.crop_look import CornerLooks
    from inference.detector_look import DetectorLookRuntime
    from inference.registry import sha256_of
    from training.claims import build_claim_analyzer

    # given a candidate damage model, and a second detector of its classes (another copy)
    shipped, candidate = shipped_candidate(tmp_path, "damage")
    severity = shipped.model_dir / shipped.promoted_entry("damage").severity_model
    second = tmp_path / "second.onnx"
    second.write_bytes(candidate.read_bytes())
    # when the claim analyzer is built with the middle and corner looks and the detector
    found = build_claim_analyzer(
        None, candidate, severity, 0.1, middle_look_where_found=True,
        corner_looks_where_found=True, detector_where_found=second,
    )  # fmt: skip
    # then both are taken where damage is found, and the entry names the detector's file
    assert isinstance(found.damage.corner_runtime, CornerLooks)
    assert isinstance(found.damage.detector_look, DetectorLookRuntime)
    assert found.damage.entry.corner_looks_where_found
    assert found.damage.entry.detector_where_found == {
        "file": "second.onnx", "sha256": sha256_of(second),
    }  # fmt: skip
    # and without them, neither is
    plain = build_claim_analyzer(None, candidate, severity, 0.1, middle_look_where_found=True)
    assert plain.damage.corner_runtime is None and plain.damage.detector_look is None
    # and a second detector of other classes (the part model) is refused by name
    _, parts = shipped_candidate(tmp_path, "parts")
    with pytest.raises(TrainingError, match=r"--detector-where-found .* predicts"):
        build_claim_analyzer(None, candidate, severity, 0.1, detector_where_found=parts)


def test_a_candidate_part_model_is_served_beside_the_promoted_damage_model_under_a_rule_asked(
    tmp_path: Path,
) -> None:
    from cdat.whole_car import WholeCarRule
    from training.claims import build_claim_analyzer

    # given the shipped registry and a candidate part model (a copy under a new name)
    shipped, candidate = shipped_candidate(tmp_path, "parts")
    promoted = shipped.promoted_entry("damage")
    # when the claim analyzer is built with the candidate and no rule, then the promoted
    # damage model keeps its own
    assert build_claim_analyzer(None, parts=candidate).whole_car == promoted.served_whole_car_rule
    # and with a rule, the promoted damage model serves that one (the part model counts the
    # parts the rule reads)
    rule = WholeCarRule(min_parts=8, whole_car_conf=0.2)
    analyzer = build_claim_analyzer(None, parts=candidate, whole_car=rule)
    assert analyzer.whole_car == rule
    assert analyzer.model_versions["damage"] == promoted.id


def test_a_candidate_gate_reads_the_views_of_a_claim_measurement(tmp_path: Path) -> None:
    from inference.registry import Registry
    from tests.inference.test_vehicle_gate import make_gate
    from training.claims import build_claim_analyzer

    # given the shipped registry and a candidate gate file that reads the view
    shipped = Registry.load(Path(__file__).resolve().parents[2] / "inference" / "models")
    promoted = shipped.promoted_entry("gate")
    gate = make_gate(tmp_path / "gate-view.onnx", view_logit=0.0)
    # when the claim analyzer is built with it, then it replaces the promoted gate at the
    # promoted gate's threshold, and the other models stay the promoted ones
    analyzer = build_claim_analyzer(None, gate=gate)
    assert analyzer.gate.reads_view and analyzer.gate.threshold == promoted.served_conf
    assert analyzer.model_versions["gate"] == "gate-view"
    assert analyzer.model_versions["damage"] == shipped.promoted_entry("damage").id


@pytest.mark.parametrize(
    ("config", "extra", "message"),
    [
        ("damage-severity.yaml", [], "--gate applies to a model measured with --claims"),
        ("damage-severity.yaml", ["--claims"], "--gate .*missing.onnx: no such file"),
    ],
)
def test_a_candidate_gate_out_of_place_is_one_error_line(
    tmp_path: Path, config: str, extra: list[str], message: str, capsys: pytest.CaptureFixture
) -> None:
    from training.cli import main as cli

    root = Path(__file__).resolve().parents[2]
    model = tmp_path / "model.onnx"
    model.write_bytes(b"not read")
    gate = tmp_path / ("missing.onnx" if extra else "gate.onnx")
    if not extra:
        gate.write_bytes(b"x")
    argv = ["evaluate", "--config", str(root / "datasets" / config), "--model", str(model),
            "--gate", str(gate), *extra]  # fmt: skip
    assert cli(argv) == 2
    assert re.search(message, capsys.readouterr().err)
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--intact-windows", "8"], "--intact-windows applies to a model measured with --claims"),
        (["--claims", "--intact-windows", "0"], "0 windows per car: give 1 to 32"),
        (["--claims", "--intact-windows", "many"], "'many' is not a whole number"),
    ],
)
def test_intact_windows_out_of_place_or_out_of_range_is_one_error_line(
    tmp_path: Path, extra: list[str], message: str, capsys: pytest.CaptureFixture
) -> None:
    from training.cli import main as cli

    # given a candidate damage model file
    root = Path(__file__).resolve().parents[2]
    model = tmp_path / "model.onnx"
    model.write_bytes(b"not read")
    argv = ["evaluate", "--config", str(root / "datasets" / "damage-severity.yaml"),
            "--model", str(model), *extra]  # fmt: skip
    # when evaluated with a bad --intact-windows, then one error line (from the option's
    # parser where the count itself is bad) and nothing written
    try:
        status = cli(argv)
    except SystemExit as parser_exit:
        status = parser_exit.code
    assert status == 2
    assert re.search(message, capsys.readouterr().err)
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--whole-car-rule", '{"min_parts": 6}'], "--whole-car-rule is a candidate damage"),
    ],
)
def test_a_whole_car_rule_without_a_candidate_is_one_error_line(
    tmp_path: Path, argv: list[str], message: str
) -> None:
    with pytest.raises(TrainingError, match=message):
        main(get_args_parser().parse_args(argv))


@pytest.mark.parametrize("text", ["{", "[6]", '{"min_parts": 0}', '{"parts": 6}'])
def test_an_unreadable_whole_car_rule_is_refused_by_the_parser(
    text: str, capsys: pytest.CaptureFixture
) -> None:
    with pytest.raises(SystemExit) as stop:
        get_args_parser().parse_args(["--whole-car-rule", text])
    assert stop.value.code == 2
    assert "--whole-car-rule" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("config", "claims"), [("car-parts.yaml", False), ("damage-severity.yaml", False)]
)
def test_evaluate_takes_a_whole_car_rule_only_for_claim_figures(
    tmp_path: Path, config: str, claims: bool, capsys: pytest.CaptureFixture
) -> None:
    from training.cli import main as cli

    # given a part or damage model measured without --claims
    root = Path(__file__).resolve().parents[2]
    model = tmp_path / "model.onnx"
    model.write_bytes(b"not read")
    argv = ["evaluate", "--config", str(root / "datasets" / config), "--model", str(model),
            "--whole-car-rule", '{"min_parts": 6}', *(["--claims"] if claims else [])]  # fmt: skip
    # when evaluated with a whole-car rule, then it is one error line, before any work
    assert cli(argv) == 2
    err = capsys.readouterr().err
    assert "--whole-car-rule applies to a model measured with --claims" in err
    assert not (tmp_path / "runs").exists()


def test_a_candidate_measured_with_the_closer_look_gets_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from inference.crop_look import CropMergedRuntime
    from inference.registry import Registry
    from training.claims import build_claim_analyzer

    # given a candidate damage model (a copy of the shipped one under a new name)
    shipped = Registry.load(Path(__file__).resolve().parents[2] / "inference" / "models")
    promoted = shipped.promoted_entry("damage")
    candidate = tmp_path / "damage-candidate.onnx"
    candidate.write_bytes(shipped.path_of(promoted).read_bytes())
    severity = shipped.model_dir / promoted.severity_model
    # when measured with CDAT_DAMAGE_CROP_LOOK=true, then it looks twice; without, once
    monkeypatch.setenv("CDAT_DAMAGE_CROP_LOOK", "true")
    closer = build_claim_analyzer(None, candidate, severity, 0.1)
    assert isinstance(closer.damage.runtime, CropMergedRuntime)
    monkeypatch.delenv("CDAT_DAMAGE_CROP_LOOK")
    once = build_claim_analyzer(None, candidate, severity, 0.1)
    assert not isinstance(once.damage.runtime, CropMergedRuntime)


def test_the_claims_table_shows_damages_a_photo_where_a_source_counts_them() -> None:
    from training.claim_eval import claims_markdown

    claims = {
        "split": "val",
        "runtimes": {"damage": "onnxruntime-fp32", "parts": "onnxruntime-fp32"},
        "closeups_refused": 0.0,
        "per_source": {
            "damaged-parts": {
                "photos": 4,
                "damage_recall_iou30": 0.5,
                "damages_per_photo": 2.25,
                "part_family_accuracy": 0.5,
                "found_on_no_part": 0.25,
            },
            "car-parts": {"photos": 2, "intact_photos_with_damage": 0.5},
            "damage-severity": {
                "photos": 3,
                "damage_recall_iou30": 0.4,
                "severe_damage_recall_iou30": 0.5,
                "severe_called_severe": 0.25,
            },
        },
    }
    table = claims_markdown(claims)
    # the backend and precision the figures ran in head the table (serving may differ)
    assert "damage in onnxruntime-fp32, parts in onnxruntime-fp32" in table[1]
    rows = [line for line in table if line.startswith("| ")]
    assert rows[0].endswith("| refused | damages a photo |")
    assert rows[0].startswith("| source | photos | recall IoU 0.3 | severe (called severe) "
                              "| part family | found on no part |")  # fmt: skip
    assert rows[2].startswith("| damaged-parts | 4 | 0.500 | n/a | 0.500 | 0.250 |")
    assert rows[2].endswith("| 2.250 |")
    assert rows[3].endswith("| n/a |")
    # and where a source grades severity, how often a severe region found is called severe
    assert rows[4].startswith("| damage-severity | 3 | 0.400 | 0.500 (0.25) | n/a |")


@pytest.mark.parametrize("split", ["val", "test"])
def test_closeup_figures_are_read_on_the_split_asked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, split: str
) -> None:
    import argparse

    import training.closeup
    from training.evaluate import _closeups

    # given a part model measured on one split with --closeups
    model = tmp_path / "parts.onnx"
    model.write_bytes(b"not read")
    read: list[str] = []
    monkeypatch.setattr(training.closeup, "build_closeup_analyzer", lambda *a: "analyzer")
    monkeypatch.setattr(
        training.closeup,
        "evaluate_closeups",
        lambda analyzer, config, split, seed: read.append(split) or {"closeup": True},
    )
    args = argparse.Namespace(
        model=model, model_dir=None, closeups=Path("datasets/damaged-parts.yaml"), split=split,
        seed=0,
    )  # fmt: skip
    # when its close-up figures are measured, then they come from that split, never another
    assert _closeups(args, "parts") == {"closeup": True}
    assert read == [split]


def test_a_severe_region_is_called_at_the_severity_its_photo_prices_it() -> None:
    tally = OutlineTally()
    # given three severe regions on one photo: one overlapped most by a minor dent on the
    # hood, whose finding a severe dent elsewhere on the hood makes severe; one overlapped
    # by a moderate scratch on the door; one by a minor dent on no part
    tally.add_photo(
        _analysis(
            _damage(10, 10, CarPart.HOOD, Severity.MINOR),
            _damage(70, 10, CarPart.HOOD, Severity.SEVERE),
            _damage(10, 60, CarPart.FRONT_LEFT_DOOR, Severity.MODERATE, DamageType.SCRATCH),
            _damage(60, 60, None, Severity.MINOR),
        ),
        [
            _outline(10, 10, PartFamily.HOOD, "severe"),
            _outline(10, 60, PartFamily.DOOR, "severe"),
            _outline(60, 60, None, "severe"),
        ],
    )
    report = tally.report()
    # then each is called as the photo's claim prices it: the hood's finding severe, the
    # door's scratch moderate, the damage on no part at its own severity
    assert report["severe_called"] == {"minor": 1, "moderate": 1, "severe": 1}
    assert report["severe_called_severe"] == pytest.approx(1 / 3)
