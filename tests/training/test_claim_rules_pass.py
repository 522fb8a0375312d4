"""A pass over a split keeps every detection from its threshold, whatever the promoted model
is served with: the rules compared afterwards (a verifier's among them) apply to it."""

from __future__ import annotations

from pathlib import Path

from cdat.taxonomy import CarPart
from inference.loading import build_analyzer
from tests.inference.test_damage_verifier import (
    BLUE_HIGH,
    BLUE_LOW,
    RED_LOW,
    boxes,
    png,
    red_and_blue,
    verified_scene,
)
from training.claim_rules import pass_settings


def _candidate(model: Path, out: Path, names: list[str]) -> Path:
    """An unregistered copy of `model` whose class names are `names`, as an export writes."""
    import shutil

    import onnx

    shutil.copy(model, out)
    graph = onnx.load(str(out))
    meta = graph.metadata_props.add()
    meta.key, meta.value = "names", str(dict(enumerate(names)))
    onnx.save(graph, str(out))
    return out


def test_a_pass_keeps_what_a_served_verifier_would_drop(tmp_path: Path) -> None:
    # given a damage model promoted with a verifier that drops the unconfirmed low dent
    served = verified_scene(tmp_path / "models")
    photo = png(red_and_blue(), "p")
    (as_served,) = build_analyzer(served).analyze([photo])
    assert BLUE_LOW not in boxes(as_served.damages)
    # when a pass is made from 0.02 over the same registry
    settings = pass_settings(0.02).model_copy(update={"model_dir": served.model_dir})
    analyzer = build_analyzer(settings)
    (raw,) = analyzer.analyze([photo])
    # then no verifier runs and every detection from 0.02 is there for the sweeps to judge
    assert analyzer.verifier is None and analyzer.whole_car is None
    assert boxes(raw.damages) == sorted([RED_LOW, BLUE_LOW, BLUE_HIGH])


def test_a_pass_keeps_the_part_masks_answer_where_a_served_part_family_stage_moves_damage(
    tmp_path: Path,
) -> None:
    from cdat.part_family import FamilyRule
    from inference.registry import sha256_of
    from inference.stage_record import StageRecord
    from tests.inference.test_part_family import make_stage, noisy, served_scene
    from tests.inference.test_part_family import png as part_png

    # given a part model promoted with a stage that moves the dent on a reddish photo from
    # the bumper (the masks' answer) to the door
    model_dir = tmp_path / "models"
    model_dir.mkdir()
    stage = make_stage(model_dir / "part-family-1.onnx")
    record = StageRecord(stage.name, sha256_of(stage), FamilyRule(0.8)).to_record()
    served = served_scene(model_dir, record)
    photo = part_png(noisy((40, 60, 200)), "red")
    (as_served,) = build_analyzer(served).analyze([photo])
    assert [d.part for d in as_served.damages] == [CarPart.FRONT_LEFT_DOOR]
    # when a pass is made over the same registry
    settings = pass_settings(0.1).model_copy(update={"model_dir": served.model_dir})
    analyzer = build_analyzer(settings)
    (raw,) = analyzer.analyze([photo])
    # then no stage runs: the family and assignment sweeps re-choose parts from the masks
    assert analyzer.family is None
    assert [d.part for d in raw.damages] == [CarPart.FRONT_BUMPER]


def test_a_pass_of_a_candidate_damage_model_runs_no_stage_either(tmp_path: Path) -> None:
    from cdat.part_family import FamilyRule
    from inference.registry import sha256_of
    from inference.stage_record import StageRecord
    from tests.inference.conftest import DAMAGE_CLASSES
    from tests.inference.test_part_family import make_stage, noisy, served_scene
    from tests.inference.test_part_family import png as part_png
    from training.claim_rules import pass_analyzer

    # given the promoted part model served with a stage that moves the dent on a reddish
    # photo from the bumper to the door, and a candidate damage model (not registered) that
    # finds the same dent
    model_dir = tmp_path / "models"
    model_dir.mkdir()
    stage = make_stage(model_dir / "part-family-1.onnx")
    record = StageRecord(stage.name, sha256_of(stage), FamilyRule(0.8)).to_record()
    served = served_scene(model_dir, record)
    candidate = _candidate(model_dir / "damage.onnx", tmp_path / "candidate.onnx", DAMAGE_CLASSES)
    photo = part_png(noisy((40, 60, 200)), "red")
    # when a pass is made with the candidate in the promoted damage model's place
    settings = pass_settings(0.1).model_copy(
        update={"model_dir": served.model_dir, "min_image_side": served.min_image_side}
    )
    analyzer = pass_analyzer(settings, candidate)
    (raw,) = analyzer.analyze([photo])
    # then it is the candidate's damage, placed by the masks alone, as a promoted pass is
    assert analyzer.damage.entry.id == "candidate"
    assert analyzer.family is None and analyzer.verifier is None and analyzer.whole_car is None
    assert [d.part for d in raw.damages] == [CarPart.FRONT_BUMPER]


def test_a_pass_of_a_candidate_part_model_places_damage_by_its_masks(tmp_path: Path) -> None:
    from tests.inference.conftest import PART_CLASSES
    from tests.inference.test_part_family import noisy, served_scene
    from tests.inference.test_part_family import png as part_png
    from training.claim_rules import pass_analyzer

    # given the promoted part model, which puts the dent on the front bumper, and a
    # candidate (not registered) that calls that very mask the back bumper
    served = served_scene(tmp_path / "models", None)
    names = list(PART_CLASSES)
    front, back = names.index("front_bumper"), names.index("back_bumper")
    names[front], names[back] = names[back], names[front]
    candidate = _candidate(
        served.model_dir / "parts.onnx", tmp_path / "parts-candidate.onnx", names
    )
    photo = part_png(noisy((40, 60, 200)), "red")
    settings = pass_settings(0.1).model_copy(
        update={"model_dir": served.model_dir, "min_image_side": served.min_image_side}
    )
    # when a pass is made with the candidate in the promoted part model's place
    analyzer = pass_analyzer(settings, parts=candidate)
    (raw,) = analyzer.analyze([photo])
    # then the candidate's masks place the damage, with no stage, and the pass names it
    assert analyzer.parts.entry.id == "parts-candidate" and analyzer.family is None
    assert [d.part for d in raw.damages] == [CarPart.BACK_BUMPER]
    assert analyzer.model_versions["parts"].startswith("parts-candidate")


def test_a_pass_with_a_candidate_gate_records_its_view_at_the_promoted_threshold(
    tmp_path: Path,
) -> None:
    from tests.inference.test_part_family import noisy, served_scene
    from tests.inference.test_part_family import png as part_png
    from tests.inference.test_vehicle_gate import add_gate, make_gate
    from training.claim_rules import pass_analyzer

    # given a promoted one-output gate at a strict threshold, and a candidate gate file (not
    # registered) that also reads the view, as training.view_head writes it
    served = add_gate(served_scene(tmp_path / "models", None), threshold=0.2)
    candidate = make_gate(tmp_path / "gate-view.onnx", view_logit=8.0)
    settings = pass_settings(0.1).model_copy(
        update={"model_dir": served.model_dir, "min_image_side": served.min_image_side}
    )
    # when a pass is made with the candidate gate
    analyzer = pass_analyzer(settings, gate=candidate)
    (raw,) = analyzer.analyze([part_png(noisy((40, 60, 200)), "red")])
    # then the candidate reads each photo's view, served at the promoted gate's threshold
    assert analyzer.gate is not None and analyzer.gate.threshold == 0.2
    assert analyzer.model_versions["gate"] == "gate-view"
    assert raw.whole_car_view_probability is not None and raw.whole_car_view_probability > 0.5


def test_a_candidate_gate_that_is_not_a_pass_s_is_one_error(tmp_path: Path) -> None:
    import pytest

    from training.claim_rules import get_args_parser, main
    from training.errors import TrainingError

    gate = tmp_path / "gate.onnx"
    gate.write_bytes(b"x")
    args = get_args_parser().parse_args(["--cache", str(tmp_path / "p.pkl"), "--gate", str(gate)])
    with pytest.raises(TrainingError, match="--gate"):
        main(args)
    args.run_pass, args.gate = True, tmp_path / "missing.onnx"
    with pytest.raises(TrainingError, match="no such file"):
        main(args)


def test_a_candidate_gate_that_is_not_a_model_is_one_error_without_a_promoted_gate(
    tmp_path: Path,
) -> None:
    import pytest

    from cdat.errors import CdatError
    from training.claims import candidate_gate

    # given no promoted gate and a candidate file that is not a model
    junk = tmp_path / "gate.onnx"
    junk.write_bytes(b"not a model")
    # then it is a clear error naming the file, not a runtime's traceback
    with pytest.raises(CdatError, match=r"gate\.onnx: not an ONNX model"):
        candidate_gate(junk, None)
