"""The photo path's savings keep its outputs: the severity planes computed once per photo
give each damage the features it had alone, and numpy's BLAS runs on one thread in the
analyzer."""

from __future__ import annotations

import numpy as np
import pytest

from cdat.taxonomy import DamageType
from inference.severity import severity_features, severity_view, view_features

from .conftest import textured


def masks(shape: tuple[int, int]) -> list[np.ndarray]:
    h, w = shape
    out = []
    for y0, x0, y1, x1 in ((2, 3, 20, 30), (10, 10, 60, 90), (40, 5, 41, 6)):
        m = np.zeros((h, w), bool)
        m[y0:y1, x0:x1] = True
        out.append(m)
    out.append(np.zeros((h, w), bool))  # a vanished mask: placed at the centre
    return out


def test_one_view_per_photo_gives_each_damage_its_own_features():
    image = textured(480, 320, seed=4)
    view = severity_view(image)
    kinds = (DamageType.DENT, DamageType.SCRATCH, DamageType.BROKEN_PART, DamageType.DENT)
    shared = [view_features(view, m, t) for m, t in zip(masks((64, 96)), kinds, strict=True)]
    alone = [severity_features(image, m, t) for m, t in zip(masks((64, 96)), kinds, strict=True)]
    for a, b in zip(shared, alone, strict=True):
        assert np.array_equal(a, b)
    # and measuring damages left the view as it was (it is shared by all of them)
    again = severity_view(image)
    for name in ("gray", "hsv", "grad", "edges", "laplacian"):
        assert np.array_equal(getattr(view, name), getattr(again, name))


def test_the_analyzer_limits_numpy_blas_to_one_thread(tmp_path):
    from threadpoolctl import threadpool_info

    from inference.loading import build_analyzer

    from .conftest import FakeDet, write_registry

    settings = write_registry(
        tmp_path / "m", 64, [FakeDet(20, 20, 10, 10, 0, 0.9)], [FakeDet(30, 30, 20, 20, 0, 0.9)]
    )
    build_analyzer(settings.model_copy(update={"onnx_threads": 2}))
    blas = [i for i in threadpool_info() if i["user_api"] == "blas"]
    assert blas and all(i["num_threads"] == 1 for i in blas)


@pytest.mark.parametrize("runtime", ["onnxruntime", "openvino"])
def test_a_claim_analysed_one_photo_per_core_equals_photo_by_photo(tmp_path, encode, runtime):
    from cdat.analysis import PhotoInput
    from inference.backends import available
    from inference.loading import build_analyzer

    from .conftest import DAMAGE_CLASSES, PART_CLASSES, FakeDet, write_registry

    if not available(runtime):
        pytest.skip(f"{runtime} is not installed (pip install {runtime})")
    damage = [FakeDet(30, 40, 20, 16, DAMAGE_CLASSES.index("moderate-dent"), 0.8)]
    parts = [FakeDet(32, 40, 60, 50, PART_CLASSES.index("hood"), 0.9)]
    settings = write_registry(tmp_path / "m", 96, damage, parts).model_copy(
        update={"onnx_threads": 2, "inference_runtime": runtime, "claim_photos_side_by_side": True}
    )
    analyzer = build_analyzer(settings)
    claim = [PhotoInput(f"p{k}", encode(textured(160 + 8 * k, 120, seed=k))) for k in range(5)]
    claim.insert(2, PhotoInput("broken", b"not a photo"))
    claim.append(PhotoInput("again", claim[0].data))
    # when the claim is analysed as one call (one photo per core) and photo by photo
    together = analyzer.analyze(claim)
    alone = [analyzer.analyze([photo])[0] for photo in claim]
    # then every photo's findings are the same, in order; the unreadable photo fails
    # alone, and the repeated photo is still caught (a claim-wide check)
    assert [a.photo_id for a in together] == [p.photo_id for p in claim]
    for a, b in zip(together[:-1], alone[:-1], strict=True):
        assert (a.damages, a.parts, a.perceptual_hash) == (b.damages, b.parts, b.perceptual_hash)
        assert [i.code for i in a.quality_issues] == [i.code for i in b.quality_issues]
    assert together[0].damages and together[0].parts
    assert [i.code for i in together[2].quality_issues] == ["unreadable"]
    assert "duplicate_photo" in [i.code for i in together[-1].quality_issues]


def test_a_batched_runtime_keeps_the_claim_together(tmp_path):
    from inference.loading import build_analyzer

    from .conftest import FakeDet, write_registry

    settings = write_registry(
        tmp_path / "m", 64, [FakeDet(20, 20, 10, 10, 0, 0.9)], [FakeDet(30, 30, 20, 20, 0, 0.9)]
    )
    asked = {"onnx_threads": 2, "claim_photos_side_by_side": True}
    one = build_analyzer(settings.model_copy(update=asked))
    batched = build_analyzer(settings.model_copy(update={**asked, "onnx_batch_size": 4}))
    default = build_analyzer(settings.model_copy(update={"onnx_threads": 2}))
    # one photo per core can pay off for runtimes that take one photo a call; a runtime
    # compiled for batches would pad each photo to a whole batch; unasked, it is off
    assert one.photos_side_by_side and not batched.photos_side_by_side
    assert not default.photos_side_by_side
