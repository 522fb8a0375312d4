"""The damage verifier's sweep (training/verifier_sweep.py): the rule it scores, on hand-made
analyses and probability tables, and its arguments."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from cdat.findings import NO_VEHICLE, Box, DamageInstance, PartInstance, PhotoAnalysis, QualityIssue
from cdat.taxonomy import CarPart, DamageType, Severity
from cdat.verified import VerifierRule
from cdat.whole_car import WholeCarRule
from inference.damage_verifier import DamageVerifier, extra_names
from inference.registry import ModelEntry
from tests.inference.test_damage_verifier import expected, make_verifier
from training import verifier_sweep
from training.errors import TrainingError
from training.outline_tally import Outline
from training.rule_sweep import PhotoRecord
from training.verifier_sweep import (
    choose_overlap,
    floor_tables,
    get_args_parser,
    main,
    probability_table,
    sweep,
    verified_rule,
)

W, H = 400, 200
RULE = VerifierRule(base_conf=0.3, min_probability=0.7)


def damage(conf: float, x: float = 0.0) -> DamageInstance:
    return DamageInstance(DamageType.DENT, Severity.MINOR, conf, Box(x, 10, x + 20, 30),
                          part=CarPart.HOOD)  # fmt: skip


def close_up(*confs: float) -> PhotoAnalysis:
    """One large part in the frame: never a whole-car view."""
    parts = (PartInstance(CarPart.HOOD, 0.9, Box(0, 0, W, H)),)
    damages = tuple(damage(c, 30 * k) for k, c in enumerate(confs))
    return PhotoAnalysis("p", W, H, damages=damages, parts=parts)


def whole_car(*confs: float) -> PhotoAnalysis:
    """Six small parts: a whole-car view under WHOLE_CAR."""
    kinds = (CarPart.FRONT_BUMPER, CarPart.HOOD, CarPart.FRONT_LEFT_DOOR, CarPart.WHEEL,
             CarPart.LEFT_MIRROR, CarPart.FRONT_LEFT_LIGHT)  # fmt: skip
    parts = tuple(PartInstance(p, 0.9, Box(60 * k, 100, 60 * k + 50, 150))
                  for k, p in enumerate(kinds))  # fmt: skip
    return replace(close_up(*confs), parts=parts)


WHOLE_CAR = WholeCarRule(min_parts=5, max_part_share=0.2, whole_car_conf=0.6)


# --- verified_rule -------------------------------------------------------------------------


def test_the_base_stands_and_confirmed_damage_above_the_floor_is_added() -> None:
    # given a pass at 0.01: damages at 0.5 (base), 0.2 and 0.04 (under it), 0.01 (under the
    # floor of 0.03), the verifier giving 0.1, 0.8, 0.3 and 0.99
    analysis = close_up(0.5, 0.2, 0.04, 0.01)
    table = {id(analysis): np.array([0.1, 0.8, 0.3, 0.99], np.float32)}
    # when the rule is applied from a floor of 0.03
    got = verified_rule(table, 0.03, RULE, None)(analysis)
    # then the base keeps 0.5 (no base minimum), 0.2 is confirmed, 0.04 is not, and 0.01 is
    # under the floor however sure the verifier is
    assert got.damages == analysis.damages[:2]
    assert got.parts == analysis.parts and got.photo_id == analysis.photo_id


def test_damage_at_the_floor_is_served_from_it() -> None:
    analysis = close_up(0.03, 0.0299)
    table = {id(analysis): np.array([0.9, 0.9], np.float32)}
    assert verified_rule(table, 0.03, RULE, None)(analysis).damages == analysis.damages[:1]


def test_each_damage_is_read_with_its_own_probability_around_the_floor() -> None:
    # given a damage under the floor between two above it
    analysis = close_up(0.5, 0.01, 0.2)
    table = {id(analysis): np.array([0.9, 0.99, 0.1], np.float32)}
    # then the third is read with its own 0.1 (dropped), not the one under the floor
    assert verified_rule(table, 0.03, RULE, None)(analysis).damages == analysis.damages[:1]


def test_the_base_minimum_drops_doubted_base_damage() -> None:
    analysis = close_up(0.5, 0.9)
    table = {id(analysis): np.array([0.1, 0.3], np.float32)}
    strict = VerifierRule(base_conf=0.3, min_probability=0.7, min_base_probability=0.2)
    assert verified_rule(table, 0.03, strict, None)(analysis).damages == analysis.damages[1:]


def test_on_a_whole_car_view_the_base_is_the_whole_car_rule() -> None:
    # given a whole-car view: 0.5 is above the base threshold but under the rule's 0.6,
    # 0.7 is above both; the verifier doubts both (0.5 and 0.0)
    analysis = whole_car(0.5, 0.7)
    table = {id(analysis): np.array([0.5, 0.0], np.float32)}
    # when the rule is applied with the whole-car rule
    got = verified_rule(table, 0.03, RULE, WHOLE_CAR)(analysis)
    # then 0.7 is in the base (kept), 0.5 is not and is not confirmed (dropped)
    assert got.damages == analysis.damages[1:]
    # and without the whole-car rule both are in the base
    assert verified_rule(table, 0.03, RULE, None)(analysis).damages == analysis.damages


def test_a_view_read_by_the_gate_decides_the_view_where_the_rule_names_one() -> None:
    # given six small parts the gate read as a close-up, a rule that reads views, and a
    # verifier confirming both damages at 0.8: enough for a close-up, under the whole-car bar
    analysis = replace(whole_car(0.5, 0.05), whole_car_view_probability=0.1)
    table = {id(analysis): np.array([0.8, 0.8], np.float32)}
    by_view, bar = (
        replace(WHOLE_CAR, view_probability=0.5),
        replace(RULE, whole_car_probability=0.95),
    )
    # when the rule is applied, then it is served as a close-up: both are kept
    assert verified_rule(table, 0.03, bar, by_view)(analysis).damages == analysis.damages
    # and read as a whole car, neither clears its bars
    whole = replace(analysis, whole_car_view_probability=0.9)
    table = {id(whole): np.array([0.8, 0.8], np.float32)}
    assert verified_rule(table, 0.03, bar, by_view)(whole).damages == ()


def test_damage_the_whole_car_rule_drops_may_still_be_confirmed() -> None:
    analysis = whole_car(0.5, 0.05)
    table = {id(analysis): np.array([0.9, 0.9], np.float32)}
    assert verified_rule(table, 0.03, RULE, WHOLE_CAR)(analysis).damages == analysis.damages


def test_an_analysis_the_table_does_not_hold_is_served_by_the_base_alone() -> None:
    # given a table made for one analysis object, and an equal copy of it
    analysis = close_up(0.5, 0.2)
    table = {id(analysis): np.array([0.9, 0.9], np.float32)}
    copy = replace(analysis)
    assert copy == analysis and copy is not analysis
    # then the table is read by identity: the copy is served by the base threshold alone
    assert verified_rule(table, 0.03, RULE, None)(copy).damages == analysis.damages[:1]
    assert verified_rule(table, 0.03, RULE, None)(analysis).damages == analysis.damages


def test_nothing_above_the_floor_is_served_by_the_base() -> None:
    analysis = close_up(0.02, 0.01)
    table = {id(analysis): np.array([1.0, 1.0], np.float32)}
    assert verified_rule(table, 0.03, RULE, None)(analysis).damages == ()


# --- probability_table ---------------------------------------------------------------------


def test_the_table_answers_for_each_photo_with_damage_in_its_own_pixels(tmp_path: Path) -> None:
    # given a photo red on its left half and blue on its right, and three records of it: one
    # with a damage on each half, one with no damage, one refused as showing no vehicle
    image = np.full((H, W, 3), (255, 0, 0), np.uint8)
    image[:, : W // 2] = (0, 0, 255)
    photo = tmp_path / "photo.png"
    cv2.imwrite(str(photo), image)
    verifier = DamageVerifier.load(make_verifier(tmp_path / "v.onnx"), RULE)
    both = PhotoAnalysis("a", W, H, damages=(damage(0.05, 60), damage(0.05, 300)))
    refused = replace(both, quality_issues=(QualityIssue(NO_VEHICLE, "m", "h", True),))
    records = [PhotoRecord("damage-severity", "a", both, path=photo),
               PhotoRecord("car-parts", "b", close_up(), path=photo),
               PhotoRecord("car-parts", "c", refused, path=photo)]  # fmt: skip
    # when the table is made
    table = probability_table(verifier, records)
    # then only the first record is answered, red (real) then blue (not)
    assert list(table) == [id(both)]
    assert table[id(both)].tolist() == pytest.approx(
        [expected(1.0, 0.05), expected(-1.0, 0.05)], abs=1e-5
    )


def test_a_verifier_counting_the_photos_detections_answers_from_each_floor(
    tmp_path: Path,
) -> None:
    # given a grey photo with a damage at 0.05 and a fainter one (0.025) over the same place,
    # and a verifier that weighs only how many detections cover a damage's place
    photo = tmp_path / "photo.png"
    cv2.imwrite(str(photo), np.full((H, W, 3), 128, np.uint8))
    names = extra_names(("dent", "scratch"), cluster=True)
    path = make_verifier(tmp_path / "v.onnx", extras=len(names), named=",".join(names),
                         weights={len(names) - 2: 1.0})  # fmt: skip
    cluster = DamageVerifier.load(path, RULE)
    plain = DamageVerifier.load(make_verifier(tmp_path / "plain.onnx"), RULE)
    analysis = PhotoAnalysis("a", W, H, damages=(damage(0.05, 60), damage(0.025, 62)))
    records = [PhotoRecord("damage-severity", "a", analysis, path=photo)]
    # when a table is made for each floor
    tables = floor_tables(cluster, records, [0.02, 0.03])
    # then from 0.02 each counts the other; from 0.03 the fainter is not served, nor counted
    assert tables[0.02][id(analysis)].tolist() == pytest.approx([2 / 3, 2 / 3], abs=1e-5)
    at_003 = tables[0.03][id(analysis)]
    assert at_003[0] == pytest.approx(0.5, abs=1e-5) and np.isnan(at_003[1])
    # and a verifier that does not count them answers once for every floor
    once = floor_tables(plain, records, [0.02, 0.03])
    assert once[0.02] is once[0.03] and not np.isnan(once[0.02][id(analysis)]).any()


def test_a_record_with_damage_but_no_photo_file_is_an_error(tmp_path: Path) -> None:
    verifier = DamageVerifier.load(make_verifier(tmp_path / "v.onnx"), RULE)
    records = [PhotoRecord("damage-severity", "lost.jpg", close_up(0.5))]
    with pytest.raises(TrainingError, match=r"lost\.jpg: the pass record names no photo file"):
        probability_table(verifier, records)


# --- sweep ---------------------------------------------------------------------------------


def promote_plain_model(monkeypatch: pytest.MonkeyPatch, served_conf: float) -> None:
    """The sweep's promoted damage model: served at `served_conf`, no whole-car rule."""
    entry = ModelEntry("damage-x-1", "damage", "d.onnx", "0" * 64, ["dent"], 320,
                       metrics={"served_conf": served_conf})  # fmt: skip
    monkeypatch.setattr(verifier_sweep, "promoted_damage_entry", lambda: entry)


def test_the_sweep_scores_the_served_threshold_then_every_candidate(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # given a promoted model served at 0.3 with no whole-car rule; a labelled photo whose
    # only damage (0.05) overlaps its region, and an intact car with a false damage (0.05)
    promote_plain_model(monkeypatch, served_conf=0.3)
    labelled, intact = close_up(0.05), close_up(0.05)
    outline = Outline(np.zeros((0, 0), bool), None, "minor")
    records = [
        PhotoRecord("damage-severity", "a", labelled, (outline,), np.array([[0.5]], np.float32)),
        PhotoRecord("car-parts", "b", intact),
    ]
    table = {id(labelled): np.array([0.9], np.float32), id(intact): np.array([0.6], np.float32)}
    # when the sweep runs over two floors, two probabilities and one base minimum
    rows = sweep(records, dict.fromkeys([0.02, 0.1], table), [0.02, 0.1], [0.5, 0.8], [0.0])
    # then the served threshold alone and the served rule come first, verifier-free
    assert [r["verifier"] for r in rows[:2]] == [None, None]
    assert [r["conf"] for r in rows[:2]] == [0.3, 0.3]
    assert rows[0]["damage_recall_iou30"]["damage-severity"] == 0.0
    # and then every candidate, stricter first, its rule based at the served threshold
    assert [(r["conf"], r["verifier"]["min_probability"]) for r in rows[2:]] == [
        (0.1, 0.8), (0.1, 0.5), (0.02, 0.8), (0.02, 0.5)
    ]  # fmt: skip
    assert {r["verifier"]["base_conf"] for r in rows[2:]} == {0.3}
    # a floor of 0.1 leaves out both damages; from 0.02 the labelled one is confirmed, and
    # the intact car's false one only by the looser rule
    figures = [(r["damage_recall_iou30"]["damage-severity"], r["intact_photos_with_damage"])
               for r in rows[2:]]  # fmt: skip
    assert figures == [(0.0, 0.0), (0.0, 0.0), (1.0, 0.0), (1.0, 1.0)]
    assert rows[4]["damage_precision_iou30"]["damage-severity"] == 1.0


def test_a_promoted_model_served_with_a_verifier_is_swept_from_its_base(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # given the promoted model already served with a verifier: it runs at 0.02, its rule's
    # base is 0.3 (a bug swept it from 0.02 as if that were its threshold alone)
    record = {"file": "v.onnx", "sha256": "0" * 64,
              "rule": {"base_conf": 0.3, "min_probability": 0.7}}  # fmt: skip
    entry = ModelEntry("damage-x-2", "damage", "d.onnx", "0" * 64, ["dent"], 320,
                       metrics={"served_conf": 0.02}, verifier=record)  # fmt: skip
    monkeypatch.setattr(verifier_sweep, "promoted_damage_entry", lambda: entry)
    analysis = close_up(0.05)
    records = [PhotoRecord("car-parts", "b", analysis)]
    # when the sweep runs
    table = {id(analysis): np.array([0.9], np.float32)}
    rows = sweep(records, {0.02: table}, [0.02], [0.8], [0.0])
    # then the threshold alone is the base, 0.3, and so is every candidate's
    assert [r["conf"] for r in rows[:2]] == [0.3, 0.3]
    assert rows[2]["verifier"]["base_conf"] == 0.3


def test_a_candidates_own_whole_car_rule_replaces_the_promoted_one_in_every_row(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # given a promoted model served at 0.3 with no whole-car rule, and an intact car seen
    # whole with a false damage at 0.5 the verifier doubts (0.2)
    promote_plain_model(monkeypatch, served_conf=0.3)
    intact = whole_car(0.5)
    records = [PhotoRecord("car-parts", "b", intact)]
    table = {id(intact): np.array([0.2], np.float32)}
    # when it is swept with the promoted model's rule, then with a candidate's own
    promoted = sweep(records, {0.02: table}, [0.02], [0.8], [0.0])
    own = sweep(records, {0.02: table}, [0.02], [0.8], [0.0], whole_car=WHOLE_CAR)
    # then the promoted model's base keeps the false damage, the candidate's rule drops it
    assert [r["intact_photos_with_damage"] for r in promoted[1:]] == [1.0, 1.0]
    assert [r["intact_photos_with_damage"] for r in own[1:]] == [0.0, 0.0]
    assert [r["whole_car"] for r in own[1:]] == [WHOLE_CAR.to_record()] * 2
    assert own[0]["whole_car"] is None  # the threshold alone stays the criterion's base


def test_overlapping_added_damage_is_swept_and_counted(monkeypatch: pytest.MonkeyPatch) -> None:
    # given a promoted model served at 0.3 and a labelled photo: a found damage (0.5) over
    # its region and, under the threshold, a second name for it (0.05, the same box) and a
    # damage elsewhere (0.04), both confirmed
    entry = ModelEntry("damage-x-1", "damage", "d.onnx", "0" * 64, ["dent"], 320,
                       metrics={"served_conf": 0.3})  # fmt: skip
    monkeypatch.setattr(verifier_sweep, "promoted_damage_entry", lambda: entry)
    found, twin, other = damage(0.5, 0), damage(0.05, 0), damage(0.04, 200)
    analysis = replace(close_up(), damages=(found, twin, other))
    outline = Outline(np.zeros((0, 0), bool), None, "minor")
    ious = np.array([[0.5, 0.5, 0.0]], np.float32)
    records = [PhotoRecord("damage-severity", "a", analysis, (outline,), ious)]
    table = {id(analysis): np.array([0.9, 0.9, 0.9], np.float32)}
    # when swept with overlaps of 1.0 and 0.5
    rows = sweep(records, {0.02: table}, [0.02], [0.8], [0.0], [1.0, 0.5])
    # then the looser rule comes first and reports all three; the stricter one drops the twin
    assert [r["verifier"]["max_overlap"] for r in rows[2:]] == [1.0, 0.5]
    assert [r["damages_per_damage_photo"] for r in rows[2:]] == [3.0, 2.0]
    # and the labelled region is found by both
    assert [r["damage_recall_iou30"]["damage-severity"] for r in rows[2:]] == [1.0, 1.0]


def test_a_whole_car_bar_is_swept_and_binds_only_whole_car_views(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # given a promoted model served at 0.3, and two intact cars each with a false damage at
    # 0.05 the verifier gives 0.85: one seen whole, one close by
    promote_plain_model(monkeypatch, served_conf=0.3)
    seen_whole, seen_close = whole_car(0.05), close_up(0.05)
    records = [PhotoRecord("car-parts", "w", seen_whole), PhotoRecord("car-parts", "c", seen_close)]
    table = {id(a): np.array([0.85], np.float32) for a in (seen_whole, seen_close)}
    # when swept with whole-car bars of 0 (none) and 0.9 under a whole-car rule
    rows = sweep(records, {0.02: table}, [0.02], [0.8], [0.0], whole_car=WHOLE_CAR,
                 whole_car_probabilities=[0.0, 0.9])  # fmt: skip
    # then the stricter bar comes first and keeps the whole car clean, the close-up not
    assert [r["verifier"]["whole_car_probability"] for r in rows[2:]] == [0.9, 0.0]
    assert [r["intact_photos_with_damage"] for r in rows[2:]] == [0.5, 1.0]


def test_without_a_whole_car_rule_no_photo_is_a_whole_car_view_to_the_bar(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    promote_plain_model(monkeypatch, served_conf=0.3)
    seen_whole = whole_car(0.05)
    table = {id(seen_whole): np.array([0.85], np.float32)}
    rows = sweep([PhotoRecord("car-parts", "w", seen_whole)], {0.02: table}, [0.02], [0.8],
                 [0.0], whole_car_probabilities=[0.9])  # fmt: skip
    assert rows[2]["intact_photos_with_damage"] == 1.0


def criterion_row(
    recall: float, intact: float, closeups: float, whole_car_p: float = 0.0, conf: float = 0.02
) -> dict[str, Any]:
    """A sweep row as the criteria read it; precision alike everywhere."""
    rule = None if conf == 0.1 else {"base_conf": 0.1, "min_probability": 0.5,
                                     "min_base_probability": 0.1, "max_overlap": 1.0,
                                     "whole_car_probability": whole_car_p}  # fmt: skip
    return {"conf": conf, "whole_car": None, "verifier": rule,
            "damage_recall_iou30": dict.fromkeys(verifier_sweep.OUTLINED, recall),
            "severe_damage_recall_iou30": {"damaged-parts": 0.8},
            "damage_precision_iou30": dict.fromkeys(verifier_sweep.OUTLINED, 0.7),
            "intact_photos_with_damage": intact, "intact_closeups_with_damage": closeups,
            "closeups_refused": 0.0}  # fmt: skip


def test_the_strict_criterion_takes_the_most_damage_found_at_half_the_intact_bound() -> None:
    # given the threshold alone, the served rule (intact 0.04, close-ups 0.37), a bar that
    # halves intact cars (0.02) at a little less damage found, a stricter one finding less,
    # and one as clean on whole cars that puts damage on more close-ups
    base = criterion_row(0.5, 0.24, 0.35, conf=0.1)
    served = criterion_row(0.624, 0.04, 0.37)
    barred = criterion_row(0.618, 0.02, 0.33, whole_car_p=0.8)
    stricter = criterion_row(0.607, 0.02, 0.30, whole_car_p=0.99)
    leaky = criterion_row(0.64, 0.02, 0.40, whole_car_p=0.9)
    rows = [base, served, stricter, leaky, barred]
    # then the strict criterion takes the bar; the served criterion keeps the served rule's
    assert verifier_sweep.choose_strict_intact(rows, 0.1, served) is barred
    assert verifier_sweep.choose_served(rows, 0.1) is leaky
    # and where no rule reaches 0.02, it chooses none
    assert verifier_sweep.choose_strict_intact([base, served], 0.1, served) is None


def test_the_served_rule_row_is_the_promoted_entrys_own_rule(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # given the promoted model served at 0.02 with its verifier's rule 0.5 / 0.1
    record = {
        "file": "v.onnx",
        "sha256": "0" * 64,
        "rule": {"base_conf": 0.1, "min_probability": 0.5, "min_base_probability": 0.1},
    }
    entry = ModelEntry("damage-x-2", "damage", "d.onnx", "0" * 64, ["dent"], 320,
                       metrics={"served_conf": 0.02}, verifier=record)  # fmt: skip
    monkeypatch.setattr(verifier_sweep, "promoted_damage_entry", lambda: entry)
    rows = [criterion_row(0.62, 0.02, 0.33, whole_car_p=0.8), criterion_row(0.624, 0.04, 0.37)]
    # then its row is the one without a whole-car bar, from its own floor
    assert verifier_sweep.served_rule_row(rows) is rows[1]
    # and a sweep without that row is refused, saying what to sweep
    with pytest.raises(TrainingError, match=r"served verifier rule is not among.*0\.02"):
        verifier_sweep.served_rule_row(rows[:1])


def sweep_row(overlap: float, recall: float, severe: float = 0.8, conf: float = 0.02):
    rule = {"base_conf": 0.1, "min_probability": 0.7, "min_base_probability": 0.0,
            "max_overlap": overlap}  # fmt: skip
    return {"conf": conf, "whole_car": None, "verifier": rule,
            "damage_recall_iou30": dict.fromkeys(verifier_sweep.OUTLINED, recall),
            "severe_damage_recall_iou30": {"damaged-parts": severe}}  # fmt: skip


def test_the_lowest_overlap_that_loses_no_more_than_the_bound_is_chosen() -> None:
    # given the chosen rule (no overlap dropped) and its overlap variants: 0.7 loses 0.005,
    # 0.5 loses 0.01 (the bound), 0.3 loses 0.02; and a variant of another rule at 0.1
    chosen = sweep_row(1.0, 0.80)
    rows = [chosen, sweep_row(0.7, 0.795), sweep_row(0.5, 0.79), sweep_row(0.3, 0.78),
            sweep_row(0.1, 0.80, conf=0.03)]  # fmt: skip
    # then 0.5 is chosen: the lowest within the bound, of the same rule
    assert choose_overlap(rows, chosen)["verifier"]["max_overlap"] == 0.5


def test_an_overlap_losing_severe_damage_is_not_chosen() -> None:
    chosen = sweep_row(1.0, 0.80, severe=0.80)
    rows = [chosen, sweep_row(0.5, 0.80, severe=0.78)]
    assert choose_overlap(rows, chosen) is chosen


# --- the script's arguments ----------------------------------------------------------------


@pytest.fixture
def verifier_file(tmp_path: Path) -> Path:
    return make_verifier(tmp_path / "v.onnx")


def run(*argv: str) -> int:
    return main(get_args_parser().parse_args(list(argv)))


def test_a_whole_car_rule_that_is_no_rule_is_refused_by_name() -> None:
    with pytest.raises(SystemExit):
        get_args_parser().parse_args(["--cache", "p.pkl", "--verifier", "v.onnx",
                                      "--whole-car-rule", '{"min_parts": 0}'])  # fmt: skip
    args = get_args_parser().parse_args(["--cache", "p.pkl", "--verifier", "v.onnx",
                                         "--whole-car-rule", '{"min_parts": 5}'])  # fmt: skip
    assert args.whole_car_rule == WholeCarRule(min_parts=5)


def test_a_missing_verifier_file_is_refused_first(tmp_path: Path) -> None:
    with pytest.raises(TrainingError, match=r"--verifier .*gone\.onnx: no such file"):
        run("--cache", str(tmp_path / "pass.pkl"), "--verifier", str(tmp_path / "gone.onnx"))


def test_a_missing_pass_is_refused(tmp_path: Path, verifier_file: Path) -> None:
    with pytest.raises(TrainingError, match=r"--cache .*pass\.pkl: run `training\.claim_rules"):
        run("--cache", str(tmp_path / "pass.pkl"), "--verifier", str(verifier_file))


@pytest.fixture
def cached_pass(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> list[tuple[Any, ...]]:
    """A pass made at 0.02 with no photos, in place of reading one from the data sets; the
    calls made to read it."""
    from training import claim_rules

    calls: list[tuple[Any, ...]] = []

    def cached_records(*args: Any) -> tuple[dict[str, Any], list[PhotoRecord], Path]:
        calls.append(args)
        return {"conf": 0.02, "split": "val"}, [], tmp_path

    monkeypatch.setattr(claim_rules, "cached_records", cached_records)
    return calls


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--floors", "0.01", "0.05"], r"--floors: the pass was made at 0\.02; none may be lower"),
        (["--min-probabilities", "0.5", "1.5"], "--min-probabilities / --min-base-probabilities"),
        (["--min-probabilities", "-0.1"], r"min_probability -0\.1"),
        (["--min-base-probabilities", "0.0", "1.2"], r"min_probability 1\.2"),
        (["--max-overlaps", "0.5", "1.5"], r"--max-overlaps: max_overlap 1\.5"),
        (
            ["--whole-car-probabilities", "0", "1.5"],
            r"--whole-car-probabilities: whole_car_probability 1\.5",
        ),
    ],
)
def test_floors_under_the_pass_and_bad_probabilities_are_refused(
    tmp_path: Path,
    verifier_file: Path,
    cached_pass: list[tuple[Any, ...]],
    extra: list[str],
    message: str,
) -> None:
    argv = ["--cache", str(tmp_path / "pass.pkl"), "--verifier", str(verifier_file), *extra]
    with pytest.raises(TrainingError, match=message):
        run(*argv)
    assert len(cached_pass) == 1  # the pass was read: the floors are checked against it


def test_floors_at_the_pass_threshold_are_accepted(
    tmp_path: Path,
    verifier_file: Path,
    cached_pass: list[tuple[Any, ...]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # given a pass at 0.02 with no photos and the promoted model served at 0.3
    entry = ModelEntry("damage-x-1", "damage", "d.onnx", "0" * 64, ["dent"], 320,
                       metrics={"served_conf": 0.3})  # fmt: skip
    monkeypatch.setattr(verifier_sweep, "promoted_damage_entry", lambda: entry)
    out = tmp_path / "sweep.json"
    # when the sweep runs from a floor of exactly 0.02
    assert run("--cache", str(tmp_path / "pass.pkl"), "--verifier", str(verifier_file),
               "--floors", "0.02", "--min-probabilities", "0.9", "--min-base-probabilities",
               "0", "--out", str(out)) == 0  # fmt: skip
    # then it writes the served rows and the one candidate
    import json

    written = json.loads(out.read_text())
    assert written["pass_conf"] == 0.02 and len(written["candidates"]) == 3
    assert written["candidates"][2]["verifier"] == {
        "base_conf": 0.3, "min_probability": 0.9, "min_base_probability": 0.0, "max_overlap": 1.0,
        "whole_car_probability": 0.0,
    }  # fmt: skip


def test_a_strict_sweep_without_the_served_rule_is_refused_before_it_runs(
    tmp_path: Path,
    verifier_file: Path,
    cached_pass: list[tuple[Any, ...]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # given the promoted model served from 0.02 with its verifier's rule 0.5 / 0.1
    record = {
        "file": "v.onnx",
        "sha256": "0" * 64,
        "rule": {"base_conf": 0.1, "min_probability": 0.5, "min_base_probability": 0.1},
    }
    entry = ModelEntry("damage-x-2", "damage", "d.onnx", "0" * 64, ["dent"], 320,
                       metrics={"served_conf": 0.02}, verifier=record)  # fmt: skip
    monkeypatch.setattr(verifier_sweep, "promoted_damage_entry", lambda: entry)

    def no_sweep(*args: Any) -> None:
        raise AssertionError("the sweep ran")

    monkeypatch.setattr(verifier_sweep, "floor_tables", no_sweep)
    # when the strict criterion is asked for over a grid without its drop bar of 0.1
    argv = ["--cache", str(tmp_path / "pass.pkl"), "--verifier", str(verifier_file),
            "--criterion", "strict-intact", "--min-base-probabilities", "0.0", "0.2"]  # fmt: skip
    # then it is refused, naming what to add, before any verifier answer is computed
    with pytest.raises(TrainingError, match=r"served rule must be swept too; add "
                       r"--min-base-probabilities 0\.1$"):  # fmt: skip
        run(*argv)


def test_a_strict_sweep_needs_a_promoted_model_served_with_a_verifier(
    tmp_path: Path,
    verifier_file: Path,
    cached_pass: list[tuple[Any, ...]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    promote_plain_model(monkeypatch, served_conf=0.3)
    with pytest.raises(TrainingError, match="served without a verifier"):
        run("--cache", str(tmp_path / "pass.pkl"), "--verifier", str(verifier_file),
            "--criterion", "strict-intact")  # fmt: skip
