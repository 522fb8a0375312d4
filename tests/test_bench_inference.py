"""The speed bench (bench/bench_inference.py) on a model directory none of whose variants
can load: one error line naming each variant and why, not a crash while timing."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.images import jpeg


@pytest.mark.slow
def test_a_bench_where_no_variant_loads_says_why(tmp_path: Path) -> None:
    from bench.inference_bench.config import SERVED, BenchConfig
    from bench.inference_bench.controller import measure

    # given a model directory with no registry in it, and one photo to time
    models = tmp_path / "models"
    models.mkdir()
    photo = tmp_path / "p.jpg"
    photo.write_bytes(jpeg())
    cfg = BenchConfig(model_dir=models, data_root=tmp_path, variants=(SERVED,), warmup=0)
    # when the served variant is timed, then the bench stops with the variant's own reason
    with pytest.raises(SystemExit, match=r"error: no variant could load \(served: \w+"):
        measure(cfg, 1, [photo], last=True)
