"""A verifier by view: the served verifier reads whole-car views, a close-up verifier every
other photo (inference/damage_verifier.py, `DamageVerifier.closeup`), as the registry entry's
`closeup_verifier` says.

The handcrafted verifiers of test_damage_verifier.py: the served one confirms red crops;
the close-up one weighs the score logit so heavily that it confirms nothing under a score of
0.5, whatever the colour.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from cdat.errors import ModelUnavailable
from cdat.settings import Settings
from cdat.verified import VerifierRule
from cdat.whole_car import WholeCarRule
from inference.damage_verifier import DamageVerifier, load_verifier
from inference.errors import RegistryError
from inference.loading import build_analyzer
from inference.registry import Registry, sha256_of
from inference.stage_record import StageRecord

from .test_damage_verifier import (
    BLUE_HIGH,
    RED_LOW,
    RULE,
    SERVED_RULE,
    boxes,
    damage_entry,
    kept_scene,
    make_verifier,
    png,
    red_and_blue,
    served_scene,
)

DOUBTING = {0: 100.0}
"""Extras weights of the close-up verifier: p = sigmoid(colour + 100 * score logit)."""


def by_view(model_dir: Path, whole_car: WholeCarRule, closeup_rule: VerifierRule = SERVED_RULE
            ) -> Settings:  # fmt: skip
    """The served scene with the red-confirming verifier and the doubting close-up one."""
    model_dir.mkdir(parents=True)
    served = make_verifier(model_dir / "damage-verifier-1.onnx")
    near = make_verifier(model_dir / "damage-verifier-closeups-1.onnx", weights=DOUBTING)
    settings = served_scene(
        model_dir, StageRecord(served.name, sha256_of(served), SERVED_RULE).to_record(), whole_car
    )
    registry = Registry.load(model_dir)
    k = next(i for i, e in enumerate(registry.entries) if e.task == "damage")
    record = StageRecord(near.name, sha256_of(near), closeup_rule).to_record()
    registry.entries[k] = replace(registry.entries[k], closeup_verifier=record)
    registry.save()
    return settings


def test_kept_asks_the_closeup_verifier_only_on_a_photo_of_no_whole_car(tmp_path: Path) -> None:
    # given the red-confirming verifier with a doubting close-up verifier beside it
    verifier = DamageVerifier.load(make_verifier(tmp_path / "v.onnx"), RULE)
    verifier.closeup = DamageVerifier.load(
        make_verifier(tmp_path / "c.onnx", weights=DOUBTING), RULE
    )
    image, damages = kept_scene()
    base = [False, False, True, True]
    # when a close-up is read, then nothing under the base is added
    assert verifier.kept(image, (2.0, 2.0), damages, [], (400, 200), base) == [2, 3]
    # when a whole-car view is read, then the red damage under the base is added as ever
    got = verifier.kept(image, (2.0, 2.0), damages, [], (400, 200), base, whole_car_view=True)
    assert got == [0, 2, 3]


def test_the_analyzer_reads_each_view_with_its_own_verifier(tmp_path: Path) -> None:
    # given a damage model promoted with both verifiers, and a whole-car rule for which the
    # photo (2 parts) is a whole-car view
    whole = WholeCarRule(min_parts=2, whole_car_conf=0.6)
    analyzer = build_analyzer(by_view(tmp_path / "whole", whole))
    assert analyzer.verifier is not None and analyzer.verifier.closeup is not None
    assert analyzer.verifier.closeup.version == "damage-verifier-closeups-1"
    # when it analyses the photo, then the served verifier adds the low dent on red
    (result,) = analyzer.analyze([png(red_and_blue(), "p")])
    assert boxes(result.damages) == [RED_LOW]
    # and where the photo is no whole-car view (3 parts wanted), the close-up verifier
    # reads it and adds nothing: only the dent the threshold keeps is left
    close = WholeCarRule(min_parts=3, whole_car_conf=0.6)
    (closer,) = build_analyzer(by_view(tmp_path / "close", close)).analyze(
        [png(red_and_blue(), "p")]
    )
    assert boxes(closer.damages) == [BLUE_HIGH]


def test_with_the_whole_car_rule_off_the_closeup_verifier_reads_every_photo(
    tmp_path: Path,
) -> None:
    # given the whole-car view of the test above, with the operator's whole-car rule off
    settings = by_view(tmp_path / "m", WholeCarRule(min_parts=2, whole_car_conf=0.6))
    analyzer = build_analyzer(settings.model_copy(update={"damage_whole_car": False}))
    # when it analyses the photo, then no view is known and the close-up verifier reads it
    (result,) = analyzer.analyze([png(red_and_blue(), "p")])
    assert analyzer.whole_car is None
    assert boxes(result.damages) == [BLUE_HIGH]


def test_turning_the_verifier_off_turns_off_both(tmp_path: Path) -> None:
    settings = by_view(tmp_path / "m", WholeCarRule(min_parts=3, whole_car_conf=0.6))
    analyzer = build_analyzer(settings.model_copy(update={"damage_verifier": False}))
    assert analyzer.verifier is None


def test_a_closeup_verifier_file_changed_after_registering_is_not_served(tmp_path: Path) -> None:
    settings = by_view(tmp_path / "m", WholeCarRule(min_parts=3, whole_car_conf=0.6))
    make_verifier(settings.model_dir / "damage-verifier-closeups-1.onnx")
    with pytest.raises(ModelUnavailable, match=r"close-up damage verifier .* does not match"):
        build_analyzer(settings)


def test_a_closeup_verifier_is_loaded_from_its_record(tmp_path: Path) -> None:
    served, near = make_verifier(tmp_path / "v.onnx"), make_verifier(tmp_path / "c.onnx")
    verifier = load_verifier(
        tmp_path, StageRecord(served.name, sha256_of(served), RULE), tmp_path / "damage.onnx",
        closeup=StageRecord(near.name, sha256_of(near), RULE),
    )  # fmt: skip
    assert verifier.closeup is not None and verifier.closeup.version == "c"
    assert verifier.closeup.closeup is None


# --- the registry entry --------------------------------------------------------------------


def test_an_entry_without_a_closeup_verifier_reads_every_photo_with_its_verifier() -> None:
    entry = damage_entry(verifier=StageRecord("v.onnx", "ab" * 32, RULE).to_record())
    assert entry.served_closeup_verifier is None


def test_a_closeup_verifier_record_reads_back_and_survives_the_registry_file(
    tmp_path: Path,
) -> None:
    record = StageRecord("c.onnx", "cd" * 32, RULE)
    entry = damage_entry(verifier=StageRecord("v.onnx", "ab" * 32, RULE).to_record(),
                         closeup_verifier=record.to_record())  # fmt: skip
    Registry(tmp_path, [entry, replace(damage_entry(), id="damage-x-2")], {}).save()
    loaded = Registry.load(tmp_path)
    assert loaded.get("damage-x-1").served_closeup_verifier == record
    assert loaded.get("damage-x-2").served_closeup_verifier is None
    assert (tmp_path / "registry.json").read_text().count('"closeup_verifier"') == 1


@pytest.mark.parametrize(
    ("verifier", "closeup", "message"),
    [
        ({}, StageRecord("c.onnx", "0" * 64, RULE).to_record(), "without a verifier"),
        (StageRecord("v.onnx", "0" * 64, RULE).to_record(),
         StageRecord("c.onnx", "0" * 64, replace(RULE, base_conf=0.2)).to_record(),
         "base_conf 0.2 is not the verifier's 0.3"),
        (StageRecord("v.onnx", "0" * 64, RULE).to_record(), {"file": "c.onnx"}, "required"),
    ],
)  # fmt: skip
def test_a_closeup_verifier_record_that_cannot_serve_is_a_registry_error(
    verifier: dict[str, object], closeup: dict[str, object], message: str
) -> None:
    entry = damage_entry(verifier=verifier, closeup_verifier=closeup)
    with pytest.raises(RegistryError, match=rf"damage-x-1: closeup_verifier.*{message}"):
        _ = entry.served_closeup_verifier


def test_a_closeup_verifier_record_that_cannot_serve_makes_the_damage_model_unavailable(
    tmp_path: Path,
) -> None:
    rule = replace(SERVED_RULE, base_conf=0.2)
    settings = by_view(tmp_path / "m", WholeCarRule(min_parts=3, whole_car_conf=0.6), rule)
    with pytest.raises(ModelUnavailable, match=r"damage model: damage-fake-1: closeup_verifier"):
        build_analyzer(settings)


# --- registered as measured ----------------------------------------------------------------


def test_a_model_measured_with_both_verifiers_is_registered_with_both(tmp_path: Path) -> None:
    import json

    from tests.training.test_registry import _named_onnx
    from training.cli import main as cli_main

    # given a damage model and the report of `cdat evaluate --claims --verifier ...
    # --closeup-verifier ...`, its stages where the evaluation found them
    model = _named_onnx(tmp_path / "damage-new.onnx", "damage")
    (tmp_path / "runs").mkdir()
    served = make_verifier(tmp_path / "runs" / "damage-verifier-2.onnx")
    near = make_verifier(tmp_path / "runs" / "damage-verifier-closeups-2.onnx", weights=DOUBTING)
    report = {
        "split": "test",
        "per_class": {},
        "verifier": StageRecord(str(served), sha256_of(served), RULE).to_record(),
        "closeup_verifier": StageRecord(str(near), sha256_of(near), RULE).to_record(),
    }
    (tmp_path / "report.json").write_text(json.dumps(report))
    models = ["models", "--model-dir", str(tmp_path / "models")]
    # when it is registered from the report
    assert cli_main([*models, "register", "--file", str(model), "--task", "damage",
                     "--report", str(tmp_path / "report.json")]) == 0  # fmt: skip
    # then both verifiers are copied beside it and its entry serves both
    entry = Registry.load(tmp_path / "models").entries[-1]
    assert entry.served_closeup_verifier == StageRecord(
        "damage-verifier-closeups-2.onnx", sha256_of(near), RULE
    )
    assert entry.served_verifier == StageRecord("damage-verifier-2.onnx", sha256_of(served), RULE)
    copied = tmp_path / "models" / "damage-verifier-closeups-2.onnx"
    assert copied.read_bytes() == near.read_bytes()


@pytest.mark.parametrize(
    ("with_verifier", "closeup_base", "message"),
    [
        (False, 0.3, "a close-up damage verifier reads close-ups beside a damage verifier"),
        (True, 0.2, "base_conf 0.2 is not the damage verifier's 0.3"),
    ],
)
def test_a_report_whose_closeup_verifier_cannot_serve_registers_nothing(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    with_verifier: bool,
    closeup_base: float,
    message: str,
) -> None:
    import json

    from tests.training.test_registry import _named_onnx
    from training.cli import main as cli_main

    # given a report whose close-up verifier has no verifier beside it, or another threshold
    model = _named_onnx(tmp_path / "damage-new.onnx", "damage")
    (tmp_path / "runs").mkdir()
    served = make_verifier(tmp_path / "runs" / "damage-verifier-2.onnx")
    near = make_verifier(tmp_path / "runs" / "damage-verifier-closeups-2.onnx", weights=DOUBTING)
    rule = replace(RULE, base_conf=closeup_base)
    report: dict[str, object] = {
        "split": "test",
        "per_class": {},
        "closeup_verifier": StageRecord(str(near), sha256_of(near), rule).to_record(),
    }
    if with_verifier:
        report["verifier"] = StageRecord(str(served), sha256_of(served), RULE).to_record()
    (tmp_path / "report.json").write_text(json.dumps(report))
    models = tmp_path / "models"
    # when it is registered, then it is one error line and the model directory is untouched
    code = cli_main(["models", "--model-dir", str(models), "register", "--file", str(model),
                     "--task", "damage", "--report", str(tmp_path / "report.json")])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1
    assert not models.exists() or not any(models.iterdir())


def test_the_gate_s_reading_of_the_view_decides_which_verifier_reads_a_photo(
    tmp_path: Path,
) -> None:
    from .test_vehicle_gate import add_gate

    # given the scene whose photo (2 parts) is a whole-car view by its part count, a rule
    # that reads the view where the gate reads one, and a gate that reads it as a close-up
    rule = WholeCarRule(min_parts=2, whole_car_conf=0.6, view_probability=0.5)
    close = add_gate(by_view(tmp_path / "close", rule), threshold=0.001, view_logit=-30.0)
    # when the photo is analysed, then the close-up verifier reads it: nothing is added
    (result,) = build_analyzer(close).analyze([png(red_and_blue(), "p")])
    assert result.whole_car_view_probability is not None
    assert result.whole_car_view_probability < 0.5
    assert boxes(result.damages) == [BLUE_HIGH]
    # and read as a whole car, the served verifier reads it and adds the low dent on red
    whole = add_gate(by_view(tmp_path / "whole", rule), threshold=0.001, view_logit=30.0)
    (again,) = build_analyzer(whole).analyze([png(red_and_blue(), "p")])
    assert boxes(again.damages) == [RED_LOW]


def test_with_a_gate_that_reads_no_view_the_part_count_decides(tmp_path: Path) -> None:
    from .test_vehicle_gate import add_gate

    # given the same rule and a gate with no view output
    rule = WholeCarRule(min_parts=2, whole_car_conf=0.6, view_probability=0.5)
    settings = add_gate(by_view(tmp_path / "m", rule), threshold=0.001)
    # when the photo is analysed, then its two parts make it a whole-car view, as before
    (result,) = build_analyzer(settings).analyze([png(red_and_blue(), "p")])
    assert result.whole_car_view_probability is None
    assert boxes(result.damages) == [RED_LOW]


def test_a_rule_that_reads_the_view_without_a_gate_that_reads_one_is_logged(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from .test_vehicle_gate import add_gate

    # given a damage model whose rule reads the view, and a gate that reads none
    rule = WholeCarRule(min_parts=2, whole_car_conf=0.6, view_probability=0.5)
    settings = add_gate(by_view(tmp_path / "m", rule), threshold=0.001)
    # when the analyzer is built, then the operator is told the parts decide instead
    with caplog.at_level("WARNING", logger="inference.loading"):
        build_analyzer(settings)
    assert "reads no view" in caplog.text and "gate-fake-1" in caplog.text
