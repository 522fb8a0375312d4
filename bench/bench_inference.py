"""Speed of the inference pipeline on real photos: every runtime and precision side by side.

In one run, on the same test photos and weights, each in its own worker process, photos
sent to the variants round-robin (bench/inference_bench/controller.py):

* ONNX Runtime FP32 (served today), OpenVINO FP32 and bf16 (precision hint), INT8 models
  (head kept in float, calibrated on train photos; ONNX Runtime and OpenVINO), and
  Ultralytics `YOLO.predict` on the same weights as the reference;
* per-photo latency of the full pipeline (`Analyzer.analyze([photo])`: decode, quality
  checks, both models, post-processing, damage-to-part) and its stages, at 1 and 2 threads;
* photos/s for a claim of 8 photos analysed as one call (as served: the models side by
  side over all 8; and one photo per core), and photo by photo; peak RSS of each worker;
* detection parity of each variant against ONNX Runtime FP32 (matched detections, mean
  mask IoU, score drift), and whether it is within the parity limits on these photos
  (information: the precision gate judges accuracy on val, `training.precision_gate`).

Goal on the 2-core CPU: both models at least 2x faster than Ultralytics predict and at most
70 ms median per photo. Prints a summary and writes JSON with the CPU named::

    CDAT_DATA_ROOT=../shared/datasets .venv/bin/python bench/bench_inference.py
    .venv/bin/python bench/bench_inference.py --limit 20 --variants onnxruntime-fp32 \\
        openvino-bf16 --out /tmp/inference-dev.json
    python bench/bench_inference.py --gpu-only --limit 176   # bench/results/inference-gpu.json
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.inference_bench.config import (  # noqa: E402  (the repository on the path first)
    DEFAULT_VARIANTS,
    PHOTO_DIRS,
    BenchConfig,
    Variant,
    environment,
    find_photos,
)

GOAL_MEDIAN_MS = 70.0
GOAL_SPEEDUP = 2.0


def parse_variant(text: str) -> Variant:
    """'openvino-bf16', 'openvino-bf16-b8', 'ultralytics' -> Variant; SystemExit otherwise."""
    known = {v.name: v for v in DEFAULT_VARIANTS} | {"ultralytics": Variant("ultralytics")}
    base, _, batch = text.rpartition("-b") if "-b" in text else (text, "", "")
    if base in known and batch.isdigit() and int(batch) > 1:
        return Variant(known[base].backend, known[base].precision, int(batch))
    if text in known:
        return known[text]
    raise SystemExit(f"error: unknown variant {text!r} (one of {', '.join(known)}, or NAME-bN)")


def speedups(rows: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """Ultralytics median / each variant's median, per thread count."""
    out: dict[str, dict[str, float]] = {}
    for row in rows:
        if row.get("median_ms") is None or row["name"] == "ultralytics-predict":
            continue
        ref = next(
            (
                r
                for r in rows
                if r["name"] == "ultralytics-predict"
                and r["threads"] == row["threads"]
                and r.get("median_ms")
            ),
            None,
        )
        if ref:
            ratio = round(ref["median_ms"] / row["median_ms"], 2)
            out.setdefault(row["name"], {})[str(row["threads"])] = ratio
    return out


def goals(rows: list[dict[str, Any]], speedup: dict[str, dict[str, float]]) -> dict[str, Any]:
    met = {}
    for row in rows:
        ratio = speedup.get(row["name"], {}).get(str(row["threads"]))
        if row.get("median_ms") is None or ratio is None:
            continue
        key = f"{row['name']}@{row['threads']}"
        met[key] = {
            f"median_le_{GOAL_MEDIAN_MS:.0f}ms": row["median_ms"] <= GOAL_MEDIAN_MS,
            f"speedup_ge_{GOAL_SPEEDUP:.0f}x": ratio >= GOAL_SPEEDUP,
        }
    return {"by_variant": met, "any_variant_meets_both": any(all(v.values()) for v in met.values())}


def run(cfg: BenchConfig) -> dict[str, Any]:
    from bench.inference_bench.controller import run_all

    start_env = environment()
    photos = find_photos(cfg.data_root, cfg.limit)
    started = time.perf_counter()
    results = run_all(cfg, photos)
    speedup = speedups(results["rows"])
    return {
        "benchmark": "inference",
        "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "seconds": round(time.perf_counter() - started),
        "config": json.loads(json.dumps(asdict(cfg), default=str)),
        "environment": {
            **start_env,
            "load_average_at_end": [round(v, 2) for v in os.getloadavg()],
        },
        "photos": {"count": len(photos), "dirs": list(PHOTO_DIRS)},
        "runs": results["rows"],
        "speedup_vs_ultralytics_median": speedup,
        "parity_vs_onnxruntime_fp32": results["parity_vs_onnxruntime_fp32"],
        "int8_quantisation": results["int8_quantisation"],
        "profile_reference_top_tottime": results["profile_reference_top_tottime"],
        "goals": goals(results["rows"], speedup),
        "served_here": served_choice(cfg),
    }


def served_choice(cfg: BenchConfig) -> dict[str, str]:
    """What serving picks on this machine for each promoted model, with default settings."""
    from inference.cpu_features import read_cpu_features
    from inference.registry import Registry
    from inference.runtime_choice import choose_backend

    registry, cpu = Registry.load(cfg.model_dir), read_cpu_features()
    out = {}
    for task in ("damage", "parts"):
        choice = choose_backend(registry.promoted_entry(task), cpu)
        out[task] = f"{choice.backend}-{choice.precision} ({choice.reason})"
    return out


def print_report(report: dict[str, Any]) -> None:
    env = report["environment"]
    print(
        f"photos: {report['photos']['count']}  cpu: {env['cpu']} x{env['cpu_count']} "
        f"{env['cpu_flags_that_matter']}  load avg start {env['load_average_1_5_15']} "
        f"end {env['load_average_at_end']}"
    )
    for row in report["runs"]:
        label = f"  {row['name']:<22} threads={row['threads']}"
        if "skipped" in row:
            print(f"{label}  skipped ({row['skipped']})")
            continue
        stages = " ".join(f"{k[:-3]}={v:.1f}" for k, v in row["stage_median_ms"].items())
        median = f"median={row['median_ms']:.1f} ms" if row["median_ms"] is not None else ""
        print(
            f"{label}  {median}  claim of 8: {row.get('claim_photos_per_s')} photos/s  "
            f"RSS={row['peak_rss_mb']:.0f} MB  [{stages}]"
        )
    print(f"  speedup vs Ultralytics (median): {report['speedup_vs_ultralytics_median']}")
    for name, tasks in report["parity_vs_onnxruntime_fp32"].items():
        if not isinstance(tasks, dict):
            continue
        parts = [
            f"{task}: {p['matched']}/{p['reference']} matched ({p['candidate']} found), "
            f"mask IoU {p['mean_mask_iou']}, score drift {p['mean_score_drift']}"
            f"{'' if p['within_parity'] else ' (outside the parity limits)'}"
            for task, p in tasks.items()
        ]
        print(f"  parity {name}: " + "; ".join(parts))
    print(f"  goals: any variant meets both: {report['goals']['any_variant_meets_both']}")
    print(f"  served here: {report['served_here']}")


def get_args_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    default_root = os.environ.get("CDAT_DATA_ROOT", str(REPO.parent / "shared" / "datasets"))
    parser.add_argument("--model-dir", type=Path, default=REPO / "inference" / "models")
    parser.add_argument("--data-root", type=Path, default=Path(default_root))
    parser.add_argument("--limit", type=int, default=40, help="photos to time (half per set)")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--rounds", type=int, default=1, help="passes over the photos")
    parser.add_argument("--claims", type=int, default=3, help="claims of 8 photos to time")
    parser.add_argument(
        "--variants",
        nargs="+",
        default=[v.name for v in DEFAULT_VARIANTS] + ["openvino-bf16-b8"],
        help="e.g. onnxruntime-fp32 openvino-bf16 openvino-bf16-b8 ultralytics",
    )
    parser.add_argument("--int8-dir", type=Path, help="damage.int8.onnx and parts.int8.onnx")
    parser.add_argument("--profile", action="store_true", help="cProfile the reference")
    parser.add_argument("--damage-pt", type=Path, help="PyTorch weights of the damage model")
    parser.add_argument("--parts-pt", type=Path, help="PyTorch weights of the parts model")
    parser.add_argument("--gpu-only", action="store_true", help="batched GPU throughput only")
    parser.add_argument(
        "--out", type=Path, help="default bench/results/inference.json (-gpu.json with --gpu-only)"
    )
    return parser


def config_from(args: argparse.Namespace) -> BenchConfig:
    if args.limit < 1 or args.warmup < 0 or args.rounds < 1 or min(args.threads) < 1:
        raise SystemExit("error: --limit, --rounds and --threads must be positive")
    if not args.model_dir.is_dir():
        raise SystemExit(f"error: no such model directory: {args.model_dir}")
    if args.int8_dir and not (args.int8_dir / "damage.int8.onnx").is_file():
        raise SystemExit(f"error: no damage.int8.onnx in {args.int8_dir}")
    return BenchConfig(
        model_dir=args.model_dir.resolve(),
        data_root=args.data_root.resolve(),
        variants=tuple(parse_variant(v) for v in args.variants),
        limit=args.limit,
        warmup=args.warmup,
        threads=tuple(args.threads),
        rounds=args.rounds,
        claims=args.claims,
        int8_dir=args.int8_dir.resolve() if args.int8_dir else None,
        damage_pt=args.damage_pt,
        parts_pt=args.parts_pt,
        profile=args.profile,
    )


def main(args: argparse.Namespace) -> int:
    cfg = config_from(args)
    from cdat.errors import CdatError

    try:
        if args.gpu_only:
            from bench.inference_bench.controller import in_process
            from bench.inference_bench.gpu import gpu_worker

            photos = find_photos(cfg.data_root, cfg.limit)
            report = {"benchmark": "inference-gpu", "environment": environment()}
            report["gpu"] = in_process(gpu_worker, cfg, photos)
            print(f"gpu: {report['gpu']}")
        else:
            report = run(cfg)
            print_report(report)
    except CdatError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return 2
    out = (
        args.out or REPO / "bench" / "results" / f"inference{'-gpu' if args.gpu_only else ''}.json"
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    mp.set_start_method("spawn", force=True)
    raise SystemExit(main(get_args_parser().parse_args()))
