"""The vehicle gate measured as a claim meets it: through the served analyzer, on test.

For each photo of the `no-vehicle` test split and of the vehicle sources' test splits, the
served pipeline runs (decode, quality checks, the gate, the damage and part models); a
photo counts as refused when it gets the `no_vehicle` issue.

- `non_vehicle_refused`: photos without a vehicle refused *and* left with no finding (a
  damage on such a photo would be priced);
- `closeups_refused`: damaged close-ups (`car-parts-damage`, `damaged-parts`) refused, all
  of them and per source (`closeups_refused_per_source`);
- `vehicle_photos_refused`: whole-car photos (`car-parts`) refused.

    python -m training.gate_eval --gate runs/gate/vehicle-gate.onnx --out runs/gate/test.json
    cdat gate evaluate --out runs/gate/test.json                 # the promoted gate
    cdat gate evaluate --no-gate --out runs/gate/test-before.json  # today's checks alone

`gate_metrics(analyzer)` returns the same dict for `cdat evaluate` and the registry.
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from cdat.findings import PhotoAnalysis
from training.claim_eval import refused_unpriced
from training.errors import TrainingError, run_script
from training.eval_report import check_json_out, write_json
from training.gate_data import (
    CLOSEUP_SOURCES,
    VEHICLE_SOURCES,
    WHOLE_CAR_SOURCES,
    GatePhoto,
    gate_photos,
)


@dataclass
class GateTally:
    photos: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    refused: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    refused_clean: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    """Refused with no finding left on the photo."""
    with_damage: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    gate_ms: list[float] = field(default_factory=list)

    def add(self, source: str, analysis: PhotoAnalysis) -> None:
        self.photos[source] += 1
        self.refused[source] += analysis.refused_no_vehicle
        self.refused_clean[source] += refused_unpriced(analysis)
        self.with_damage[source] += bool(analysis.damages)
        gate_ms = analysis.timings_ms.get("gate_ms")
        if gate_ms is not None:
            self.gate_ms.append(gate_ms)

    def share(self, counts: dict[str, int], sources: Iterable[str]) -> float | None:
        total = sum(self.photos[s] for s in sources)
        return sum(counts[s] for s in sources) / total if total else None

    def report(self) -> dict[str, Any]:
        nothing = [s for s in self.photos if s not in VEHICLE_SOURCES]
        closeups = [s for s in CLOSEUP_SOURCES if self.photos[s]]
        return {
            "non_vehicle_refused": self.share(self.refused_clean, nothing),
            "non_vehicle_with_damage": self.share(self.with_damage, nothing),
            "closeups_refused": self.share(self.refused, closeups),
            "closeups_refused_per_source": {s: self.share(self.refused, [s]) for s in closeups},
            "vehicle_photos_refused": self.share(
                self.refused, [s for s in WHOLE_CAR_SOURCES if self.photos[s]]
            ),
            "refused_per_source": {s: self.share(self.refused, [s]) for s in sorted(self.photos)},
            "photos_per_source": dict(sorted(self.photos.items())),
            "gate_ms_median": float(np.median(self.gate_ms)) if self.gate_ms else None,
        }


def tally_photos(analyzer: Any, photos: Iterable[GatePhoto], batch: int = 4) -> GateTally:
    """Run the analyzer on the photos, a few at a time (as a claim's photos arrive)."""
    from cdat.analysis import PhotoInput

    tally = GateTally()
    chunk: list[GatePhoto] = []
    for photo in [*photos, None]:
        if photo is not None:
            chunk.append(photo)
        if chunk and (photo is None or len(chunk) == batch):
            inputs = [PhotoInput(p.path.name, p.path.read_bytes()) for p in chunk]
            for p, analysis in zip(chunk, analyzer.analyze(inputs), strict=True):
                tally.add(p.source, analysis)
            chunk = []
    return tally


def gate_metrics(
    analyzer: Any, split: str = "test", data_root: Path | None = None, seed: int = 0
) -> dict[str, Any]:
    """The gate figures of a served analyzer on one split of every gate source."""
    report = tally_photos(analyzer, gate_photos(split, data_root, seed=seed)).report()
    gate = getattr(analyzer, "gate", None)
    return {
        "split": split,
        "gate": gate.version if gate is not None else None,
        "served_conf": gate.threshold if gate is not None else None,
        **report,
    }


def build_gate_analyzer(
    gate_file: Path | None, threshold: float | None, no_gate: bool, model_dir: Path | None
) -> Any:
    """The served analyzer; with `gate_file`, that candidate gate instead of the promoted."""
    from cdat.settings import Settings
    from inference.loading import build_analyzer
    from inference.vehicle_gate import VehicleGate

    settings = Settings() if model_dir is None else Settings(model_dir=model_dir)
    analyzer = build_analyzer(settings)
    if no_gate:
        analyzer.gate = None
    elif gate_file is not None:
        analyzer.gate = VehicleGate.load(
            gate_file, threshold or _stored_threshold(gate_file), settings.onnx_threads
        )
    elif analyzer.gate is None:
        raise TrainingError(f"no gate is promoted in {settings.model_dir}: pass --gate")
    return analyzer


def _stored_threshold(path: Path) -> float:
    """The threshold training chose on val, which it writes into the ONNX metadata."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    value = session.get_modelmeta().custom_metadata_map.get("threshold")
    if value is None:
        raise TrainingError(f"{path}: no stored threshold; pass --threshold")
    return float(value)


def get_args_parser(add_help: bool = True) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0], add_help=add_help)
    parser.add_argument(
        "--gate", type=Path, default=None, help="candidate gate .onnx (default: the promoted one)"
    )
    parser.add_argument(
        "--threshold",
        type=float,
        default=None,
        help="refuse under this vehicle probability (default: the one chosen on val)",
    )
    parser.add_argument(
        "--no-gate", action="store_true", help="measure the analyzer without any gate (before)"
    )
    parser.add_argument(
        "--split", choices=("val", "test"), default="test", help="the split to measure on"
    )
    parser.add_argument(
        "--model-dir", type=Path, default=None, help="registry of the damage and part models"
    )
    parser.add_argument(
        "--data-root", type=Path, default=None, help="default: CDAT_DATA_ROOT or ../shared/datasets"
    )
    parser.add_argument("--out", type=Path, required=True, help="where to write the JSON report")
    return parser


def main(args: argparse.Namespace) -> int:
    if args.gate is not None and (args.no_gate or not args.gate.is_file()):
        raise TrainingError(f"--gate {args.gate}: not a file, or given with --no-gate")
    if args.threshold is not None and not 0.0 < args.threshold < 1.0:
        raise TrainingError(f"--threshold {args.threshold}: must lie in (0, 1)")
    check_json_out(args.out)
    analyzer = build_gate_analyzer(args.gate, args.threshold, args.no_gate, args.model_dir)
    report = gate_metrics(analyzer, args.split, args.data_root)
    report["per_class"] = {}  # `cdat models register --report` reads it beside the figures
    print(json.dumps(report, indent=1))
    write_json(args.out, report)
    return 0


def gate_refusals(gate: Path, split: str, data_root: Path | None, seed: int) -> dict[str, int]:
    """How many of each vehicle source's `split` photos a gate file refuses at the
    threshold its file names, each photo decoded as serving decodes it."""
    from training.claims import gate_at_its_threshold
    from training.vehicle_gate import read_photo

    served = gate_at_its_threshold(gate, "--refusals-like")
    counts: dict[str, int] = {}
    for photo in gate_photos(split, data_root, seed=seed):
        if photo.vehicle:
            refused = served.probabilities([read_photo(photo.path)])[0] < served.threshold
            counts[photo.source] = counts.get(photo.source, 0) + int(refused)
    return counts


if __name__ == "__main__":
    run_script(main, get_args_parser())
