"""A stage measured with a model and registered beside it: `cdat evaluate --family-stage /
--verifier / --placer` (training/eval_stages.py `measured_stage`) and `cdat register --report`
(training/registry_cli.py `_report_stage`; a placer's registering:
tests/inference/test_placer.py)."""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from cdat.errors import CdatError
from cdat.part_family import FamilyRule
from cdat.placement import PlacementRule
from cdat.verified import VerifierRule
from inference.registry import sha256_of
from inference.stage_record import StageRecord
from training.claims import verifier_rule_arg
from training.errors import TrainingError
from training.eval_stages import measured_closeup_verifier, measured_stage
from training.evaluate import get_args_parser
from training.registry_cli import _report_stage

VERIFIER_RULE = VerifierRule(base_conf=0.3, min_probability=0.7)
FAMILY_RULE = FamilyRule(0.8)
PLACEMENT_RULE = PlacementRule(0.6)
MODEL = Path("model-registered.onnx")
"""The model being registered: a whole stage never reads it."""


def stage_file(path: Path, body: bytes = b"a stage") -> Path:
    """A tiny whole stage (crop in, one number out), told apart from others by `body`."""
    import onnx
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("ReduceMean", ["images"], ["answer"], axes=[1, 2, 3], keepdims=0)],
        "stage",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, ["batch", 3, 8, 8])],
        [helper.make_tensor_value_info("answer", TensorProto.FLOAT, ["batch"])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    entry = model.metadata_props.add()
    entry.key, entry.value = "description", body.decode()
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(path))
    return path


# --- _stage --------------------------------------------------------------------------------


def namespace(**given: Any) -> argparse.Namespace:
    """The evaluate options `measured_stage` reads, none given unless named."""
    values: dict[str, Any] = {"claims": False, "family_stage": None, "family_rule": None,
                              "verifier": None, "verifier_rule": None, "placer": None,
                              "placer_rule": None}  # fmt: skip
    values.update(given)
    return argparse.Namespace(**values)


OPTIONS: dict[str, tuple[str, str, Any, str, str]] = {
    # option: (path attribute, rule attribute, a rule, the task it belongs to, another task)
    "verifier": ("verifier", "verifier_rule", VERIFIER_RULE, "damage", "parts"),
    "family-stage": ("family_stage", "family_rule", FAMILY_RULE, "parts", "damage"),
    "placer": ("placer", "placer_rule", PLACEMENT_RULE, "damage", "parts"),
}


@pytest.mark.parametrize("option", list(OPTIONS))
def test_neither_file_nor_rule_measures_without_a_stage(option: str) -> None:
    _, _, _, task, _ = OPTIONS[option]
    assert measured_stage(namespace(claims=True), task, option) is None
    assert measured_stage(namespace(), task, option) is None


@pytest.mark.parametrize("option", list(OPTIONS))
def test_a_stage_is_recorded_as_its_entry_would_store_it(tmp_path: Path, option: str) -> None:
    # given the stage's file and rule, for a model of its task measured with --claims
    path_key, rule_key, rule, task, _ = OPTIONS[option]
    path = stage_file(tmp_path / "stage.onnx")
    args = namespace(claims=True, **{path_key: path, rule_key: rule})
    # when the option is read, then it is the path given, its checksum and its rule
    assert measured_stage(args, task, option) == StageRecord(str(path), sha256_of(path), rule)


@pytest.mark.parametrize("option", list(OPTIONS))
def test_a_file_without_its_rule_or_a_rule_without_its_file_is_refused(
    tmp_path: Path, option: str
) -> None:
    path_key, rule_key, rule, task, _ = OPTIONS[option]
    rule_option = rule_key.replace("_", "-")
    path = stage_file(tmp_path / "stage.onnx")
    for given in ({path_key: path}, {rule_key: rule}):
        with pytest.raises(TrainingError, match=f"--{option} and --{rule_option} go together"):
            measured_stage(namespace(claims=True, **given), task, option)


@pytest.mark.parametrize("option", list(OPTIONS))
def test_a_stage_applies_only_to_its_task_measured_with_claims(tmp_path: Path, option: str) -> None:
    path_key, rule_key, rule, task, other = OPTIONS[option]
    path = stage_file(tmp_path / "stage.onnx")
    message = f"--{option} applies to a {task} model measured with --claims"
    with pytest.raises(TrainingError, match=message):
        measured_stage(namespace(claims=False, **{path_key: path, rule_key: rule}), task, option)
    with pytest.raises(TrainingError, match=message):
        measured_stage(namespace(claims=True, **{path_key: path, rule_key: rule}), other, option)


@pytest.mark.parametrize("option", list(OPTIONS))
def test_a_missing_stage_file_is_refused(tmp_path: Path, option: str) -> None:
    path_key, rule_key, rule, task, _ = OPTIONS[option]
    args = namespace(claims=True, **{path_key: tmp_path / "gone.onnx", rule_key: rule})
    with pytest.raises(TrainingError, match=rf"--{option} .*gone\.onnx: no such file"):
        measured_stage(args, task, option)


def test_the_options_of_one_stage_do_not_touch_the_other(tmp_path: Path) -> None:
    # given a verifier for a damage model, then it is no part-family stage, and vice versa
    path = stage_file(tmp_path / "stage.onnx")
    damage = namespace(claims=True, verifier=path, verifier_rule=VERIFIER_RULE)
    assert measured_stage(damage, "damage", "family-stage") is None
    parts = namespace(claims=True, family_stage=path, family_rule=FAMILY_RULE)
    assert measured_stage(parts, "parts", "verifier") is None


def test_the_family_stage_options_are_read_from_the_command_line(tmp_path: Path) -> None:
    path = stage_file(tmp_path / "stage.onnx")
    args = get_args_parser().parse_args(
        ["--config", "c.yaml", "--model", "m.onnx", "--claims", "--family-stage", str(path),
         "--family-rule", '{"min_probability": 0.8}']
    )  # fmt: skip
    assert measured_stage(args, "parts", "family-stage") == StageRecord(
        str(path), sha256_of(path), FAMILY_RULE
    )


def test_the_placer_options_are_read_from_the_command_line(tmp_path: Path) -> None:
    args = get_args_parser().parse_args(["--config", "c.yaml", "--model", "m.onnx"])
    assert measured_stage(args, "damage", "placer") is None
    path = stage_file(tmp_path / "head.onnx")
    args = get_args_parser().parse_args(
        ["--config", "c.yaml", "--model", "m.onnx", "--claims", "--placer", str(path),
         "--placer-rule", '{"min_iou": 0.6}']
    )  # fmt: skip
    assert measured_stage(args, "damage", "placer") == StageRecord(
        str(path), sha256_of(path), PLACEMENT_RULE
    )


def test_a_bad_placer_rule_is_refused_on_the_command_line(
    capsys: pytest.CaptureFixture[str],
) -> None:
    for rule in ('{"min_iou": 0}', '{"min_iou": 0.5, "max_iou": 1}', "not json"):
        with pytest.raises(SystemExit):
            get_args_parser().parse_args(
                ["--config", "c.yaml", "--model", "m.onnx", "--placer-rule", rule]
            )
        assert "--placer-rule" in capsys.readouterr().err


def test_the_verifier_options_are_read_from_the_command_line(tmp_path: Path) -> None:
    # given an evaluation without a verifier: main reads the verifier options all the same
    args = get_args_parser().parse_args(["--config", "c.yaml", "--model", "m.onnx"])
    assert measured_stage(args, "damage", "verifier") is None
    # and with one, it is recorded
    path = stage_file(tmp_path / "stage.onnx")
    args = get_args_parser().parse_args(
        ["--config", "c.yaml", "--model", "m.onnx", "--claims", "--verifier", str(path),
         "--verifier-rule", '{"base_conf": 0.3, "min_probability": 0.7}']
    )  # fmt: skip
    assert measured_stage(args, "damage", "verifier") == StageRecord(
        str(path), sha256_of(path), VERIFIER_RULE
    )


def test_the_closeup_verifier_is_read_at_the_verifiers_rule(tmp_path: Path) -> None:
    # given an evaluation with a verifier and no close-up verifier: none, the rule is no error
    served, near = stage_file(tmp_path / "v.onnx"), stage_file(tmp_path / "c.onnx", b"near")
    given = ["--config", "c.yaml", "--model", "m.onnx", "--claims", "--verifier", str(served),
             "--verifier-rule", '{"base_conf": 0.3, "min_probability": 0.7}']  # fmt: skip
    args = get_args_parser().parse_args(given)
    verifier = measured_stage(args, "damage", "verifier")
    assert measured_closeup_verifier(args, "damage", verifier) is None
    # when a close-up verifier is given too, then it is recorded at the verifier's rule
    args = get_args_parser().parse_args([*given, "--closeup-verifier", str(near)])
    assert measured_closeup_verifier(args, "damage", verifier) == StageRecord(
        str(near), sha256_of(near), VERIFIER_RULE
    )
    # and without the verifier it reads close-ups beside, it is refused
    alone = ["--config", "c.yaml", "--model", "m.onnx", "--claims", "--closeup-verifier",
             str(near)]  # fmt: skip
    args = get_args_parser().parse_args(alone)
    with pytest.raises(TrainingError, match="--closeup-verifier and --verifier-rule go together"):
        measured_closeup_verifier(args, "damage", None)
    args = get_args_parser().parse_args(
        [*alone, "--verifier-rule", '{"base_conf": 0.3, "min_probability": 0.7}']
    )
    with pytest.raises(TrainingError, match="beside a --verifier: give both"):
        measured_closeup_verifier(args, "damage", None)
    # and a missing file is refused
    args = get_args_parser().parse_args([*given, "--closeup-verifier", str(tmp_path / "x.onnx")])
    with pytest.raises(TrainingError, match=r"--closeup-verifier .*x\.onnx: no such file"):
        measured_closeup_verifier(args, "damage", verifier)


def test_the_closeup_verifier_can_be_read_at_a_rule_of_its_own(tmp_path: Path) -> None:
    # given an evaluation with a verifier and a close-up verifier
    served, near = stage_file(tmp_path / "v.onnx"), stage_file(tmp_path / "c.onnx", b"near")
    given = ["--config", "c.yaml", "--model", "m.onnx", "--claims", "--verifier", str(served),
             "--verifier-rule", '{"base_conf": 0.3, "min_probability": 0.7}',
             "--closeup-verifier", str(near)]  # fmt: skip
    own = '{"base_conf": 0.3, "min_probability": 0.6, "min_base_probability": 0.3}'
    # when the close-ups get a rule of their own
    args = get_args_parser().parse_args([*given, "--closeup-verifier-rule", own])
    verifier = measured_stage(args, "damage", "verifier")
    # then the close-up verifier is recorded at it, and the verifier at its own
    assert verifier is not None and verifier.rule == VERIFIER_RULE
    closeup = measured_closeup_verifier(args, "damage", verifier)
    assert closeup == StageRecord(str(near), sha256_of(near), verifier_rule_arg(own))
    # and a close-up rule from another base_conf is refused (both read one detector's pass)
    other = '{"base_conf": 0.1, "min_probability": 0.6}'
    args = get_args_parser().parse_args([*given, "--closeup-verifier-rule", other])
    with pytest.raises(TrainingError, match=r"base_conf 0\.1 is not the --verifier-rule's 0\.3"):
        measured_closeup_verifier(args, "damage", verifier)
    # and a close-up rule without a close-up verifier is refused
    args = get_args_parser().parse_args([*given[:-2], "--closeup-verifier-rule", own])
    with pytest.raises(TrainingError, match="--closeup-verifier-rule needs --closeup-verifier"):
        measured_closeup_verifier(args, "damage", verifier)


# --- _report_stage -------------------------------------------------------------------------

KEYS: dict[str, tuple[Any, str, str, str]] = {
    # report key: (a rule, the task it belongs to, another task, what it is called)
    "verifier": (VERIFIER_RULE, "damage", "parts", "damage verifier"),
    "closeup_verifier": (VERIFIER_RULE, "damage", "parts", "close-up damage verifier"),
    "family_stage": (FAMILY_RULE, "parts", "damage", "part-family stage"),
}


def report(tmp_path: Path, key: str, record: dict[str, Any] | None) -> Path:
    """`cdat evaluate`'s report.json, carrying `record` under `key` (when given)."""
    body: dict[str, Any] = {"claims": {"split": "test"}}
    if record is not None:
        body[key] = record
    path = tmp_path / "eval" / "report.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(body))
    return path


def measured(tmp_path: Path, key: str, body: bytes = b"a stage") -> tuple[Path, dict[str, Any]]:
    """A stage file where evaluating found it, and the record the report keeps of it."""
    rule = KEYS[key][0]
    source = stage_file(tmp_path / "runs" / "stage-1.onnx", body)
    return source, StageRecord(str(source), sha256_of(source), rule).to_record()


@pytest.fixture
def model_dir(tmp_path: Path) -> Path:
    path = tmp_path / "models"
    path.mkdir()
    return path


@pytest.mark.parametrize("key", list(KEYS))
def test_the_measured_stage_is_copied_beside_the_model(
    tmp_path: Path, model_dir: Path, key: str
) -> None:
    # given a report measured with a stage kept outside the model directory
    rule, task, _, _ = KEYS[key]
    source, record = measured(tmp_path, key)
    # when the model is registered from it
    got = _report_stage(report(tmp_path, key, record), key, task, model_dir, MODEL)
    # then the stage is copied beside the model and recorded by its name there
    assert got == StageRecord("stage-1.onnx", sha256_of(source), rule).to_record()
    assert (model_dir / "stage-1.onnx").read_bytes() == source.read_bytes()


@pytest.mark.parametrize("key", list(KEYS))
def test_a_stage_already_in_the_model_directory_is_recorded_where_it_is(
    tmp_path: Path, model_dir: Path, key: str
) -> None:
    rule, task, _, _ = KEYS[key]
    source = stage_file(model_dir / "stages" / "stage-1.onnx")
    record = StageRecord(str(source), sha256_of(source), rule).to_record()
    got = _report_stage(report(tmp_path, key, record), key, task, model_dir, MODEL)
    assert got["file"] == str(Path("stages") / "stage-1.onnx")
    assert sorted(p.name for p in model_dir.iterdir()) == ["stages"]


@pytest.mark.parametrize("key", list(KEYS))
def test_an_identical_file_of_the_same_name_is_no_conflict(
    tmp_path: Path, model_dir: Path, key: str
) -> None:
    _, task, _, _ = KEYS[key]
    source, record = measured(tmp_path, key)
    shutil.copyfile(source, model_dir / "stage-1.onnx")
    got = _report_stage(report(tmp_path, key, record), key, task, model_dir, MODEL)
    assert got["file"] == "stage-1.onnx"


@pytest.mark.parametrize("key", list(KEYS))
def test_no_report_or_no_stage_in_it_registers_none(
    tmp_path: Path, model_dir: Path, key: str
) -> None:
    _, task, _, _ = KEYS[key]
    assert _report_stage(None, key, task, model_dir, MODEL) == {}
    assert _report_stage(report(tmp_path, key, None), key, task, model_dir, MODEL) == {}
    assert _report_stage(report(tmp_path, key, {}), key, task, model_dir, MODEL) == {}
    assert list(model_dir.iterdir()) == []


@pytest.mark.parametrize("key", list(KEYS))
def test_a_stage_for_another_task_is_refused(tmp_path: Path, model_dir: Path, key: str) -> None:
    _, task, other, what = KEYS[key]
    _, record = measured(tmp_path, key)
    with pytest.raises(CdatError, match=f"a {what} belongs to a {task} model, not {other}"):
        _report_stage(report(tmp_path, key, record), key, other, model_dir, MODEL)
    assert list(model_dir.iterdir()) == []


@pytest.mark.parametrize("key", list(KEYS))
@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda r: {k: v for k, v in r.items() if k != "rule"}, "stage: rule required"),
        (lambda r: {**r, "rule": {"unknown": 1}}, "unknown field"),
        (lambda r: {**r, "rule": 0.5}, "rule must be a record"),
        (lambda r: {**r, "extra": 1}, "stage: unknown field.*extra"),
    ],
)
def test_a_damaged_stage_record_is_refused_naming_the_key(
    tmp_path: Path, model_dir: Path, key: str, damage: Any, message: str
) -> None:
    _, task, _, _ = KEYS[key]
    _, record = measured(tmp_path, key)
    path = report(tmp_path, key, damage(record))
    with pytest.raises(CdatError, match=rf"report\.json: {key}: .*{message}"):
        _report_stage(path, key, task, model_dir, MODEL)
    assert list(model_dir.iterdir()) == []


def test_a_rule_of_the_other_stage_is_refused(tmp_path: Path, model_dir: Path) -> None:
    # given a verifier recorded with a part-family rule
    _, record = measured(tmp_path, "verifier")
    record["rule"] = FAMILY_RULE.to_record()
    with pytest.raises(CdatError, match=r"verifier: verifier rule: unknown .*max_masks"):
        _report_stage(report(tmp_path, "verifier", record), "verifier", "damage", model_dir, MODEL)


@pytest.mark.parametrize("key", list(KEYS))
def test_a_missing_or_changed_stage_file_is_refused(
    tmp_path: Path, model_dir: Path, key: str
) -> None:
    _, task, _, _ = KEYS[key]
    source, record = measured(tmp_path, key)
    path = report(tmp_path, key, record)
    # given the stage file changed after it was measured
    source.write_bytes(b"another stage")
    with pytest.raises(CdatError, match=f"{key} .*stage-1.onnx is missing or not the file"):
        _report_stage(path, key, task, model_dir, MODEL)
    # or removed
    source.unlink()
    with pytest.raises(CdatError, match="is missing or not the file measured"):
        _report_stage(path, key, task, model_dir, MODEL)
    assert list(model_dir.iterdir()) == []


@pytest.mark.parametrize("key", list(KEYS))
def test_another_entrys_stage_of_the_same_name_is_never_overwritten(
    tmp_path: Path, model_dir: Path, key: str
) -> None:
    # given another file of the stage's name beside the models already
    _, task, _, what = KEYS[key]
    taken = stage_file(model_dir / "stage-1.onnx", b"another entry's stage")
    before = taken.read_bytes()
    _, record = measured(tmp_path, key)
    # when the model is registered, then it is refused, and the file left as it was
    with pytest.raises(CdatError, match=f"stage-1.onnx exists: give the new {what} another name"):
        _report_stage(report(tmp_path, key, record), key, task, model_dir, MODEL)
    assert taken.read_bytes() == before


@pytest.mark.parametrize("key", list(KEYS))
def test_a_head_is_registered_only_beside_the_model_whose_layers_it_reads(
    tmp_path: Path, model_dir: Path, key: str
) -> None:
    from tests.inference.test_stage_net import W0, _convert, make_backbone

    # given a stage stored as its head, measured on the model it was trained on
    rule, task, _, _ = KEYS[key]
    trained_on = make_backbone(tmp_path / "model.onnx")
    head = _convert(tmp_path, trained_on)
    record = StageRecord(str(head), sha256_of(head), rule).to_record()
    path = report(tmp_path, key, record)
    # when registered beside another model (retrained: other weights), then it is refused
    W0[0, 0, 0, 0] += 1.0
    try:
        other = make_backbone(tmp_path / "other.onnx")
    finally:
        W0[0, 0, 0, 0] -= 1.0
    with pytest.raises(CdatError, match=f"{key}: .*reads the layers of another model"):
        _report_stage(path, key, task, model_dir, other)
    assert list(model_dir.iterdir()) == []
    # and beside its own model it is recorded
    got = _report_stage(path, key, task, model_dir, trained_on)
    assert got == StageRecord("head.onnx", sha256_of(head), rule).to_record()


@pytest.mark.parametrize(
    ("env", "looks"),
    [
        ({}, []),
        ({"CDAT_DAMAGE_CROP_LOOK": "true"}, ["middle"]),
        ({"CDAT_DAMAGE_FLIP_TTA": "true", "CDAT_DAMAGE_CROP_LOOK": "true"}, ["mirrored", "middle"]),
    ],
)
def test_the_report_names_the_second_looks_a_candidate_was_measured_with(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], looks: list[str]
) -> None:
    from cdat.settings import Settings
    from training.eval_stages import looks_measured

    # given the operator's settings for the looks
    for name in ("CDAT_DAMAGE_CROP_LOOK", "CDAT_DAMAGE_FLIP_TTA"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    # when a candidate's claims are measured, then the report says which looks it took
    assert looks_measured(Settings()) == {"crop_look": "middle" in looks, "second_looks": looks}


@pytest.mark.parametrize("bar", ["0", "1.5", "half"])
def test_a_zoom_look_bar_that_is_no_probability_is_refused_on_the_command_line(
    bar: str, capsys: pytest.CaptureFixture[str]
) -> None:
    given = ["--config", "c.yaml", "--model", "m.onnx", "--claims", "--zoom-look-view-below", bar]
    with pytest.raises(SystemExit):
        get_args_parser().parse_args(given)
    assert "--zoom-look-view-below" in capsys.readouterr().err


def test_a_zoom_look_bar_is_read_from_the_command_line() -> None:
    given = ["--config", "c.yaml", "--model", "m.onnx", "--claims", "--zoom-look-view-below", "0.5"]
    assert get_args_parser().parse_args(given).zoom_look_view_below == 0.5


def test_a_zoom_look_is_refused_beside_a_placer(tmp_path: Path) -> None:
    from training.evaluate import main as evaluate_main

    # given a damage model measured with a placer and the zoomed-out look
    model = tmp_path / "damage.onnx"
    model.write_bytes(b"onnx")
    given = ["--config", "datasets/damage-claims.yaml", "--model", str(model), "--claims",
             "--placer", str(tmp_path / "head.onnx"), "--placer-rule", '{"min_iou": 0.5}',
             "--zoom-look-view-below", "0.5"]  # fmt: skip
    # then it is one error naming the look, before any photo is read
    with pytest.raises(TrainingError, match="zoom-look-view-below: a placer"):
        evaluate_main(get_args_parser().parse_args(given))


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--zoom-look-where-found"], "--zoom-look-where-found needs --zoom-look-view-below"),
        (["--middle-look-where-found", "--placer", "h.onnx", "--placer-rule", '{"min_iou": 0.5}'],
         "no --placer"),
        (["--corner-looks-where-found"],
         "--corner-looks-where-found needs --middle-look-where-found"),
        (["--detector-where-found", "gone.onnx"],
         "--detector-where-found gone.onnx: expected an existing .onnx"),
        (["--detector-where-found", "d.onnx", "--placer", "h.onnx",
          "--placer-rule", '{"min_iou": 0.5}'], "no --placer"),
    ],
)  # fmt: skip
def test_looks_where_found_need_their_bar_and_no_placer(
    tmp_path: Path, extra: list[str], message: str
) -> None:
    from training.evaluate import main as evaluate_main

    model = tmp_path / "damage.onnx"
    model.write_bytes(b"onnx")
    given = ["--config", "datasets/damage-claims.yaml", "--model", str(model), "--claims", *extra]
    # then it is one error naming what is missing, before any photo is read
    with pytest.raises(TrainingError, match=message):
        evaluate_main(get_args_parser().parse_args(given))


def test_a_second_detector_of_other_classes_is_refused_before_any_photo_is_read(
    tmp_path: Path,
) -> None:
    from inference.registry import Registry
    from training.evaluate import main as evaluate_main

    # given the shipped damage model, and the shipped part model offered as its second detector
    shipped = Registry.load(Path(__file__).resolve().parents[2] / "inference" / "models")
    damage = shipped.path_of(shipped.promoted_entry("damage"))
    parts = shipped.path_of(shipped.promoted_entry("parts"))
    looks = ["--claims", "--middle-look-where-found", "--detector-where-found"]
    given = ["--config", "datasets/damage-claims.yaml", "--model", str(damage), *looks]
    # then it is one error naming the classes, before the evaluation starts
    with pytest.raises(TrainingError, match=r"--detector-where-found .* predicts \['back_bumper'"):
        evaluate_main(get_args_parser().parse_args([*given, str(parts)]))
    # and a file that is no ONNX model is one error too
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"onnx")
    with pytest.raises(TrainingError, match="--detector-where-found: cannot load"):
        evaluate_main(get_args_parser().parse_args([*given, str(junk)]))
