"""Registry: register, verify, promote gate (refuse worse unless forced), CLI errors."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from cdat.whole_car import WholeCarRule
from inference.errors import RegistryError
from inference.registry import ModelEntry, PromotionRefused, Registry, sha256_of
from training.cli import main as cli_main


def _entry(model_dir: Path, entry_id: str, task: str = "damage", **metrics: Any) -> ModelEntry:
    path = model_dir / f"{entry_id}.onnx"
    path.write_bytes(entry_id.encode() * 10)
    return ModelEntry(entry_id, task, path.name, sha256_of(path), ["minor-dent"], 64,  # type: ignore[arg-type]
                      metrics=dict(metrics))  # fmt: skip


def _claims(
    cpd: float = 0.6,
    dp: float = 0.45,
    ds: float = 0.23,
    intact: float = 0.19,
    closeups: float | None = 0.4,
) -> dict:
    """The claim figures `cdat evaluate --claims` stores, per test source."""
    recall = {"car-parts-damage": cpd, "damaged-parts": dp, "damage-severity": ds}
    figures = {"damage_recall_iou30": recall, "intact_photos_with_damage": intact}
    if closeups is not None:
        figures["intact_closeups_with_damage"] = closeups
    return figures


BASE: dict[str, Any] = {
    "type_mask_map50": 0.5,
    "severity_balanced_accuracy": 0.7,
    "claims": _claims(),
}


@pytest.fixture
def registry(tmp_path: Path) -> Registry:
    reg = Registry.load(tmp_path)
    reg.register(_entry(tmp_path, "old", **BASE))
    reg.promote("old")
    reg.save()
    return Registry.load(tmp_path)


def test_better_candidate_is_promoted(registry: Registry) -> None:
    registry.register(_entry(registry.model_dir, "new", **{**BASE, "claims": _claims(cpd=0.7)}))
    lines = registry.promote("new")
    assert registry.promoted["damage"] == "new"
    assert any("claims.damage_recall_iou30.car-parts-damage: 0.6" in line for line in lines)
    assert any("claims.intact_photos_with_damage" in line for line in lines)


@pytest.mark.parametrize(
    "metrics",
    [{**BASE, "claims": _claims(cpd=0.5)}, {**BASE, "claims": _claims(ds=0.2)},
     {**BASE, "claims": _claims(intact=0.25)}, {**BASE, "claims": _claims(closeups=0.5)},
     {**BASE, "claims": _claims(closeups=None)}, {**BASE, "severity_balanced_accuracy": 0.6},
     {"type_mask_map50": 0.9, "severity_balanced_accuracy": 0.9}],
)  # fmt: skip
def test_worse_candidate_is_refused_unless_forced(registry: Registry, metrics: dict) -> None:
    registry.register(_entry(registry.model_dir, "new", **metrics))
    with pytest.raises(PromotionRefused, match="--force"):
        registry.promote("new")
    assert registry.promoted["damage"] == "old"
    registry.promote("new", force=True)
    assert registry.promoted["damage"] == "new"


def test_a_damage_model_is_judged_as_a_claim_not_on_typed_map(registry: Registry) -> None:
    # given a candidate that finds more damage on every claim-like source but scores a lower
    # mask mAP on the typed split, which faint scratches on intact cars dominate
    better = {**BASE, "type_mask_map50": 0.35, "claims": _claims(0.65, 0.5, 0.25, 0.1)}
    registry.register(_entry(registry.model_dir, "new", **better))
    # when promoted, then it is: what a claim looks like decides
    registry.promote("new")
    assert registry.promoted["damage"] == "new"


def test_a_promoted_model_measured_before_intact_closeups_does_not_block(tmp_path: Path) -> None:
    # given a promoted model whose stored figures predate the intact close-ups figure
    registry = Registry.load(tmp_path)
    registry.register(_entry(tmp_path, "old", **{**BASE, "claims": _claims(closeups=None)}))
    registry.promote("old")
    # when a candidate as good on every other figure, and measured on close-ups, is promoted
    registry.register(_entry(tmp_path, "new", **BASE))
    lines = registry.promote("new")
    # then it is, and the comparison shows the figure the old one lacks
    assert registry.promoted["damage"] == "new"
    assert "claims.intact_closeups_with_damage: None (old, stored metrics) -> 0.4 (new)" in lines


def test_same_split_baseline_wins_over_stored_metrics(registry: Registry) -> None:
    # given a candidate whose report measured the promoted model's severity on its own split
    entry = _entry(registry.model_dir, "new", **{**BASE, "severity_balanced_accuracy": 0.65})
    entry.metrics["baseline"] = {"id": "old", **BASE, "severity_balanced_accuracy": 0.60}
    del entry.metrics["baseline"]["claims"]
    registry.register(entry)
    # when promoted, then the same-split numbers decide (0.65 > 0.60), and the claim figures
    # the baseline lacks come from the promoted model's stored ones
    lines = registry.promote("new")
    assert registry.promoted["damage"] == "new"
    assert any("severity_balanced_accuracy: 0.6 (old, same split)" in line for line in lines)
    assert any("car-parts-damage: 0.6 (old, stored metrics)" in line for line in lines)


def test_a_same_split_baseline_does_not_hide_worse_claim_figures(registry: Registry) -> None:
    entry = _entry(registry.model_dir, "new", **{**BASE, "claims": _claims(intact=0.3)})
    entry.metrics["baseline"] = {"id": "old", "severity_balanced_accuracy": 0.7}
    registry.register(entry)
    refusal = re.escape("claims.intact_photos_with_damage 0.3000 > 0.1900")
    with pytest.raises(PromotionRefused, match=refusal):
        registry.promote("new")


def test_tampered_file_fails_verification(registry: Registry) -> None:
    entry = registry.get("old")
    registry.path_of(entry).write_bytes(b"changed")
    with pytest.raises(RegistryError, match="SHA-256"):
        registry.verify(entry)


def test_duplicate_id_and_unknown_task_are_refused(registry: Registry) -> None:
    with pytest.raises(RegistryError, match="already registered"):
        registry.register(_entry(registry.model_dir, "old"))
    with pytest.raises(RegistryError, match="unknown task"):
        registry.register(_entry(registry.model_dir, "x", task="wheels"))


@pytest.mark.parametrize("bad", ["", "New Model", "a/b", "..", "a..b", "-x", "x\n", "x" * 81])
def test_an_id_that_names_no_file_safely_is_refused(registry: Registry, bad: str) -> None:
    # given an id a report file could not be named by, or one a command line mangles
    # when it is registered, then the registry refuses it and keeps what it holds
    with pytest.raises(RegistryError, match="use lower-case letters, digits"):
        registry.register(replace(_entry(registry.model_dir, "fine-1"), id=bad))
    assert [e.id for e in registry.entries] == ["old"]


def test_cli_refusal_is_one_error_line(registry: Registry, capsys: pytest.CaptureFixture) -> None:
    registry.register(_entry(registry.model_dir, "new", type_mask_map50=0.1))
    registry.save()
    code = cli_main(["models", "--model-dir", str(registry.model_dir), "promote", "new"])
    err = capsys.readouterr().err
    assert code != 0
    assert err.count("\n") == 1 and err.startswith("error: refusing to promote new over old")
    assert Registry.load(registry.model_dir).promoted["damage"] == "old"


def test_cli_list_marks_promoted(registry: Registry, capsys: pytest.CaptureFixture) -> None:
    assert cli_main(["models", "--model-dir", str(registry.model_dir), "list"]) == 0
    out = capsys.readouterr().out
    assert "* old" in out


def test_cli_bad_config_is_one_error_line(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("task: damage\nformat: coco\n")
    code = cli_main(["convert", "--config", str(bad), "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and "field 'root'" in err


def test_cli_resume_without_a_run_is_one_error_line(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    config = Path(__file__).parents[2] / "datasets" / "damage.yaml"
    code = cli_main(["train", "--config", str(config), "--resume", "--project", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and "nothing to resume" in err


def _named_onnx(path: Path, task: str) -> Path:
    """A loadable ONNX file with the class names and input size the exporter stores."""
    import onnx

    from tests.inference.conftest import make_fake_model

    make_fake_model(path, 64, 1, [])
    model = onnx.load(str(path))
    onnx.helper.set_model_props(model, {"names": "{0: 'dent'}", "description": task})
    onnx.save(model, str(path))
    return path


def test_a_damage_model_is_registered_with_the_whole_car_rule_it_was_measured_with(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    # given a damage model and the report of `cdat evaluate --claims --whole-car-rule`
    onnx_file = _named_onnx(tmp_path / "damage-new.onnx", "damage")
    report = {"split": "test", "per_class": {}, "whole_car_rule": {"min_parts": 6,
              "whole_car_conf": 0.2}}  # fmt: skip
    (tmp_path / "report.json").write_text(json.dumps(report))
    models = ["models", "--model-dir", str(tmp_path / "models")]
    # when it is registered
    assert cli_main([*models, "register", "--file", str(onnx_file), "--task", "damage",
                     "--report", str(tmp_path / "report.json")]) == 0  # fmt: skip
    # then the entry serves that rule, with one look (the report does not say two)
    (entry,) = Registry.load(tmp_path / "models").entries
    assert entry.served_whole_car_rule == WholeCarRule(min_parts=6, whole_car_conf=0.2)
    assert entry.crop_look is False
    # and a report measured with the closer look registers a model served with it
    (tmp_path / "crop.json").write_text(json.dumps(dict(report, crop_look=True)))
    assert cli_main([*models, "register", "--file", str(onnx_file), "--task", "damage",
                     "--report", str(tmp_path / "crop.json"), "--id", "crop-1"]) == 0  # fmt: skip
    assert Registry.load(tmp_path / "models").get("crop-1").crop_look is True
    # and a report measured with the mirrored look, which no entry serves, is one error line
    mirrored = dict(report, crop_look=True, second_looks=["mirrored", "middle"])
    (tmp_path / "mirrored.json").write_text(json.dumps(mirrored))
    capsys.readouterr()
    mirror = ["--report", str(tmp_path / "mirrored.json"), "--id", "mirror-1"]
    assert cli_main([*models, "register", "--file", str(onnx_file), "--task", "damage",
                     *mirror]) == 2  # fmt: skip
    err = capsys.readouterr().err
    assert "mirrored second look" in err and len(err.strip().splitlines()) == 1
    assert [e.id for e in Registry.load(tmp_path / "models").entries][-1] == "crop-1"
    # and a report whose rule cannot be read is one error line, the registry unchanged
    (tmp_path / "bad.json").write_text(json.dumps(dict(report, whole_car_rule={"min_parts": 0})))
    capsys.readouterr()
    assert cli_main([*models, "register", "--file", str(onnx_file), "--task", "damage",
                     "--report", str(tmp_path / "bad.json")]) == 2  # fmt: skip
    err = capsys.readouterr().err
    assert "whole_car_rule: min_parts 0" in err and len(err.strip().splitlines()) == 1
    # and a part model's report may not carry one
    assert cli_main([*models, "register", "--file", str(onnx_file), "--task", "parts",
                     "--report", str(tmp_path / "report.json")]) == 2  # fmt: skip
    assert "belongs to a damage model" in capsys.readouterr().err
    assert len(Registry.load(tmp_path / "models").entries) == 2


def test_a_part_model_measured_under_a_damage_rule_says_so_in_its_metrics(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    # given a part model's report of `cdat evaluate --claims --whole-car-rule`: its claim
    # figures were measured with the promoted damage model under that rule
    onnx_file = _named_onnx(tmp_path / "parts-new.onnx", "parts")
    rule = {"min_parts": 8, "whole_car_conf": 0.2}
    report = {"split": "test", "per_class": {}, "claims": {"found": 1},
              "damage_whole_car_rule": rule}  # fmt: skip
    (tmp_path / "report.json").write_text(json.dumps(report))
    # when it is registered
    assert cli_main(["models", "--model-dir", str(tmp_path / "models"), "register", "--file",
                     str(onnx_file), "--task", "parts", "--report",
                     str(tmp_path / "report.json")]) == 0  # fmt: skip
    # then its metrics name the rule beside the figures, and the part entry serves no rule
    (entry,) = Registry.load(tmp_path / "models").entries
    assert entry.metrics["damage_whole_car_rule"] == rule
    assert entry.metrics["claims"] == {"found": 1}
    assert entry.served_whole_car_rule is None
    # and a report whose damage rule cannot be read is one error line, the registry unchanged
    bad = dict(report, damage_whole_car_rule={"min_parts": 0})
    (tmp_path / "bad.json").write_text(json.dumps(bad))
    capsys.readouterr()
    assert cli_main(["models", "--model-dir", str(tmp_path / "models"), "register", "--file",
                     str(onnx_file), "--task", "parts", "--report",
                     str(tmp_path / "bad.json")]) == 2  # fmt: skip
    err = capsys.readouterr().err
    assert "damage_whole_car_rule: min_parts 0" in err and len(err.strip().splitlines()) == 1
    assert len(Registry.load(tmp_path / "models").entries) == 1


def test_promoting_a_part_model_measured_under_another_damage_rule_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    # given a promoted damage model serving 6+ parts as its whole-car rule
    models = ["models", "--model-dir", str(tmp_path / "models")]
    damage = _named_onnx(tmp_path / "damage-new.onnx", "damage")
    served = {"min_parts": 6, "whole_car_conf": 0.2}
    (tmp_path / "damage.json").write_text(
        json.dumps({"split": "test", "per_class": {}, "whole_car_rule": served})
    )
    assert cli_main([*models, "register", "--file", str(damage), "--task", "damage", "--report",
                     str(tmp_path / "damage.json"), "--id", "damage-1"]) == 0  # fmt: skip
    assert cli_main([*models, "promote", "damage-1"]) == 0
    # and two part models, measured under 8+ parts and under the served rule
    parts = _named_onnx(tmp_path / "parts-new.onnx", "parts")
    for name, rule in (("eight", {"min_parts": 8, "whole_car_conf": 0.2}), ("six", served)):
        (tmp_path / f"{name}.json").write_text(json.dumps(
            {"split": "test", "per_class": {}, "damage_whole_car_rule": rule}))  # fmt: skip
        report = str(tmp_path / f"{name}.json")
        assert cli_main([*models, "register", "--file", str(parts), "--task", "parts",
                         "--report", report, "--id", name]) == 0  # fmt: skip
    capsys.readouterr()
    # when the one measured under 8+ parts is promoted
    assert cli_main([*models, "promote", "eight"]) == 0
    # then it is served, and the output says its claim figures need a damage entry with that
    # rule
    out = capsys.readouterr().out
    assert Registry.load(tmp_path / "models").promoted["parts"] == "eight"
    assert "damage-1 serves" in out and '"min_parts": 8' in out
    # and promoting the one measured under the served rule (forced: these reports hold no
    # figures to compare) says nothing of it
    assert cli_main([*models, "promote", "six", "--force"]) == 0
    assert "serves" not in capsys.readouterr().out


def test_an_entry_without_a_rule_is_stored_as_before(registry: Registry) -> None:
    # given an entry registered with no whole-car rule, saved
    stored = json.loads((registry.model_dir / "registry.json").read_text())["entries"][0]
    # then its stored layout has no new field, and it serves no rule
    assert "whole_car_rule" not in stored and "crop_look" not in stored
    assert registry.get("old").served_whole_car_rule is None


def test_a_damaged_stored_rule_is_a_registry_error(registry: Registry) -> None:
    entry = replace(registry.get("old"), whole_car_rule={"min_parts": 6, "speed": 1})
    with pytest.raises(RegistryError, match=r"old: whole_car_rule: .*unknown field"):
        _ = entry.served_whole_car_rule


def test_the_same_model_file_is_registered_again_with_the_facts_of_its_entry(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    # given a damage model registered with what made it
    onnx_file = _named_onnx(tmp_path / "damage-new.onnx", "damage")
    models = ["models", "--model-dir", str(tmp_path / "models")]
    assert cli_main([*models, "register", "--file", str(onnx_file), "--task", "damage",
                     "--data", "damaged-parts", "--licence", "CC BY 4.0",
                     "--command", "python -m training.train", "--id", "first-1"]) == 0  # fmt: skip
    # when the same file is registered again with the facts of that entry
    assert cli_main([*models, "register", "--file", str(onnx_file), "--task", "damage",
                     "--facts-from", "first-1", "--id", "again-1"]) == 0  # fmt: skip
    # then the new entry says the same of how the model was made
    registry = Registry.load(tmp_path / "models")
    first, again = registry.get("first-1"), registry.get("again-1")
    assert (again.data, again.licence, again.command, again.init) == (
        first.data, first.licence, first.command, first.init,
    )  # fmt: skip
    assert again.data == ["damaged-parts"] and again.licence == "CC BY 4.0"
    # and another model file, an unknown entry or a training run beside it is one error line
    other = _named_onnx(tmp_path / "other.onnx", "other damage")
    for extra, message in (
        (["--file", str(other), "--facts-from", "first-1"], "another model file"),
        (["--file", str(onnx_file), "--facts-from", "nobody-1"], "no model 'nobody-1'"),
        (["--file", str(onnx_file), "--facts-from", "first-1", "--run", str(tmp_path)],
         "give one"),
    ):  # fmt: skip
        capsys.readouterr()
        assert cli_main([*models, "register", "--task", "damage", *extra]) == 2
        err = capsys.readouterr().err
        assert message in err and len(err.strip().splitlines()) == 1
    assert len(Registry.load(tmp_path / "models").entries) == 2


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        (["--facts-from", "nobody-1"], "no model 'nobody-1'"),
        (["--report", "{tmp}/bad.json"], "whole_car_rule: min_parts 0"),
        (["--report", "{tmp}/verifier.json"], "verifier"),
        (["--run", "{tmp}/parts-run"], "trained a parts model, not damage"),
        (["--id", "first-1"], "already registered"),
        (["--id", "../../reports/x"], "model id '../../reports/x': use lower-case"),
        (["--id", ""], "model id '': use lower-case"),
        (["--severity", "{tmp}/missing.json"], "no such severity model"),
        (["--closeup-severity", "{tmp}/missing.json"], "no such close-up severity stage"),
        (["--closeup-severity", "{tmp}/severity.json"], "--closeup-severity: cannot load"),
        (["--closeup-severity-view-below", "0.1"], "beside --closeup-severity"),
    ],
    ids=[
        "facts-from",
        "report",
        "stage",
        "run",
        "id",
        "id-a-path",
        "id-empty",
        "severity",
        "closeup-missing",
        "closeup-broken",
        "closeup-bar-alone",
    ],
)
def test_a_refused_registration_leaves_the_model_directory_as_it_was(
    tmp_path: Path, capsys: pytest.CaptureFixture, bad: list[str], message: str
) -> None:
    # given a model directory holding one registered model
    models = ["models", "--model-dir", str(tmp_path / "models")]
    first = _named_onnx(tmp_path / "first.onnx", "damage")
    assert cli_main([*models, "register", "--file", str(first), "--task", "damage",
                     "--id", "first-1"]) == 0  # fmt: skip
    before = {p.name: p.read_bytes() for p in (tmp_path / "models").iterdir()}
    # ... a new model with its card and severity stage, and one bad option beside them
    new = _named_onnx(tmp_path / "new.onnx", "new damage")
    (tmp_path / "new.md").write_text("# a card")
    (tmp_path / "severity.json").write_text("{}")
    report: dict[str, Any] = {"split": "test", "per_class": {}}
    bad_rule = {"whole_car_rule": {"min_parts": 0}}
    (tmp_path / "bad.json").write_text(json.dumps(report | bad_rule))
    stage = {"file": str(tmp_path / "gone.onnx"), "sha256": "0" * 64,
             "rule": {"base_conf": 0.1, "min_probability": 0.5}}  # fmt: skip
    (tmp_path / "verifier.json").write_text(json.dumps(report | {"verifier": stage}))
    (tmp_path / "parts-run").mkdir()
    (tmp_path / "parts-run" / "cdat_run.json").write_text(json.dumps({"task": "parts"}))
    # when it is registered, then it is one error line
    argv = [*models, "register", "--file", str(new), "--task", "damage", "--card",
            str(tmp_path / "new.md"), "--severity", str(tmp_path / "severity.json"),
            *(a.format(tmp=tmp_path) for a in bad)]  # fmt: skip
    capsys.readouterr()
    assert cli_main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1
    # and nothing was copied into the model directory, nor anything there changed
    after = {p.name: p.read_bytes() for p in (tmp_path / "models").iterdir()}
    assert after == before


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (None, "cannot be read"),
        ("not json", "not JSON"),
        ("[1, 2]", "not a report of cdat evaluate (not an object)"),
        ("{}", "not a report of cdat evaluate (no split, per_class)"),
        ('{"per_class": {}}', "not a report of cdat evaluate (no split)"),
    ],
    ids=["missing", "not-json", "a-list", "empty", "no-split"],
)
def test_a_report_that_is_not_cdat_evaluates_is_one_error_line(
    tmp_path: Path, capsys: pytest.CaptureFixture, text: str | None, message: str
) -> None:
    # given a model and a --report that is missing or not a report of cdat evaluate
    onnx_file = _named_onnx(tmp_path / "damage-new.onnx", "damage")
    report = tmp_path / "report.json"
    if text is not None:
        report.write_text(text)
    # when the model is registered with it
    code = cli_main(["models", "--model-dir", str(tmp_path / "models"), "register", "--file",
                     str(onnx_file), "--task", "damage", "--report", str(report)])  # fmt: skip
    # then it is one error line naming the report, and nothing is registered or copied
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert f"--report {report}: {message}" in err
    assert not (tmp_path / "models").exists() or not any((tmp_path / "models").iterdir())


def test_promoting_a_damage_model_whose_rule_reads_the_view_says_so_without_a_gate_that_does(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    import onnx

    from tests.inference.test_vehicle_gate import make_gate

    def named(gate: Path) -> Path:
        model = onnx.load(str(gate))
        meta = model.metadata_props.add()
        meta.key, meta.value = "names", "{0: 'vehicle'}"
        onnx.save(model, str(gate))
        return gate

    # given a damage model measured under a whole-car rule that reads the gate's view, and
    # two gates: one that reads no view, one that does
    models = ["models", "--model-dir", str(tmp_path / "models")]
    damage = _named_onnx(tmp_path / "damage-new.onnx", "damage")
    rule = {"min_parts": 6, "whole_car_conf": 0.2, "view_probability": 0.5}
    (tmp_path / "damage.json").write_text(
        json.dumps({"split": "test", "per_class": {}, "whole_car_rule": rule})
    )
    (tmp_path / "gate.json").write_text(json.dumps({"split": "test", "per_class": {}}))
    gates = (make_gate(tmp_path / "plain.onnx"), make_gate(tmp_path / "view.onnx", 32, 0.0))
    for gate in map(named, gates):
        assert cli_main([*models, "register", "--file", str(gate), "--task", "gate", "--report",
                         str(tmp_path / "gate.json"), "--id", gate.stem]) == 0  # fmt: skip
    assert cli_main([*models, "register", "--file", str(damage), "--task", "damage", "--report",
                     str(tmp_path / "damage.json"), "--id", "damage-1"]) == 0  # fmt: skip
    assert cli_main([*models, "promote", "plain", "--force"]) == 0
    capsys.readouterr()
    # when the damage model is promoted beside the gate that reads no view
    assert cli_main([*models, "promote", "damage-1", "--force"]) == 0
    # then it is served, and the output says its views are counted by parts until a gate
    # that reads them is promoted
    out = capsys.readouterr().out
    assert Registry.load(tmp_path / "models").promoted["damage"] == "damage-1"
    assert "note: damage-1's whole-car rule reads the photo's view" in out and "plain" in out
    # and promoting the gate that reads the view says nothing of it
    assert cli_main([*models, "promote", "view", "--force"]) == 0
    assert "reads the photo's view" not in capsys.readouterr().out
    # and going back to the plain gate says it again
    assert cli_main([*models, "promote", "plain", "--force"]) == 0
    assert "counted by parts" in capsys.readouterr().out


def test_a_close_up_severity_stage_is_registered_beside_the_damage_model(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    from tests.inference.test_severity_by_view import always_minor

    # given a damage model and a severity stage for its close-ups
    models = ["models", "--model-dir", str(tmp_path / "models")]
    onnx_file = _named_onnx(tmp_path / "damage.onnx", "damage")
    stage = always_minor(tmp_path / "closeup-stage.json")
    # when it is registered with it, then the entry names the stage, copied beside it
    assert cli_main([*models, "register", "--file", str(onnx_file), "--task", "damage",
                     "--closeup-severity", str(stage), "--closeup-severity-view-below", "0.1",
                     "--id", "d-1"]) == 0  # fmt: skip
    entry = Registry.load(tmp_path / "models").entries[0]
    assert entry.closeup_severity_model == "closeup-stage.json"
    assert entry.closeup_severity_view_below == 0.1
    assert (tmp_path / "models" / "closeup-stage.json").read_bytes() == stage.read_bytes()
    # and a part model given one is one error line, registering nothing more
    parts = _named_onnx(tmp_path / "parts.onnx", "parts")
    capsys.readouterr()
    assert cli_main([*models, "register", "--file", str(parts), "--task", "parts",
                     "--closeup-severity", str(stage)]) == 2  # fmt: skip
    assert "a damage model's stage, not a parts model's" in capsys.readouterr().err
    assert len(Registry.load(tmp_path / "models").entries) == 1


def test_a_layer_severity_head_is_registered_only_beside_the_model_it_reads(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    from tests.inference.test_layer_severity import biased_head

    # given a damage model, and a close-up head trained on another model's layers
    models = ["models", "--model-dir", str(tmp_path / "models")]
    onnx_file = _named_onnx(tmp_path / "damage.onnx", "damage")
    other = _named_onnx(tmp_path / "other.onnx", "parts")
    head = biased_head(tmp_path / "head.json", other, (0.6, 0.3, 0.1))
    # when it is registered beside the damage model, then one error line, nothing registered
    assert cli_main([*models, "register", "--file", str(onnx_file), "--task", "damage",
                     "--closeup-severity", str(head)]) == 2  # fmt: skip
    assert "reads the layers of another model" in capsys.readouterr().err
    assert not (tmp_path / "models" / "registry.json").exists()
    # and a head on the damage model's own layers is registered and copied beside it
    head = biased_head(tmp_path / "own.json", onnx_file, (0.6, 0.3, 0.1))
    assert cli_main([*models, "register", "--file", str(onnx_file), "--task", "damage",
                     "--closeup-severity", str(head), "--id", "d-1"]) == 0  # fmt: skip
    assert Registry.load(tmp_path / "models").entries[0].closeup_severity_model == "own.json"


def test_a_damage_model_is_registered_with_the_zoomed_out_look_it_was_measured_with(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    # given a damage model and the report of `cdat evaluate --claims --zoom-look-view-below`
    onnx_file = _named_onnx(tmp_path / "damage-new.onnx", "damage")
    report = {"split": "test", "per_class": {}, "zoom_look_view_below": 0.5}
    (tmp_path / "zoom.json").write_text(json.dumps(report))
    models = ["models", "--model-dir", str(tmp_path / "models")]
    register = [*models, "register", "--file", str(onnx_file), "--task", "damage", "--report"]
    # when it is registered, then its entry takes the look on photos read under 0.5
    assert cli_main([*register, str(tmp_path / "zoom.json"), "--id", "zoom-1"]) == 0
    assert Registry.load(tmp_path / "models").get("zoom-1").zoom_look_view_below == 0.5
    # and a report naming a bar that is no probability is one error line, nothing registered
    for bad in (0, 2, True, "half"):
        (tmp_path / "bad.json").write_text(json.dumps(dict(report, zoom_look_view_below=bad)))
        capsys.readouterr()
        assert cli_main([*register, str(tmp_path / "bad.json"), "--id", "bad-1"]) == 2
        err = capsys.readouterr().err
        assert "zoom_look_view_below" in err and len(err.strip().splitlines()) == 1
    assert [e.id for e in Registry.load(tmp_path / "models").entries] == ["zoom-1"]
    # and a report measured with the looks only where damage is found registers them
    found = dict(report, zoom_look_where_found=True, middle_look_where_found=True)
    (tmp_path / "found.json").write_text(json.dumps(found))
    assert cli_main([*register, str(tmp_path / "found.json"), "--id", "found-1"]) == 0
    entry = Registry.load(tmp_path / "models").get("found-1")
    assert (entry.zoom_look_where_found, entry.middle_look_where_found) == (True, True)
    # but one naming the zoomed-out look where found without its bar is refused, nothing kept
    del found["zoom_look_view_below"]
    (tmp_path / "unbarred.json").write_text(json.dumps(found))
    capsys.readouterr()
    assert cli_main([*register, str(tmp_path / "unbarred.json"), "--id", "unbarred-1"]) == 2
    assert "zoom_look_where_found without its view bar" in capsys.readouterr().err
    assert [e.id for e in Registry.load(tmp_path / "models").entries] == ["zoom-1", "found-1"]


def _looks_report(tmp_path: Path, second_names: str = "{0: 'dent'}") -> tuple[Path, dict]:
    """A damage model and the report of `cdat evaluate --claims --middle-look-where-found
    --corner-looks-where-found --detector-where-found <a detector outside the model
    directory, of classes `second_names`>`."""
    import onnx

    onnx_file = _named_onnx(tmp_path / "damage-new.onnx", "damage")
    (tmp_path / "elsewhere").mkdir()
    second = _named_onnx(tmp_path / "elsewhere" / "second.onnx", "damage")
    model = onnx.load(str(second))
    onnx.helper.set_model_props(model, {"names": second_names, "description": "damage"})
    onnx.save(model, str(second))
    detector = {"file": str(second), "sha256": sha256_of(second)}
    report = {"split": "test", "per_class": {}, "middle_look_where_found": True,
              "corner_looks_where_found": True, "detector_where_found": detector}  # fmt: skip
    return onnx_file, report


def test_a_damage_model_is_registered_with_the_corners_and_second_detector_it_was_measured_with(
    tmp_path: Path,
) -> None:
    # given a damage model, a second detector outside the model directory, and the report
    onnx_file, report = _looks_report(tmp_path)
    (tmp_path / "looks.json").write_text(json.dumps(report))
    models = ["models", "--model-dir", str(tmp_path / "models")]
    register = [*models, "register", "--file", str(onnx_file), "--task", "damage", "--report"]
    # when it is registered
    assert cli_main([*register, str(tmp_path / "looks.json"), "--id", "looks-1"]) == 0
    # then its entry takes both looks, and the second detector is copied beside the model
    entry = Registry.load(tmp_path / "models").get("looks-1")
    assert entry.corner_looks_where_found is True
    sha256 = report["detector_where_found"]["sha256"]
    assert entry.detector_where_found == {"file": "second.onnx", "sha256": sha256}
    assert sha256_of(tmp_path / "models" / "second.onnx") == sha256


@pytest.mark.parametrize(
    ("spoil", "message", "second_names"),
    [
        (lambda r: {k: v for k, v in r.items() if k != "middle_look_where_found"},
         "corner_looks_where_found without middle_look_where_found", "{0: 'dent'}"),
        (lambda r: dict(r, detector_where_found={**r["detector_where_found"], "sha256": "0" * 64}),
         "detector_where_found .* is missing or not the file measured", "{0: 'dent'}"),
        (lambda r: dict(r, detector_where_found={"file": r["detector_where_found"]["file"]}),
         "detector_where_found: model file: sha256 required", "{0: 'dent'}"),
        (lambda r: r, "second detector .* predicts other classes", "{0: 'hood'}"),
    ],
)  # fmt: skip
def test_a_report_of_looks_no_entry_can_serve_is_one_error_and_registers_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture, spoil: Any, message: str, second_names: str
) -> None:
    # given a report whose corners or second detector are not what can be served
    onnx_file, report = _looks_report(tmp_path, second_names)
    (tmp_path / "bad.json").write_text(json.dumps(spoil(report)))
    models = ["models", "--model-dir", str(tmp_path / "models")]
    # when it is registered, then it is one error line naming the fault, and nothing is kept
    assert cli_main([*models, "register", "--file", str(onnx_file), "--task", "damage",
                     "--report", str(tmp_path / "bad.json"), "--id", "bad-1"]) == 2  # fmt: skip
    err = capsys.readouterr().err
    assert re.search(message, err) and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "models").exists() or not any((tmp_path / "models").iterdir())


CURVES = {
    "close_up": {"slope": 0.6, "intercept": 2.1},
    "whole_car": {"slope": 0.9, "intercept": -0.4},
    "view_unread": {"slope": 0.7, "intercept": 1.6},
    "whole_car_view_from": 0.5,
}


def test_a_damage_model_is_registered_with_the_curves_that_read_its_scores(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    # given a damage model and the calibration `python -m training.calibrate` fitted for it
    models = ["models", "--model-dir", str(tmp_path / "models")]
    onnx_file = _named_onnx(tmp_path / "damage.onnx", "damage")
    curves = tmp_path / "calibration.json"
    curves.write_text(json.dumps(CURVES))
    # when it is registered with them, then its entry stores them and serves them
    assert cli_main([*models, "register", "--file", str(onnx_file), "--task", "damage",
                     "--calibration", str(curves), "--id", "d-1"]) == 0  # fmt: skip
    entry = Registry.load(tmp_path / "models").get("d-1")
    assert entry.confidence_calibration == CURVES
    served = entry.served_calibration
    assert served is not None and served.close_up.slope == 0.6
    # and curves given a part model, a falling curve or a file that is none are one error
    # line each, registering nothing more
    falling = tmp_path / "falling.json"
    falling.write_text(json.dumps({**CURVES, "whole_car": {"slope": 0, "intercept": 0}}))
    parts = _named_onnx(tmp_path / "parts.onnx", "parts")
    for file, task, message in (
        (parts, "parts", "not a parts model's"),
        (onnx_file, "damage", "whole_car: slope 0"),
        (onnx_file, "damage", "not a calibration"),
    ):
        capsys.readouterr()
        given = falling if "slope" in message else curves if task == "parts" else tmp_path
        assert cli_main([*models, "register", "--file", str(file), "--task", task,
                         "--calibration", str(given)]) == 2  # fmt: skip
        err = capsys.readouterr().err
        assert message in err and len(err.strip().splitlines()) == 1
    assert len(Registry.load(tmp_path / "models").entries) == 1


def test_an_entry_without_curves_is_stored_as_before_and_reports_scores(
    registry: Registry,
) -> None:
    stored = json.loads((registry.model_dir / "registry.json").read_text())["entries"][0]
    assert "confidence_calibration" not in stored
    assert registry.get("old").served_calibration is None


def test_a_registered_damage_model_is_calibrated_as_a_new_entry_and_promoted(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    # given a promoted damage model with metrics, and curves fitted for its scores
    models = ["models", "--model-dir", str(tmp_path / "models")]
    onnx_file = _named_onnx(tmp_path / "damage.onnx", "damage")
    assert cli_main([*models, "register", "--file", str(onnx_file), "--task", "damage",
                     "--command", "python -m training.train", "--id", "d-1"]) == 0  # fmt: skip
    registry = Registry.load(tmp_path / "models")
    registry.entries[0] = replace(registry.entries[0], metrics=dict(BASE))
    registry.promote("d-1")
    registry.save()
    curves = tmp_path / "calibration.json"
    curves.write_text(json.dumps(CURVES))
    # when it is calibrated
    assert cli_main([*models, "calibrate", "d-1", "--calibration", str(curves),
                     "--command", "python -m training.calibrate --split val"]) == 0  # fmt: skip
    # then a new entry serves the same file, stages and figures, with the curves, and says how
    registry = Registry.load(tmp_path / "models")
    before, after = registry.get("d-1"), registry.get("d-2")
    assert after.confidence_calibration == CURVES and before.confidence_calibration == {}
    assert (after.file, after.sha256, after.metrics) == (before.file, before.sha256, BASE)
    assert after.command.startswith("python -m training.train; as d-1, its scores read as ")
    assert after.command.endswith("python -m training.calibrate --split val")
    # and the promotion gate lets it through: nothing it measures changed
    assert cli_main([*models, "promote", "d-2"]) == 0
    assert Registry.load(tmp_path / "models").promoted["damage"] == "d-2"
    # and an unknown entry, a part model, curves that are none, or a taken id are one error
    # line each, registering nothing more
    parts = _named_onnx(tmp_path / "parts.onnx", "parts")
    assert cli_main([*models, "register", "--file", str(parts), "--task", "parts",
                     "--id", "p-1"]) == 0  # fmt: skip
    for entry, given, extra, message in (
        ("nobody-1", curves, [], "no model 'nobody-1'"),
        ("p-1", curves, [], "not a parts model's"),
        ("d-1", tmp_path, [], "not a calibration"),
        ("d-1", curves, ["--new-id", "d-2"], "'d-2' is already registered"),
        ("d-1", curves, ["--new-id", "D 3"], "model id 'D 3': use lower-case"),
        ("d-1", curves, ["--new-id", ""], "model id '': use lower-case"),
    ):
        capsys.readouterr()
        argv = [*models, "calibrate", entry, "--calibration", str(given), *extra]
        assert cli_main(argv) == 2
        err = capsys.readouterr().err
        assert message in err and len(err.strip().splitlines()) == 1
    assert len(Registry.load(tmp_path / "models").entries) == 3
