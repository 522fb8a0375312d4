"""What a larger damage-model input costs per photo: the served analyzer with the damage
model exported at each size, timed side by side in one run.

Each candidate (an ONNX export of the same weights at another input size, made with
`cdat export --imgsz N`) takes the promoted damage model's place in the served analyzer
(gate, quality checks, part model, severity stage and damage -> part unchanged), in the
backend and precision this machine serves the damage model in; photos go to the
candidates round-robin, so load on the machine falls on all of them alike. Photos are val
photos (half damage close-ups, half whole cars): this measures time only, and what is
chosen from it is chosen on val.

    python bench/bench_damage_size.py \\
        --candidates inference/models/damage-claims-seg-n-20261201.onnx \\
        runs/spend/damage-claims-512.onnx runs/spend/damage-claims-640.onnx \\
        --out bench/results/damage-size.json

Prints one line per candidate and writes JSON with the CPU named.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def val_photos(data_root: Path, limit: int) -> list[Path]:
    """Half damage close-ups (damaged-parts val), half whole cars (car-parts val)."""
    from training.claim_eval import DATASETS, typed_photos
    from training.closeup import held_out_photos

    closeups = [p for p, _ in held_out_photos(DATASETS / "damaged-parts.yaml", "val", 0, data_root)]
    cars = [p for p, _ in typed_photos(DATASETS / "car-parts.yaml", "val", 0, data_root)]
    mixed = [p for pair in zip(closeups, cars, strict=False) for p in pair]
    return mixed[:limit]


def analyzer_with(path: Path, threads: int) -> Any:
    """The served analyzer with its damage model from `path`, in the backend and precision
    this machine serves the promoted damage model in (the registry's gate records)."""
    from cdat.settings import Settings
    from inference.backends import open_session
    from inference.loading import build_analyzer
    from inference.runtime import DetectorRuntime, SegmentationModel

    analyzer = build_analyzer(Settings(onnx_threads=threads))
    current = analyzer.damage
    served: DetectorRuntime = current.runtime  # type: ignore[assignment]
    backend, precision = served.label.split("-")
    session = open_session(path, backend, precision, threads=max(1, threads // 2))  # type: ignore[arg-type]
    runtime = DetectorRuntime(session, config=served.config)
    entry = replace(current.entry, file=path.name, imgsz=runtime.imgsz)
    analyzer.damage = SegmentationModel(entry, runtime, current.severity, current.closeup_severity)
    return analyzer


def main(args: argparse.Namespace) -> int:
    import statistics

    from cdat.analysis import PhotoInput

    sys.path.insert(0, str(REPO / "bench"))
    from inference_bench.config import cpu_description

    photos = [PhotoInput(p.name, p.read_bytes()) for p in val_photos(args.data_root, args.limit)]
    analyzers = {str(c): analyzer_with(c, args.threads) for c in args.candidates}
    served = {k: a.runtimes for k, a in analyzers.items()}
    times: dict[str, list[float]] = {k: [] for k in analyzers}
    damage_ms: dict[str, list[float]] = {k: [] for k in analyzers}
    for k, photo in enumerate(photos * args.rounds):
        for name, analyzer in analyzers.items():
            started = time.perf_counter()
            result = analyzer.analyze([photo])[0]
            elapsed = (time.perf_counter() - started) * 1000
            if k >= args.warmup:
                times[name].append(elapsed)
                if "damage_ms" in result.timings_ms:
                    damage_ms[name].append(result.timings_ms["damage_ms"])
    rows = {
        name: {
            "imgsz": analyzers[name].damage.entry.imgsz,
            "runtimes": served[name],
            "median_ms": round(statistics.median(times[name]), 2),
            "damage_model_median_ms": (
                round(statistics.median(damage_ms[name]), 2) if damage_ms[name] else None
            ),
            "photos_timed": len(times[name]),
        }
        for name in analyzers
    }
    report = {
        **cpu_description(),
        "load_average_at_start_and_end": [args.load_start, os.getloadavg()],
        "threads": args.threads,
        "photos": "val: damaged-parts close-ups and car-parts whole cars, alternating",
        "command": " ".join(["python bench/bench_damage_size.py", *sys.argv[1:]]),
        "candidates": rows,
    }
    for name, row in rows.items():
        print(
            f"{Path(name).name}: {row['imgsz']} px  median {row['median_ms']} ms/photo  "
            f"damage model {row['damage_model_median_ms']} ms  ({row['runtimes']})"
        )
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(report, indent=1) + "\n")
        print(f"wrote {args.out}")
    return 0


def get_args_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    default_root = os.environ.get("CDAT_DATA_ROOT", str(REPO.parent / "shared" / "datasets"))
    parser.add_argument("--candidates", type=Path, nargs="+", required=True)
    parser.add_argument("--data-root", type=Path, default=Path(default_root))
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--limit", type=int, default=40)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--out", type=Path)
    return parser


if __name__ == "__main__":
    arguments = get_args_parser().parse_args()
    arguments.load_start = os.getloadavg()
    raise SystemExit(main(arguments))
