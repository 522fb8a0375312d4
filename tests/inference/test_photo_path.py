"""The photo path's savings keep its outputs: the severity planes computed once per photo
give each damage the features it had alone, and numpy's BLAS runs on one thread in the
analyzer."""

from __future__ import annotations

import numpy as np

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

    from inference.pipeline import build_analyzer

    from .conftest import FakeDet, write_registry

    settings = write_registry(
        tmp_path / "m", 64, [FakeDet(20, 20, 10, 10, 0, 0.9)], [FakeDet(30, 30, 20, 20, 0, 0.9)]
    )
    build_analyzer(settings.model_copy(update={"onnx_threads": 2}))
    blas = [i for i in threadpool_info() if i["user_api"] == "blas"]
    assert blas and all(i["num_threads"] == 1 for i in blas)
