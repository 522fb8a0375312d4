"""The analyzer end to end on handcrafted models: findings, bad input, loading."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from cdat.analysis import PhotoInput
from cdat.errors import ModelUnavailable
from cdat.merge import merge_findings
from cdat.taxonomy import CarPart, DamageType, Severity
from cdat.whole_car import WholeCarRule
from inference import quality
from inference.loading import build_analyzer
from inference.readiness import readiness
from inference.registry import Registry

from .conftest import DAMAGE_CLASSES, PART_CLASSES, FakeDet, textured, to_model, write_registry

IMGSZ = 320
W, H = 400, 200


def part_det(part: CarPart, box, score=0.9) -> FakeDet:
    return FakeDet(*to_model(box, W, H, IMGSZ), cls=PART_CLASSES.index(part.value), score=score)


def damage_det(name: str, box, score=0.8) -> FakeDet:
    return FakeDet(*to_model(box, W, H, IMGSZ), cls=DAMAGE_CLASSES.index(name), score=score)


@pytest.fixture
def scene_settings(tmp_path):
    """A door on the left half, the hood top-right; a dent mostly on the door, a scratch on
    the bottom-right where no part is."""
    parts = [
        part_det(CarPart.FRONT_LEFT_DOOR, (0, 0, 200, 200)),
        part_det(CarPart.HOOD, (200, 0, 400, 100), 0.7),
    ]
    damages = [
        damage_det("moderate-dent", (120, 50, 220, 150), 0.85),
        damage_det("minor-scratch", (300, 150, 380, 190), 0.6),
    ]
    return write_registry(tmp_path / "models", IMGSZ, damages, parts)


def photo(image, photo_id="p1", encode=None) -> PhotoInput:
    import cv2

    ok, data = cv2.imencode(".png", image)
    assert ok
    return PhotoInput(photo_id, data.tobytes())


def test_damage_is_assigned_to_the_part_it_overlaps_most(scene_settings):
    # given the analyzer and a clean photo
    analyzer = build_analyzer(scene_settings)
    # when it analyses the photo
    (result,) = analyzer.analyze([photo(textured(W, H))])
    # then both parts are found, in photo coordinates
    assert (result.width, result.height) == (W, H)
    assert {p.part for p in result.parts} == {CarPart.FRONT_LEFT_DOOR, CarPart.HOOD}
    # and the dent sits on the door, covering 80x100 of its 200x200 pixels
    dent = next(d for d in result.damages if d.damage_type is DamageType.DENT)
    assert dent.severity is Severity.MODERATE and dent.confidence == pytest.approx(0.85)
    assert dent.part is CarPart.FRONT_LEFT_DOOR
    assert dent.part_coverage == pytest.approx(8000 / 40000, abs=0.02)
    xs = [x for x, _ in dent.polygon]
    assert min(xs) == pytest.approx(120, abs=3) and max(xs) == pytest.approx(220, abs=3)
    # and the scratch on no part is kept, marked as such
    scratch = next(d for d in result.damages if d.damage_type is DamageType.SCRATCH)
    assert scratch.part is None and scratch.part_coverage == 0.0
    # and the photo is usable, hashed and timed
    assert result.usable and result.quality_issues == ()
    assert result.perceptual_hash is not None and len(result.perceptual_hash) == 16
    assert {"decode_ms", "damage_ms", "parts_ms"} <= result.timings_ms.keys()
    assert analyzer.model_versions == {"damage": "damage-fake-1", "parts": "parts-fake-1"}


def test_unknown_damage_class_spelling_broken_maps_to_broken_part(scene_settings, tmp_path):
    settings = write_registry(
        tmp_path / "m2", IMGSZ, [damage_det("moderate-broken", (120, 50, 220, 150))], []
    )
    (result,) = build_analyzer(settings).analyze([photo(textured(W, H))])
    assert result.damages[0].damage_type is DamageType.BROKEN_PART


def test_every_bad_input_gets_an_analysis_never_an_exception(scene_settings):
    import io

    from PIL import Image

    analyzer = build_analyzer(scene_settings)
    cmyk = io.BytesIO()
    Image.fromarray(textured(W, H)[:, :, ::-1]).convert("CMYK").save(cmyk, "JPEG")
    photos = [
        PhotoInput("garbage", b"\x00\x01 definitely not a photo"),
        PhotoInput("empty", b""),
        photo(np.zeros((1, 300, 3), np.uint8), "one_pixel_high"),
        photo(np.zeros((H, W, 3), np.uint8), "all_black"),
        photo((textured(W, H, 5).astype(np.uint16) * 257), "sixteen_bit"),
        photo(textured(W, H, 6)[:, :, 0], "grayscale"),
        photo(np.dstack([textured(W, H, 7), np.full((H, W), 255, np.uint8)]), "alpha"),
        PhotoInput("cmyk", cmyk.getvalue()),
    ]
    # when the claim is analysed
    results = analyzer.analyze(photos)
    # then every photo has a result, in order
    assert [r.photo_id for r in results] == [p.photo_id for p in photos]
    codes = {r.photo_id: {i.code for i in r.quality_issues} for r in results}
    blocked = {r.photo_id for r in results if not r.usable}
    assert codes["garbage"] == {quality.UNREADABLE} and codes["empty"] == {quality.UNREADABLE}
    assert quality.TOO_SMALL in codes["one_pixel_high"]
    assert quality.UNDEREXPOSED in codes["all_black"]
    assert blocked == {"garbage", "empty", "one_pixel_high", "all_black"}
    # and the odd but valid formats were analysed like any photo
    for name in ("sixteen_bit", "grayscale", "alpha", "cmyk"):
        result = next(r for r in results if r.photo_id == name)
        assert (result.width, result.height) == (W, H) and len(result.damages) == 2, name


def test_a_heavily_compressed_photo_is_analysed_and_flagged_for_it(scene_settings):
    import cv2

    # given one photo saved at JPEG quality 20 and another at 90
    saved = {
        q: cv2.imencode(".jpg", textured(W, H, seed), [cv2.IMWRITE_JPEG_QUALITY, q])[1]
        for q, seed in ((20, 13), (90, 14))
    }
    photos = [PhotoInput(f"q{q}", data.tobytes()) for q, data in saved.items()]
    # when the claim is analysed
    squeezed, original = build_analyzer(scene_settings).analyze(photos)
    # then the compressed one says so, and both are analysed as usable photos
    assert [i.code for i in squeezed.quality_issues] == [quality.COMPRESSED]
    assert original.quality_issues == ()
    assert squeezed.usable and len(squeezed.damages) == len(original.damages) == 2


def test_the_same_photo_twice_is_flagged_on_the_second(scene_settings):
    import cv2

    image = textured(W, H, 11)
    _ok, jpeg = cv2.imencode(".jpg", cv2.resize(image, (W // 2, H // 2)))
    photos = [photo(image, "a"), photo(textured(W, H, 12), "b"), PhotoInput("c", jpeg.tobytes())]
    results = build_analyzer(scene_settings).analyze(photos)
    assert [r.usable for r in results] == [True, True, False]
    (dup,) = results[2].quality_issues
    assert dup.code == quality.DUPLICATE and "a" in dup.message and dup.retake_hint


def test_no_vehicle_is_blocking_only_without_damage(tmp_path):
    nothing = write_registry(tmp_path / "a", IMGSZ, [], [])
    (result,) = build_analyzer(nothing).analyze([photo(textured(W, H))])
    assert [i.code for i in result.quality_issues] == [quality.NO_VEHICLE] and not result.usable
    close_up = write_registry(tmp_path / "b", IMGSZ, [damage_det("minor-dent", (0, 0, 50, 50))], [])
    (result,) = build_analyzer(close_up).analyze([photo(textured(W, H))])
    assert [i.code for i in result.quality_issues] == [quality.NO_PART_VISIBLE]
    assert result.usable


@pytest.mark.parametrize("missing", ["damage", "parts"])
def test_missing_model_raises_model_unavailable_naming_it(tmp_path, missing):
    dets: list[FakeDet] = []
    settings = write_registry(
        tmp_path, IMGSZ, None if missing == "damage" else dets, None if missing == "parts" else dets
    )
    state = readiness(settings)
    assert not state.ready and state.missing == [missing]
    assert state.as_dict()["models"][missing]["present"] is False
    with pytest.raises(ModelUnavailable, match=missing):
        build_analyzer(settings)


def test_readiness_reports_present_models_without_loading(scene_settings):
    state = readiness(scene_settings)
    assert state.ready and state.missing == []
    assert state.as_dict()["models"]["damage"]["id"] == "damage-fake-1"


def test_empty_model_dir_is_not_ready(tmp_path):
    from cdat.settings import Settings

    state = readiness(Settings(model_dir=tmp_path))
    assert state.missing == ["damage", "parts"]
    with pytest.raises(ModelUnavailable):
        build_analyzer(Settings(model_dir=tmp_path))


def test_models_side_by_side_give_the_same_findings(scene_settings):
    # given an analyzer with a 2-thread budget (models run concurrently) and a 1-thread one
    parallel = build_analyzer(scene_settings.model_copy(update={"onnx_threads": 2}))
    sequential = build_analyzer(scene_settings)
    photos = [photo(textured(W, H, seed), f"p{seed}") for seed in range(3)]
    # when both analyse the same photos
    a, b = parallel.analyze(photos), sequential.analyze(photos)
    # then the findings agree
    assert parallel._pool is not None and sequential._pool is None
    assert [r.damages for r in a] == [r.damages for r in b]
    assert [r.parts for r in a] == [r.parts for r in b]


def test_a_large_jpeg_reports_geometry_in_its_own_pixels(scene_settings):
    import cv2

    # given the same scene photographed at 7x the size, as a JPEG (decoded reduced)
    big = cv2.resize(textured(W, H), (W * 7, H * 7), interpolation=cv2.INTER_NEAREST)
    ok, jpeg = cv2.imencode(".jpg", big)
    assert ok
    (result,) = build_analyzer(scene_settings).analyze([PhotoInput("big", jpeg.tobytes())])
    # then boxes and polygons are in the big photo's pixels
    assert (result.width, result.height) == (W * 7, H * 7)
    dent = next(d for d in result.damages if d.damage_type is DamageType.DENT)
    box = (dent.box.x1, dent.box.y1, dent.box.x2, dent.box.y2)
    assert box == pytest.approx((840, 350, 1540, 1050), abs=2)
    xs = [x for x, _ in dent.polygon]
    assert min(xs) == pytest.approx(840, abs=15) and max(xs) == pytest.approx(1540, abs=15)
    assert dent.part is CarPart.FRONT_LEFT_DOOR


def test_serving_path_never_imports_torch_or_ultralytics(scene_settings):
    import subprocess
    import sys

    # given a fresh interpreter that builds the analyzer and analyses a photo
    script = (
        "import sys, cv2, numpy as np\n"
        "from cdat.analysis import PhotoInput\n"
        "from cdat.settings import Settings\n"
        "import inference.loading, inference.overlay, inference.quality\n"
        "assert not any(m in sys.modules for m in ('torch', 'ultralytics')), 'at import'\n"
        f"s = Settings(model_dir={str(scene_settings.model_dir)!r}, onnx_threads=2)\n"
        "a = inference.loading.build_analyzer(s)\n"
        "img = (np.random.default_rng(0).random((200, 300, 3)) * 255).astype(np.uint8)\n"
        "r = a.analyze([PhotoInput('p', cv2.imencode('.png', img)[1].tobytes())])\n"
        "assert len(r) == 1 and r[0].damages\n"
        "print(sorted(m for m in ('torch', 'ultralytics') if m in sys.modules))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=False
    )
    # then it works and neither framework was loaded
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_ultralytics_runtime_without_weights_is_a_clear_model_unavailable(scene_settings):
    with pytest.raises(ModelUnavailable, match=r"\.pt"):
        build_analyzer(scene_settings, runtime="ultralytics")


def test_an_empty_claim_gives_no_analyses(scene_settings):
    assert build_analyzer(scene_settings).analyze([]) == []


def test_a_photo_that_breaks_a_model_fails_alone(scene_settings, monkeypatch):
    # given a damage model that fails on one particular photo (a fake behind the interface)
    analyzer = build_analyzer(scene_settings)
    real_infer = analyzer.damage.runtime.infer

    def flaky(images):
        if any(image.shape[1] == 333 for image in images):
            raise RuntimeError("model exploded")
        return real_infer(images)

    monkeypatch.setattr(analyzer.damage.runtime, "infer", flaky)
    photos = [
        photo(textured(W, H, 1), "ok1"),
        photo(textured(333, H, 2), "bad"),
        photo(textured(W, H, 3), "ok2"),
    ]
    # when the claim is analysed
    results = analyzer.analyze(photos)
    # then only that photo carries a blocking analysis_failed issue; the others are analysed
    assert [r.usable for r in results] == [True, False, True]
    assert results[1].quality_issues[0].code == quality.ANALYSIS_FAILED
    assert len(results[0].damages) == 2 and len(results[2].damages) == 2


def test_confidence_thresholds_come_from_settings(scene_settings):
    # given the scene's scratch (0.6) and hood (0.7) and thresholds between them and the rest
    strict = scene_settings.model_copy(update={"damage_conf": 0.7, "parts_conf": 0.8})
    (result,) = build_analyzer(strict).analyze([photo(textured(W, H))])
    # then only the detections above each model's threshold are reported
    assert [d.damage_type for d in result.damages] == [DamageType.DENT]
    assert [p.part for p in result.parts] == [CarPart.FRONT_LEFT_DOOR]


def test_each_model_is_served_at_its_own_threshold_unless_the_operator_sets_one(scene_settings):
    # given promoted models whose entries record the thresholds chosen on their val splits
    registry = Registry.load(scene_settings.model_dir)
    chosen = {"damage": 0.7, "parts": 0.8}
    registry.entries = [
        replace(e, metrics={**e.metrics, "served_conf": chosen[e.task]}) for e in registry.entries
    ]
    registry.save()
    # when the analyzer is built with no threshold set
    (result,) = build_analyzer(scene_settings).analyze([photo(textured(W, H))])
    # then each model reports only what clears its own threshold
    assert [d.damage_type for d in result.damages] == [DamageType.DENT]
    assert [p.part for p in result.parts] == [CarPart.FRONT_LEFT_DOOR]
    # and an operator's threshold wins over the model's
    lenient = scene_settings.model_copy(update={"damage_conf": 0.5})
    (result,) = build_analyzer(lenient).analyze([photo(textured(W, H))])
    assert {d.damage_type for d in result.damages} == {DamageType.DENT, DamageType.SCRATCH}


def test_a_model_file_that_does_not_match_its_checksum_is_refused(scene_settings):
    model = scene_settings.model_dir / "parts.onnx"
    model.write_bytes(model.read_bytes() + b"tampered")
    with pytest.raises(ModelUnavailable, match=r"parts.*checksum"):
        build_analyzer(scene_settings)


def test_a_whole_car_view_needs_the_models_own_higher_score_unless_the_rule_is_off(tmp_path):
    # given a photo in which the part model finds ten small parts (a whole car), a faint
    # scratch (0.18, over the served 0.15) and a clear dent (0.5), and a damage model whose
    # registry entry carries the rule chosen for its scores: 10+ parts need 0.2
    parts = [part_det(p, (40 * i, 60, 40 * i + 30, 100)) for i, p in enumerate(list(CarPart)[:10])]
    damages = [
        damage_det("minor-scratch", (42, 62, 52, 72), 0.18),
        damage_det("moderate-dent", (82, 62, 98, 90), 0.5),
    ]
    rule = WholeCarRule(min_parts=10, whole_car_conf=0.2)
    settings = write_registry(tmp_path / "models", IMGSZ, damages, parts, whole_car_rule=rule)
    # when the served analyzer looks at it
    analyzer = build_analyzer(settings)
    (result,) = analyzer.analyze([photo(textured(W, H))])
    # then it serves the model's rule, sees a whole car, and only the dent clears 0.2
    assert analyzer.whole_car == rule
    assert len(result.parts) == 10
    assert [d.damage_type for d in result.damages] == [DamageType.DENT]
    # and with the rule turned off (CDAT_DAMAGE_WHOLE_CAR=false) both are reported, as before
    before = settings.model_copy(update={"damage_whole_car": False})
    (result,) = build_analyzer(before).analyze([photo(textured(W, H))])
    assert {d.damage_type for d in result.damages} == {DamageType.SCRATCH, DamageType.DENT}
    # and the operator's rule (CDAT_DAMAGE_WHOLE_CAR_RULE) is served over the model's
    lenient = settings.model_copy(
        update={"damage_whole_car_rule": WholeCarRule(min_parts=10, whole_car_conf=0.1)}
    )
    (result,) = build_analyzer(lenient).analyze([photo(textured(W, H))])
    assert len(result.damages) == 2


def test_a_damage_model_registered_without_a_rule_serves_every_view_alike(tmp_path):
    # given the same whole-car photo, and a damage model whose entry has no whole-car rule
    parts = [part_det(p, (40 * i, 60, 40 * i + 30, 100)) for i, p in enumerate(list(CarPart)[:10])]
    damages = [damage_det("minor-scratch", (42, 62, 52, 72), 0.18)]
    settings = write_registry(tmp_path / "models", IMGSZ, damages, parts)
    # when it is analysed
    analyzer = build_analyzer(settings)
    (result,) = analyzer.analyze([photo(textured(W, H))])
    # then no other model's rule is applied to its scores: the faint scratch is reported
    assert analyzer.whole_car is None
    assert [d.damage_type for d in result.damages] == [DamageType.SCRATCH]


def test_the_whole_car_rule_leaves_a_close_up_as_served(scene_settings):
    # given the scene's two parts: a close-up; a stricter whole-car score than any damage's
    strict = scene_settings.model_copy(
        update={"damage_whole_car_rule": WholeCarRule(min_parts=3, whole_car_conf=0.95)}
    )
    # then both damages are still reported
    (result,) = build_analyzer(strict).analyze([photo(textured(W, H))])
    assert len(result.damages) == 2
    # and a rule that calls two parts a whole car drops them
    wide = strict.model_copy(update={"damage_whole_car_rule": WholeCarRule(2, whole_car_conf=0.95)})
    (result,) = build_analyzer(wide).analyze([photo(textured(W, H))])
    assert result.damages == ()


def test_a_damaged_whole_car_rule_in_the_registry_makes_the_model_unavailable(tmp_path):
    # given a registry whose damage entry stores a rule that cannot be read
    parts = [part_det(CarPart.FRONT_LEFT_DOOR, (0, 0, 200, 200))]
    settings = write_registry(tmp_path / "models", IMGSZ, [], parts)
    registry = Registry.load(settings.model_dir)
    entry = registry.get("damage-fake-1")
    damaged = replace(entry, whole_car_rule={"min_parts": "ten"})
    registry.entries[registry.entries.index(entry)] = damaged
    registry.save()
    # then the analyzer is not built, and the error names the model and the field
    with pytest.raises(ModelUnavailable, match=r"damage model: damage-fake-1: whole_car_rule"):
        build_analyzer(settings)


def test_one_dent_reported_twice_covers_its_part_once(tmp_path):
    # given two overlapping dent boxes on the door (100x100 each, 60 px apart: union 160x100
    # of the door's 200x200) and a scratch over the same place, as the detector reports one
    # damage under two boxes and a second name
    parts = [part_det(CarPart.FRONT_LEFT_DOOR, (0, 0, 200, 200))]
    damages = [
        damage_det("moderate-dent", (20, 50, 120, 150), 0.85),
        damage_det("moderate-dent", (80, 50, 180, 150), 0.6),
        damage_det("minor-scratch", (20, 50, 120, 150), 0.5),
    ]
    analyzer = build_analyzer(write_registry(tmp_path / "models", IMGSZ, damages, parts))
    # when the photo is analysed and its damages merged into the claim's findings
    (result,) = analyzer.analyze([photo(textured(W, H))])
    findings = {f.damage_type: f for f in merge_findings([result])}
    # then the dent covers the door as far as the two boxes do together, not their sum
    assert findings[DamageType.DENT].part_coverage == pytest.approx(16000 / 40000, abs=0.02)
    # and the surer dent keeps its own share, the other only what it adds
    dents = sorted(
        (d for d in result.damages if d.damage_type is DamageType.DENT),
        key=lambda d: -d.confidence,
    )
    assert dents[0].part_coverage == pytest.approx(0.25, abs=0.02)
    assert dents[1].part_coverage == pytest.approx(6000 / 40000, abs=0.02)
    # and a damage of another type over the same place keeps its whole share
    assert findings[DamageType.SCRATCH].part_coverage == pytest.approx(0.25, abs=0.02)


def calibrated_entry(settings, record) -> None:
    registry = Registry.load(settings.model_dir)
    entry = registry.get("damage-fake-1")
    registry.entries[registry.entries.index(entry)] = replace(entry, confidence_calibration=record)
    registry.save()


CURVES = {
    "close_up": {"slope": 1.0, "intercept": 0.0},
    "whole_car": {"slope": 1.0, "intercept": -1.0},
    "view_unread": {"slope": 0.5, "intercept": 2.0},
    "whole_car_view_from": 0.5,
}


def test_a_damage_model_with_curves_reports_each_score_and_its_chance(scene_settings):
    # given the scene's dent (score 0.85) and scratch (0.6), and a damage entry whose curves
    # read a score on a photo of unread view as 1 / (1 + exp(-(0.5 logit(s) + 2)))
    calibrated_entry(scene_settings, CURVES)
    # when the served analyzer reads the photo (no gate here: its view is unread)
    (result,) = build_analyzer(scene_settings).analyze([photo(textured(W, H))])

    # then each damage keeps its score and carries its score's chance, the surer surer
    def chance(s):
        return 1 / (1 + np.exp(-(0.5 * np.log(s / (1 - s)) + 2)))

    by_type = {d.damage_type: d for d in result.damages}
    dent, scratch = by_type[DamageType.DENT], by_type[DamageType.SCRATCH]
    assert (dent.confidence, scratch.confidence) == (
        pytest.approx(0.85, abs=0.01), pytest.approx(0.6, abs=0.01),
    )  # fmt: skip
    assert dent.chance == pytest.approx(chance(dent.confidence), abs=1e-4)
    assert scratch.chance == pytest.approx(chance(scratch.confidence), abs=1e-4)
    assert dent.certainty == dent.chance > scratch.certainty == scratch.chance > 0.9
    # and with the curves turned off (CDAT_DAMAGE_CALIBRATION=false) no chance is read
    raw = scene_settings.model_copy(update={"damage_calibration": False})
    (result,) = build_analyzer(raw).analyze([photo(textured(W, H))])
    assert [d.chance for d in result.damages] == [None, None]
    assert sorted(d.certainty for d in result.damages) == sorted(
        d.confidence for d in result.damages
    )


def test_damaged_curves_in_the_registry_make_the_model_unavailable(scene_settings):
    # given a damage entry whose close-up curve falls (it would reorder damages)
    calibrated_entry(scene_settings, {**CURVES, "close_up": {"slope": -1.0, "intercept": 0.0}})
    # then the analyzer is not built, and the error names the model, the field and the curve
    with pytest.raises(
        ModelUnavailable, match=r"damage-fake-1: confidence_calibration: .*close_up"
    ):
        build_analyzer(scene_settings)
