"""Ultralytics without polars: results.csv is still read into each checkpoint."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

from training.ultra import _read_results_csv


def test_results_csv_reads_as_ultralytics_expects(tmp_path: Path) -> None:
    csv = tmp_path / "results.csv"
    csv.write_text("epoch,time,metrics/mAP50(M)\n1,12.5,0.1\n2,25.0,0.2\n")
    read = _read_results_csv(SimpleNamespace(csv=csv))
    assert read == {"epoch": [1.0, 2.0], "time": [12.5, 25.0], "metrics/mAP50(M)": [0.1, 0.2]}
    assert _read_results_csv(SimpleNamespace(csv=tmp_path / "missing.csv")) == {}
