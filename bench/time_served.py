"""The served analyzer alone, photo by photo, for comparing two versions of the photo path.

`bench/bench_inference.py` compares runtimes within one checkout; this times the code of
one checkout (the served backends, the promoted models and gate, the bench's 40 photos,
`analyze([photo])` as the bench does), so that running it alternately in two checkouts
compares two versions of `inference/pipeline.py` under the same load. `--profile` adds
a cProfile of one more pass (the calling thread only: the part model's thread shows as the
wait for its result)::

    python bench/time_served.py --threads 2 --rounds 2
    python bench/time_served.py --profile
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import statistics
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.inference_bench.config import SERVED, BenchConfig, find_photos  # noqa: E402
from bench.inference_bench.workers import PipelineWorker  # noqa: E402


def main(args: argparse.Namespace) -> int:
    cfg = BenchConfig(model_dir=args.model_dir.resolve(), data_root=args.data_root.resolve())
    photos = find_photos(cfg.data_root, args.limit)
    worker = PipelineWorker(cfg, SERVED, args.threads, photos)
    start_load = os.getloadavg()
    latencies: list[float] = []
    stages: dict[str, list[float]] = {}
    for _ in range(args.rounds):
        for index in range(len(photos)):
            latency, timings, _ = worker.photo(index)
            latencies.append(latency)
            for name, value in timings.items():
                stages.setdefault(name, []).append(value)
    medians = {k: round(statistics.median(v), 1) for k, v in stages.items()}
    print(
        f"{REPO.name}: median {statistics.median(latencies):.1f} ms over {len(latencies)} "
        f"photo runs, {args.threads} threads, stages {medians}, load average "
        f"{[round(v, 2) for v in start_load]} -> {[round(v, 2) for v in os.getloadavg()]}"
    )
    if args.profile:
        profiler = cProfile.Profile()
        profiler.enable()
        for index in range(len(photos)):
            worker.photo(index)
        profiler.disable()
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(30)
        print(out.getvalue())
    return 0


def get_args_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    default_root = os.environ.get("CDAT_DATA_ROOT", str(REPO.parent / "shared" / "datasets"))
    parser.add_argument("--model-dir", type=Path, default=REPO / "inference" / "models")
    parser.add_argument("--data-root", type=Path, default=Path(default_root))
    parser.add_argument("--limit", type=int, default=40, help="photos (half per set)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=2, help="passes over the photos")
    parser.add_argument("--profile", action="store_true", help="cProfile one more pass")
    return parser


if __name__ == "__main__":
    raise SystemExit(main(get_args_parser().parse_args()))
