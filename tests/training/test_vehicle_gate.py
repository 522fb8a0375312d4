"""The vehicle gate's training loop, head, threshold and metrics, on generated data."""

from __future__ import annotations

import json
import os
from pathlib import Path

import cv2
import numpy as np
import pytest

from cdat.analysis import PhotoInput
from cdat.findings import Box, DamageInstance, PhotoAnalysis, QualityIssue
from cdat.taxonomy import DamageType, Severity
from training.errors import TrainingError
from training.gate_data import GatePhoto
from training.gate_eval import tally_photos
from training.gate_fit import Examples, choose_threshold, fit_head, probabilities, refused_shares

SIDE = 64


def _examples(scores_by_source: dict[str, list[float]], vehicle: set[str]) -> Examples:
    sources = [s for s, scores in scores_by_source.items() for _ in scores]
    return Examples(
        np.zeros((len(sources), 1)),
        np.array([s in vehicle for s in sources]),
        np.array(sources),
    )


VAL_SCORES = {
    "closeups": [0.05, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99],
    "whole": [0.2, 0.25, 0.9, 0.9, 0.9, 0.9, 0.9, 0.9, 0.9, 0.9],
    "no-vehicle": [0.01, 0.1, 0.22, 0.5],
}
"""Val scores of two vehicle sources (10 photos each) and of photos without a vehicle."""


def _val_scores() -> tuple[Examples, np.ndarray]:
    examples = _examples(VAL_SCORES, {"closeups", "whole"})
    return examples, np.concatenate([np.array(v) for v in VAL_SCORES.values()])


def test_the_threshold_refuses_at_most_the_allowed_share_of_every_vehicle_source() -> None:
    # given val scores of two vehicle sources (10 photos each) and photos without a vehicle
    examples, p = _val_scores()
    # when one refusal in ten is allowed
    threshold = choose_threshold(p, examples, max_refused=0.1)
    # then the stricter source sets it: refusing 0.2 only, 0.25 and up kept
    assert threshold == 0.25
    shares = refused_shares(p, examples, threshold)
    assert shares == {"closeups": 0.1, "whole": 0.1, "no-vehicle": 0.75}


def test_the_threshold_refuses_no_more_of_a_source_than_a_served_gate_did() -> None:
    from training.gate_fit import refused_counts

    # given the val scores above, and a served gate that refused none of the close-ups
    # and two of the whole cars
    examples, p = _val_scores()
    # when the threshold is held to those counts under a looser share
    threshold = choose_threshold(p, examples, 0.3, allowed={"closeups": 0, "whole": 2})
    # then no close-up is refused, though the share alone would allow three
    assert threshold == 0.05
    assert refused_counts(p, examples, threshold) == {"closeups": 0, "whole": 0}
    # and the share still bounds a source whose allowed count is larger
    threshold = choose_threshold(p, examples, 0.1, allowed={"closeups": 5, "whole": 5})
    assert refused_counts(p, examples, threshold) == {"closeups": 1, "whole": 1}


def test_the_head_separates_what_is_separable_and_weighs_both_classes() -> None:
    # given 200 vehicle rows and 10 without, apart along the first feature only
    rng = np.random.default_rng(0)
    x = rng.normal(size=(210, 3))
    x[:200, 0] += 6.0
    examples = Examples(x, np.arange(210) < 200, np.array(["v"] * 200 + ["n"] * 10))
    # when the head is fitted
    head = fit_head(examples, l2=0.01)
    p = probabilities(head, x)
    # then both classes come out on their side, the rare one too
    assert (p[:200] > 0.5).mean() > 0.95 and (p[200:] < 0.5).mean() > 0.9
    assert abs(head.weights[0]) > 3 * np.abs(head.weights[1:]).max()


def test_a_head_needs_both_classes() -> None:
    examples = Examples(np.zeros((3, 2)), np.ones(3, bool), np.array(["v"] * 3))
    with pytest.raises(ValueError, match="with and without"):
        fit_head(examples, l2=0.1)


# --- the metrics on a tiny set whose answer is known -------------------------------------

NO_VEHICLE = QualityIssue("no_vehicle", "No vehicle.", "photograph it", blocking=True)
DENT = DamageInstance(DamageType.DENT, Severity.MINOR, 0.9, Box(0, 0, 1, 1))


class ScriptedAnalyzer:
    """Answers each photo (by file name) as scripted: (refused, damages)."""

    def __init__(self, script: dict[str, tuple[bool, int]]) -> None:
        self.script = script
        self.gate = None

    def analyze(self, photos: list[PhotoInput]) -> list[PhotoAnalysis]:
        out = []
        for photo in photos:
            refused, damages = self.script[photo.photo_id]
            out.append(PhotoAnalysis(
                photo.photo_id, 8, 8, damages=(DENT,) * damages,
                quality_issues=(NO_VEHICLE,) if refused else (), timings_ms={"gate_ms": 2.0},
            ))  # fmt: skip
        return out


def test_gate_metrics_on_a_set_whose_answer_is_known(tmp_path) -> None:
    # given 4 photos without a vehicle: 2 refused clean, 1 refused yet with damage, 1 priced;
    # 2 car-parts-damage close-ups (1 refused), 3 damaged-parts (none), 2 whole cars (1)
    script = {
        "nv1": ("no-vehicle", True, 0), "nv2": ("no-vehicle", True, 0),
        "nv3": ("no-vehicle", True, 1), "nv4": ("no-vehicle", False, 2),
        "c1": ("car-parts-damage", True, 0), "c2": ("car-parts-damage", False, 1),
        "d1": ("damaged-parts", False, 1), "d2": ("damaged-parts", False, 0),
        "d3": ("damaged-parts", False, 1),
        "w1": ("car-parts", True, 0), "w2": ("car-parts", False, 0),
    }  # fmt: skip
    photos = []
    for name, (source, _, _) in script.items():
        (tmp_path / name).write_bytes(b"x")
        photos.append(GatePhoto(tmp_path / name, source, "test", source != "no-vehicle"))
    analyzer = ScriptedAnalyzer({n: (r, d) for n, (_, r, d) in script.items()})
    # when the gate figures are tallied
    report = tally_photos(analyzer, photos, batch=3).report()
    # then each figure is the scripted share
    assert report["non_vehicle_refused"] == 0.5  # nv1, nv2 of 4; nv3 kept a damage
    assert report["non_vehicle_with_damage"] == 0.5
    assert report["closeups_refused"] == pytest.approx(1 / 5)
    assert report["closeups_refused_per_source"] == {"car-parts-damage": 0.5, "damaged-parts": 0.0}
    assert report["vehicle_photos_refused"] == 0.5
    assert report["photos_per_source"]["no-vehicle"] == 4 and report["gate_ms_median"] == 2.0


# --- the whole training loop on tiny generated photos ------------------------------------


def _tiny_checkpoint(folder: Path, names: tuple[str, str] | None = None) -> Path:
    """A freshly built YOLO11n-seg whose BatchNorm statistics are set on noise, so its
    pooled features depend on the photo (untrained layers alone would flatten them); its
    two classes named `names` where given."""
    os.environ.setdefault("YOLO_OFFLINE", "1")
    torch = pytest.importorskip("torch")
    ultralytics = pytest.importorskip("ultralytics")
    import yaml

    source = next((Path(ultralytics.__file__).parent / "cfg/models").rglob("yolo11-seg.yaml"))
    config = yaml.safe_load(source.read_text())
    config["nc"] = 2
    (folder / "yolo11n-seg.yaml").write_text(yaml.safe_dump(config))
    torch.manual_seed(0)
    model = ultralytics.YOLO(str(folder / "yolo11n-seg.yaml"))
    for module in model.model.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.momentum = 1.0
    model.model.train()
    with torch.no_grad():
        model.model(torch.rand(2, 3, SIDE, SIDE))
    model.model.eval()
    if names is not None:
        model.model.names = dict(enumerate(names))
    model.save(str(folder / "tiny.pt"))
    return folder / "tiny.pt"


def _generated(folder: Path, vehicle: bool, k: int) -> Path:
    """Reddish photos with dark rectangles stand for vehicles; bluish smooth ones for not."""
    rng = np.random.default_rng(k + (0 if vehicle else 1000))
    image = np.zeros((80, 100, 3), np.uint8)
    image[:] = (60, 60, 190) if vehicle else (190, 120, 50)
    image = np.clip(image + rng.integers(-25, 25, image.shape), 0, 255).astype(np.uint8)
    if vehicle:
        x, y = rng.integers(5, 50, 2)
        cv2.rectangle(image, (int(x), int(y)), (int(x) + 30, int(y) + 20), (20, 20, 20), -1)
    path = folder / f"{'car' if vehicle else 'other'}{k}.png"
    cv2.imwrite(str(path), image)
    return path


def generated_gate_photos(folder: Path, vehicles: int, others: int) -> dict[str, list[GatePhoto]]:
    """Per split (train, val): generated photos with a "vehicle", then without one."""
    return {
        split: [GatePhoto(_generated(folder, True, k + 100 * n), "car-parts-damage", split, True)
                for k in range(vehicles)]
        + [GatePhoto(_generated(folder, False, k + 100 * n), "no-vehicle", split, False)
           for k in range(others)]
        for n, split in enumerate(("train", "val"))
    }  # fmt: skip


@pytest.mark.slow
def test_the_gate_trains_exports_and_refuses_on_tiny_generated_data(tmp_path, monkeypatch):
    from inference.vehicle_gate import VehicleGate
    from training import gate_data, vehicle_gate

    # given a tiny backbone and generated photos with and without a "vehicle"
    weights = _tiny_checkpoint(tmp_path)
    photos = generated_gate_photos(tmp_path, vehicles=12, others=6)
    monkeypatch.setattr(vehicle_gate, "gate_photos", lambda split, *a, **k: photos[split])
    licences = [{"name": "generated", "licence": "CC0"}]
    monkeypatch.setattr(gate_data, "data_licences", lambda root: licences)
    out = tmp_path / "gate" / "gate.onnx"
    args = vehicle_gate.get_args_parser().parse_args(
        ["--out", str(out), "--init", str(weights), "--taps", "4", "6", "--side", str(SIDE),
         "--extract-taps", "4", "6", "8", "--negative-views", "3", "--l2", "0.1", "1",
         "--cache", str(tmp_path / "cache")]
    )  # fmt: skip
    # when it is trained
    assert vehicle_gate.main(args) == 0
    # then one ONNX file and a report exist; the threshold was chosen on val
    report = json.loads(out.with_suffix(".report.json").read_text())
    assert report["train_rows"] == {"car-parts-damage": 12, "no-vehicle": 18}
    assert report["val_rows"] == {"car-parts-damage": 12, "no-vehicle": 6}
    assert report["val_refused"]["car-parts-damage"] <= 0.02
    assert report["onnx_parity_max_abs"] < 1e-3
    # and the file names the very threshold chosen, so served at it the gate refuses the
    # val photos the choice counted and no photo at the threshold besides
    from training.claims import gate_at_its_threshold

    assert gate_at_its_threshold(out).threshold == report["threshold"]
    run = json.loads((out.parent / "cdat_run.json").read_text())
    assert run["task"] == "gate" and run["data"] == licences and run["init"]["sha256"]
    # and the exported gate refuses a new photo without a vehicle and keeps a new vehicle
    gate = VehicleGate.load(out, report["threshold"])
    other = cv2.imread(str(_generated(tmp_path, False, 999)))
    car = cv2.imread(str(_generated(tmp_path, True, 999)))
    p_other, p_car = gate.probabilities([other, car])
    assert p_other < gate.threshold <= p_car
    # and a second run reads the cached features instead of extracting again
    assert len(list((tmp_path / "cache").iterdir())) == 1


@pytest.mark.slow
def test_conditioned_views_teach_the_gate_each_train_photo_again_under_a_phone_condition(
    tmp_path, monkeypatch
):
    from training import gate_data, vehicle_gate

    # given a tiny backbone and generated photos with and without a "vehicle"
    weights = _tiny_checkpoint(tmp_path)
    photos = generated_gate_photos(tmp_path, vehicles=8, others=4)
    monkeypatch.setattr(vehicle_gate, "gate_photos", lambda split, *a, **k: photos[split])
    monkeypatch.setattr(gate_data, "data_licences", lambda root: [])
    out = tmp_path / "gate.onnx"
    args = vehicle_gate.get_args_parser().parse_args(
        ["--out", str(out), "--init", str(weights), "--taps", "4", "--side", str(SIDE),
         "--negative-views", "2", "--conditioned-views", "1", "--l2", "1",
         "--cache", str(tmp_path / "cache")]
    )  # fmt: skip
    # when it is trained with one conditioned view of each train photo
    assert vehicle_gate.main(args) == 0
    # then every train photo, of either class, is seen once more; val photos as they are
    report = json.loads(out.with_suffix(".report.json").read_text())
    assert report["train_rows"] == {"car-parts-damage": 16, "no-vehicle": 12}
    assert report["val_rows"] == {"car-parts-damage": 8, "no-vehicle": 4}
    assert report["hyperparameters"]["conditioned_views"] == 1


@pytest.mark.slow
def test_a_gate_held_to_another_gates_refusals_with_more_conditioned_non_vehicles(
    tmp_path, monkeypatch
):
    from training import gate_data, gate_eval, vehicle_gate
    from training.claims import gate_at_its_threshold

    # given a tiny backbone, generated photos, and a first gate trained on them
    weights = _tiny_checkpoint(tmp_path)
    photos = generated_gate_photos(tmp_path, vehicles=8, others=4)
    monkeypatch.setattr(vehicle_gate, "gate_photos", lambda split, *a, **k: photos[split])
    monkeypatch.setattr(gate_eval, "gate_photos", lambda split, *a, **k: photos[split])
    monkeypatch.setattr(gate_data, "data_licences", lambda root: [])
    common = ["--init", str(weights), "--taps", "4", "--side", str(SIDE), "--negative-views",
              "2", "--l2", "1", "--cache", str(tmp_path / "cache")]  # fmt: skip
    first = tmp_path / "first.onnx"
    assert vehicle_gate.main(vehicle_gate.get_args_parser().parse_args(
        ["--out", str(first), *common]
    )) == 0  # fmt: skip
    first_gate = gate_at_its_threshold(first)
    val_cars = [cv2.imread(str(p.path)) for p in photos["val"] if p.vehicle]
    first_refused = int((first_gate.probabilities(val_cars) < first_gate.threshold).sum())
    # when a second is trained with three conditioned views of each photo without a
    # vehicle only, its threshold held to the first gate's refusals
    out = tmp_path / "second.onnx"
    args = vehicle_gate.get_args_parser().parse_args(
        ["--out", str(out), *common, "--negative-conditioned-views", "3",
         "--refusals-like", str(first), "--max-refused", "0.4"]
    )  # fmt: skip
    assert vehicle_gate.main(args) == 0
    # then only the photos without a vehicle are seen again, each three times more
    report = json.loads(out.with_suffix(".report.json").read_text())
    assert report["train_rows"] == {"car-parts-damage": 8, "no-vehicle": 4 * (2 + 3)}
    # and it refuses no more val vehicle photos than the first gate did
    assert report["val_refused_allowed"] == {"car-parts-damage": first_refused}
    assert report["val_refused_counts"]["car-parts-damage"] <= first_refused
    assert report["hyperparameters"]["refusals_like"] == str(first)


def test_a_refusals_like_file_that_is_no_gate_is_refused_before_any_extraction(
    tmp_path, monkeypatch
) -> None:
    from training import vehicle_gate

    # given a --refusals-like file that is no ONNX gate, and a cache folder not yet made
    fake = tmp_path / "notes.onnx"
    fake.write_text("not a model")
    args = vehicle_gate.get_args_parser().parse_args(
        ["--out", str(tmp_path / "g.onnx"), "--refusals-like", str(fake),
         "--cache", str(tmp_path / "cache")]
    )  # fmt: skip
    # when the gate is trained, then the error names the option and nothing was extracted
    with pytest.raises(TrainingError, match=r"^--refusals-like .*notes\.onnx: not an ONNX"):
        vehicle_gate.main(args)
    assert not (tmp_path / "cache").exists() and not (tmp_path / "g.onnx").exists()


def test_a_bad_option_is_one_error_line(tmp_path) -> None:
    from training import vehicle_gate

    args = vehicle_gate.get_args_parser().parse_args(["--out", str(tmp_path / "g.onnx")])
    args.side = 100
    with pytest.raises(TrainingError, match="--side 100"):
        vehicle_gate.hyperparameters(args)
    args = vehicle_gate.get_args_parser().parse_args(["--out", str(tmp_path / "g.pt")])
    with pytest.raises(TrainingError, match=r"\.onnx"):
        vehicle_gate.hyperparameters(args)
    args = vehicle_gate.get_args_parser().parse_args(
        ["--out", str(tmp_path / "g.onnx"), "--conditioned-views", "-1"]
    )
    with pytest.raises(TrainingError, match="--conditioned-views -1"):
        vehicle_gate.hyperparameters(args)
    args = vehicle_gate.get_args_parser().parse_args(
        ["--out", str(tmp_path / "g.onnx"), "--refusals-like", str(tmp_path / "none.onnx")]
    )
    with pytest.raises(TrainingError, match=r"--refusals-like .*no such gate file"):
        vehicle_gate.hyperparameters(args)


def test_cdat_gate_commands_are_wired(capsys) -> None:
    from training.cli import main

    with pytest.raises(SystemExit):
        main(["gate", "train", "--help"])
    assert "--max-refused" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main(["gate", "evaluate", "--help"])
    assert "--no-gate" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main(["gate", "view", "--help"])
    assert "--bar" in capsys.readouterr().out


def test_registry_accepts_a_gate_and_compares_refusals_the_right_way(tmp_path) -> None:
    from inference.promotion_gate import compare_gate
    from inference.registry import ModelEntry

    names = ("non_vehicle_refused", "closeups_refused", "vehicle_photos_refused")
    old = ModelEntry(
        "g-1", "gate", "g.onnx", "", [], 256, metrics=dict(zip(names, (0.9, 0.01, 0), strict=True))
    )
    new = ModelEntry(
        "g-2", "gate", "g.onnx", "", [], 256, metrics=dict(zip(names, (0.95, 0.03, 0), strict=True))
    )
    _, worse = compare_gate(new, old)
    assert worse == ["closeups_refused 0.0300 > 0.0100"]
    assert ModelEntry("g-3", "gate", "g.onnx", "", [], 256).served_conf == 0.5
