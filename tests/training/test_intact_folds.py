"""Intact cars measured out of fold (training/intact_folds.py): the folds, the figures, the
sweep's choice within their bounds, and the whole loop on the tiny generated damage model."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from cdat.findings import Box, DamageInstance, PhotoAnalysis
from cdat.taxonomy import DamageType, Severity
from training.claim_eval import INTACT_CLOSEUPS
from training.errors import TrainingError
from training.intact_folds import (
    MAX_CLOSEUPS,
    MAX_INTACT,
    flagged,
    folds_of,
    get_args_parser,
    main,
    read_measured,
    rule_key,
    split_fold,
    within_bounds,
)
from training.rule_sweep import PhotoRecord
from training.train_pass import TrainPhoto


def photos_of(cars: int) -> list[TrainPhoto]:
    """Three damage photos, `cars` intact cars and two close-up windows of each."""
    damage = [TrainPhoto("damage-severity", Path(f"d/{k}.jpg"), []) for k in range(3)]
    whole = [TrainPhoto("car-parts", Path(f"c/train{k}.jpg"), []) for k in range(cars)]
    windows = [TrainPhoto(INTACT_CLOSEUPS, Path(f"w/train{k}-{n}.jpg"), [])
               for k in range(cars) for n in range(2)]  # fmt: skip
    return damage + whole + windows


# --- the folds -----------------------------------------------------------------------------


def test_every_car_is_in_one_fold_and_the_folds_are_even_and_fixed() -> None:
    # given 10 intact cars
    photos = photos_of(10)
    # when they are put in four folds, twice
    folds = folds_of(photos, 4)
    # then each car has one fold, the folds hold 3, 3, 2 and 2 cars, and the same each time
    assert sorted(folds) == sorted(f"train{k}" for k in range(10))
    assert sorted(list(folds.values()).count(f) for f in range(4)) == [2, 2, 3, 3]
    assert folds_of(list(reversed(photos)), 4) == folds


def test_a_fold_holds_its_cars_and_their_windows_and_learns_from_the_rest() -> None:
    photos = photos_of(8)
    folds = folds_of(photos, 4)
    for fold in range(4):
        # when fold `fold` is split off
        learn, held = split_fold(photos, fold, 4)
        # then it holds two cars and their four windows, never a damage photo, and the
        # verifier learns from everything else
        cars = {p.path.stem for p in held if p.source == "car-parts"}
        assert cars == {c for c, f in folds.items() if f == fold} and len(cars) == 2
        assert sorted(p.path.stem for p in held if p.source == INTACT_CLOSEUPS) == sorted(
            f"{c}-{n}" for c in cars for n in range(2)
        )
        assert len(learn) + len(held) == len(photos)
        assert [p for p in learn if p.source == "damage-severity"] == photos[:3]


def test_a_fold_out_of_range_is_refused() -> None:
    with pytest.raises(TrainingError, match="fold 4: need 0 <= fold < 4"):
        split_fold(photos_of(4), 4, 4)


# --- the figures ---------------------------------------------------------------------------


def analysis(damages: int) -> PhotoAnalysis:
    found = tuple(DamageInstance(DamageType.DENT, Severity.MINOR, 0.5, Box(1, 1, 5, 5))
                  for _ in range(damages))  # fmt: skip
    return PhotoAnalysis(photo_id="p.jpg", width=10, height=10, damages=found)


def test_the_shares_of_cars_and_windows_left_with_damage() -> None:
    # given four cars, one with damage, and two windows, both with damage
    records = [PhotoRecord("car-parts", f"c{k}", analysis(int(k == 0))) for k in range(4)] + [
        PhotoRecord(INTACT_CLOSEUPS, f"w{k}", analysis(2)) for k in range(2)
    ]
    # when nothing is dropped, then a quarter of the cars and every window have damage
    assert flagged(records, lambda a: a) == {
        "intact_photos_with_damage": 0.25,
        "intact_closeups_with_damage": 1.0,
    }
    # and when every damage is dropped, none
    dropped = flagged(records, lambda a: PhotoAnalysis(photo_id=a.photo_id, width=10, height=10))
    assert dropped == {"intact_photos_with_damage": 0.0, "intact_closeups_with_damage": 0.0}


def sweep_row(keep: float, **figures: Any) -> dict[str, Any]:
    verifier = {"base_conf": 0.1, "min_probability": keep}
    return {"conf": 0.02, "verifier": verifier, "recall": keep, **figures}


def test_the_sweep_chooses_among_rules_within_the_out_of_fold_bounds() -> None:
    # given the threshold alone, and three rules measured out of fold: one within both bounds,
    # one over the intact-car bound, one over the close-up bound; and a fourth not measured
    alone = {"conf": 0.1, "verifier": None}
    rows = [alone, sweep_row(0.9), sweep_row(0.7), sweep_row(0.6), sweep_row(0.5)]
    measured = {"rows": [
        {"conf": 0.02, "verifier": rows[1]["verifier"], "intact_photos_with_damage": MAX_INTACT,
         "intact_closeups_with_damage": MAX_CLOSEUPS},
        {"conf": 0.02, "verifier": rows[2]["verifier"], "intact_photos_with_damage": 0.06,
         "intact_closeups_with_damage": 0.1},
        {"conf": 0.02, "verifier": rows[3]["verifier"], "intact_photos_with_damage": 0.01,
         "intact_closeups_with_damage": 0.3},
    ]}  # fmt: skip
    # when the rows are kept within the bounds
    kept = within_bounds(rows, measured)
    # then the threshold alone and the first rule stay, the latter with its figures
    assert [r["verifier"] for r in kept] == [None, rows[1]["verifier"]]
    assert kept[1]["out_of_fold"] == {"intact_photos_with_damage": MAX_INTACT,
                                      "intact_closeups_with_damage": MAX_CLOSEUPS}  # fmt: skip


def test_figures_that_measured_none_of_the_swept_rules_are_refused() -> None:
    rows = [sweep_row(0.9)]
    other = {"conf": 0.03, "verifier": rows[0]["verifier"], "intact_photos_with_damage": 0.0,
             "intact_closeups_with_damage": 0.0}  # fmt: skip
    with pytest.raises(TrainingError, match="measured none of the swept rules"):
        within_bounds(rows, {"rows": [other]})
    assert rule_key(0.03, other["verifier"]) != rule_key(0.02, other["verifier"])


@pytest.mark.parametrize("text", ["not json", '{"rows": [{"conf": 0.02}]}', "[]"])
def test_a_file_that_is_not_this_scripts_output_is_one_error(tmp_path: Path, text: str) -> None:
    path = tmp_path / "folds.json"
    path.write_text(text)
    with pytest.raises(TrainingError, match=r"not training\.intact_folds output"):
        read_measured(path)


def test_missing_verifiers_or_too_few_are_refused(tmp_path: Path) -> None:
    one = tmp_path / "f0.onnx"
    one.write_bytes(b"x")
    for verifiers, message in (([one], "at least two"), ([one, tmp_path / "f1.onnx"], "f1")):
        args = get_args_parser().parse_args(
            ["--cache", str(tmp_path / "pass.pkl"), "--verifiers", *map(str, verifiers)]
        )
        with pytest.raises(TrainingError, match=message):
            main(args)


# --- the whole loop ------------------------------------------------------------------------


@pytest.mark.slow
def test_each_fold_is_measured_by_a_verifier_that_never_learnt_its_cars(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.training.test_verifier_tune import tune
    from training import train_pass

    # given two fold verifiers on the tiny loop (four intact cars, two detections on each)
    made = [tune(tmp_path, monkeypatch, "--intact-fold", str(k), "--intact-folds", "2",
                 name=f"fold-{k}") for k in range(2)]  # fmt: skip
    photos = made[0][1]
    # then each learnt from the other fold's two cars only
    for out, _ in made:
        report = json.loads(out.with_suffix(".report.json").read_text())
        assert report["examples"]["car-parts"] == {"real": 0, "not_damage": 4}
        assert report["examples"]["damage-severity"] == {"real": 8, "not_damage": 8}
    # when each fold's cars are measured by its own verifier, keeping all the threshold
    # keeps, or dropping what the verifier is less than sure of
    # (the script's own sample of damage photos differs from the one the pass was made on)
    extra = TrainPhoto("damage-severity", tmp_path / "other.jpg", [])
    monkeypatch.setattr(train_pass, "train_photos", lambda hp, root, closeups: [*photos, extra])
    cache_before = (tmp_path / "pass.pkl").read_bytes()
    out = tmp_path / "folds.json"
    args = get_args_parser().parse_args(
        ["--cache", str(tmp_path / "pass.pkl"), "--verifiers", *(str(o) for o, _ in made),
         "--floors", "0.02", "--min-probabilities", "0.5", "--min-base-probabilities", "0",
         "1", "--out", str(out)]
    )  # fmt: skip
    assert main(args) == 0
    # then all four cars were measured; the detector alone flags each, as does the rule
    # that drops nothing, and the rule that drops all under certainty flags none
    measured = read_measured(out)
    assert (measured["folds"], measured["cars"], measured["closeups"]) == (2, 4, 0)
    assert measured["detector_alone"]["intact_photos_with_damage"] == 1.0
    by_drop = {r["verifier"]["min_base_probability"]: r["intact_photos_with_damage"]
               for r in measured["rows"]}  # fmt: skip
    assert by_drop == {0.0: 1.0, 1.0: 0.0}
    # and the pass the fold verifiers learnt from was read, never made again or rewritten
    assert (tmp_path / "pass.pkl").read_bytes() == cache_before


def test_a_cache_without_the_intact_cars_is_one_error_and_stays_as_it_was(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import pickle

    from training import train_pass

    # given a pass cache that holds none of the intact cars
    cache = tmp_path / "pass.pkl"
    cache.write_bytes(pickle.dumps({"conf": 0.02, "detector": "x", "photos": {}}))
    monkeypatch.setattr(train_pass, "train_photos", lambda hp, root, closeups: photos_of(2))
    monkeypatch.setattr(train_pass, "detector_of", lambda chosen, conf: train_pass.Detector("x"))
    verifiers = [tmp_path / f"f{k}.onnx" for k in range(2)]
    for v in verifiers:
        v.write_bytes(b"not read")
    args = get_args_parser().parse_args(
        ["--cache", str(cache), "--verifiers", *map(str, verifiers)]
    )
    # when the cars are to be measured, then it is one error naming the cache, and the cache
    # is as it was
    before = cache.read_bytes()
    with pytest.raises(TrainingError, match="holds no pass over the intact train cars"):
        main(args)
    assert cache.read_bytes() == before


def test_a_recipe_without_close_ups_is_measured_on_the_cars_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import pickle

    from training import train_pass

    # given the served verifier's recipe, whose pass holds no close-up windows
    asked: list[bool] = []

    def photos_asked(hp: Any, root: Any, closeups: Any) -> list[TrainPhoto]:
        asked.append(hp.intact_closeups)
        return photos_of(2)

    cache = tmp_path / "pass.pkl"
    cache.write_bytes(pickle.dumps({"conf": 0.02, "detector": "x", "photos": {}}))
    monkeypatch.setattr(train_pass, "train_photos", photos_asked)
    monkeypatch.setattr(train_pass, "detector_of", lambda chosen, conf: train_pass.Detector("x"))
    verifiers = [tmp_path / f"f{k}.onnx" for k in range(2)]
    for v in verifiers:
        v.write_bytes(b"not read")
    # when its folds are measured with --cars-only (and without)
    for extra in (["--cars-only"], []):
        args = get_args_parser().parse_args(
            ["--cache", str(cache), "--verifiers", *map(str, verifiers), *extra]
        )
        with pytest.raises(TrainingError, match="holds no pass over the intact train cars"):
            main(args)
    # then the photos it looks for in the pass are the cars alone, and with windows without it
    assert asked == [False, True]


def test_the_sweeps_final_choice_carries_its_out_of_fold_figures() -> None:
    from training.verifier_sweep import final_choice

    # given a sweep whose choice is a rule measured out of fold
    rule = {**sweep_row(0.9)["verifier"], "max_overlap": 1.0}
    row = {**sweep_row(0.9), "verifier": rule, "whole_car": None}
    figures = {"intact_photos_with_damage": 0.03, "intact_closeups_with_damage": 0.2}
    measured = {"rows": [{"conf": 0.02, "verifier": row["verifier"], **figures}]}
    # when the final choice is made, then it shows the figures it was chosen within
    assert final_choice([], row, measured)["out_of_fold"] == figures
    assert "out_of_fold" not in final_choice([], row, None)
