"""The photo path's savings keep its outputs: the severity planes computed once per photo
give each damage the features it had alone, and numpy's BLAS runs on one thread in the
analyzer."""

from __future__ import annotations

import numpy as np
import pytest

from cdat.taxonomy import DamageType
from inference.severity import (
    TYPE_GROUPS,
    WORK_SIDE,
    SeverityView,
    _type_group,
    severity_features,
    severity_view,
    view_features,
)

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


def whole_view_features(view: SeverityView, mask: np.ndarray, kind: DamageType) -> np.ndarray:
    """The features as first defined: every plane of the photo's whole working view read."""
    import cv2

    size, gray, hsv, grad = view.size, view.gray, view.hsv, view.grad
    region = cv2.resize(mask.astype(np.uint8), size, interpolation=cv2.INTER_NEAREST) > 0
    if not region.any():
        ys, xs = np.nonzero(mask)
        gy, gx = size[1] / mask.shape[0], size[0] / mask.shape[1]
        at = (int(ys.mean() * gy), int(xs.mean() * gx)) if len(ys) else (size[1] // 2, size[0] // 2)
        region[at] = True
    width = max(3, round(0.03 * WORK_SIDE))
    kernel = np.ones((2 * width + 1, 2 * width + 1), np.uint8)
    ring = (cv2.dilate(region.astype(np.uint8), kernel) > 0) & ~region
    ring = ring if ring.any() else region
    area = float(region.mean())
    ys, xs = np.nonzero(region)
    box_w, box_h = (xs.max() - xs.min() + 1) / size[0], (ys.max() - ys.min() + 1) / size[1]
    value_in = hsv[..., 2][region]
    grad_in, grad_ring = float(grad[region].mean()), float(grad[ring].mean())
    edges_in, dark_in = float(view.edges[region].mean()), float((value_in < 0.2).mean())
    one_hot = np.zeros(TYPE_GROUPS)
    one_hot[_type_group(kind)] = 1.0
    log_area = float(np.log(area + 1e-4))
    base = [log_area, float(np.sqrt(area)), float(box_w), float(box_h),
            float(np.log(box_w / box_h)),
            float(region.sum() / max(1.0, box_w * size[0] * box_h * size[1])),
            float(gray[region].mean()), float(gray[region].std()),
            float(hsv[..., 1][region].mean()), dark_in, float((value_in > 0.9).mean()),
            float(gray[region].mean() - gray[ring].mean()),
            float(hsv[..., 1][region].mean() - hsv[..., 1][ring].mean()), grad_in, grad_ring,
            float(np.log((grad_in + 1e-3) / (grad_ring + 1e-3))), edges_in,
            float(view.edges[ring].mean()), float(view.laplacian[region].mean()),
            float(np.log1p(cv2.connectedComponents(region.astype(np.uint8))[0] - 1))]  # fmt: skip
    interactions = np.outer(one_hot, [log_area, edges_in, dark_in]).reshape(-1)
    return np.concatenate([one_hot, base, interactions]).astype(np.float64)


def test_a_damage_measured_around_itself_has_the_features_of_the_whole_view() -> None:
    # given a photo's view and damages of every shape: blobs, slivers, two pieces, one
    # touching an edge, one filling the photo, one vanished
    view = severity_view(textured(480, 320, seed=9))
    rng = np.random.default_rng(3)
    shaped = masks((64, 96))
    full = np.ones((64, 96), bool)
    edge = np.zeros((64, 96), bool)
    edge[:, 80:] = True
    pieces = np.zeros((64, 96), bool)
    pieces[5:9, 5:9] = pieces[50:60, 70:90] = True
    shaped += [full, edge, pieces]
    shaped += [rng.random((64, 96)) > threshold for threshold in (0.5, 0.97, 0.999)]
    for _ in range(12):  # random boxes of every size and place
        y0, x0 = rng.integers(0, 60), rng.integers(0, 90)
        box = np.zeros((64, 96), bool)
        box[y0 : y0 + rng.integers(1, 40), x0 : x0 + rng.integers(1, 60)] = True
        shaped.append(box)
    # when each is measured, then its features are those the whole view gives, exactly
    for mask in shaped:
        for kind in (DamageType.DENT, DamageType.SCRATCH):
            assert np.array_equal(
                view_features(view, mask, kind), whole_view_features(view, mask, kind)
            )


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
