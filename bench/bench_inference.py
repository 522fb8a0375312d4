"""Speed of the inference pipeline on real photos: ONNX Runtime vs Ultralytics predict.

Measures, in one run, each in a fresh worker process (so one measurement's imports,
threads and memory do not leak into the next):

* per-photo latency of the full pipeline (`Analyzer.analyze([photo])`: decode, quality
  checks, both models, post-processing, damage-to-part) at 1 and 2 ONNX threads;
* the same photos through Ultralytics `YOLO(...).predict` for both models on the same
  weights (.pt beside the .onnx, or --damage-pt/--parts-pt), decode included, same threads;
* peak RSS of each worker process (ONNX workers never import torch);
* photos per second with batching on a GPU when one is available (recorded as absent
  otherwise).

Goal on the 2-core CPU: median <= 150 ms per photo for both models together and at
least 2x faster than Ultralytics predict. Prints a summary and writes JSON::

    CDAT_DATA_ROOT=../shared/datasets .venv/bin/python bench/bench_inference.py
    .venv/bin/python bench/bench_inference.py --model-dir /tmp/models --limit 20 \\
        --out bench/results/inference-dev.json
    python bench/bench_inference.py --gpu-only --limit 176 --damage-pt D.pt --parts-pt P.pt \\
        --out bench/results/inference-gpu.json      # on a GPU machine
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import platform
import resource
import shutil
import statistics
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
PHOTO_DIRS = ("damage-severity/images/test", "car-parts/testset/JPEGImages")
PHOTO_EXTS = {".jpg", ".jpeg", ".png"}
CALIBRATION_DIRS = ("damage-severity/images/val", "car-parts/trainingset/JPEGImages")
"""INT8 calibration photos: never the test photos that are timed and compared."""


@dataclass
class BenchConfig:
    model_dir: Path
    data_root: Path
    limit: int = 60
    warmup: int = 3
    threads: tuple[int, ...] = (1, 2)
    ultralytics: bool = True
    damage_pt: Path | None = None
    parts_pt: Path | None = None
    gpu_batch: int = 16
    rounds: int = 2
    parity_photos: int = 20
    parity_conf: float = 0.25
    int8: bool = True
    """Measurements alternate ONNX / Ultralytics this many times, so a neighbour's load
    on a shared machine hits both sides alike."""


@dataclass
class Measurement:
    name: str
    threads: int
    photos: int
    latencies_ms: list[float] = field(default_factory=list)
    peak_rss_mb: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        lat = sorted(self.latencies_ms)
        return {
            "name": self.name,
            "threads": self.threads,
            "photos": self.photos,
            "median_ms": round(statistics.median(lat), 2) if lat else None,
            "p95_ms": round(lat[min(len(lat) - 1, int(0.95 * len(lat)))], 2) if lat else None,
            "mean_ms": round(statistics.fmean(lat), 2) if lat else None,
            "peak_rss_mb": round(self.peak_rss_mb, 1),
            **self.extra,
        }


def find_photos(data_root: Path, limit: int, dirs: Sequence[str] = PHOTO_DIRS) -> list[Path]:
    """An even mix of damage close-ups and whole-car photos, in a stable order."""
    per_dir = []
    for sub in dirs:
        folder = data_root / sub
        files = sorted(p for p in folder.glob("*") if p.suffix.lower() in PHOTO_EXTS)
        per_dir.append(files)
    if not any(per_dir):
        raise SystemExit(f"error: no photos under {data_root} ({', '.join(dirs)})")
    mixed = [p for pair in zip(*per_dir, strict=False) for p in pair]
    return mixed[:limit]


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def onnx_worker(cfg: BenchConfig, threads: int, photos: list[Path]) -> dict[str, Any]:
    from cdat.analysis import PhotoInput
    from cdat.settings import Settings
    from inference.pipeline import build_analyzer

    settings = Settings(model_dir=cfg.model_dir, onnx_threads=threads, onnx_batch_size=1)
    started = time.perf_counter()
    analyzer = build_analyzer(settings)
    load_ms = (time.perf_counter() - started) * 1000
    inputs = [PhotoInput(p.name, p.read_bytes()) for p in photos]
    for photo in inputs[: cfg.warmup]:
        analyzer.analyze([photo])
    result = Measurement("onnxruntime_pipeline", threads, len(inputs))
    stages: dict[str, list[float]] = {}
    found = 0
    for photo in inputs:
        t0 = time.perf_counter()
        (analysis,) = analyzer.analyze([photo])
        result.latencies_ms.append((time.perf_counter() - t0) * 1000)
        found += len(analysis.damages) + len(analysis.parts)
        for key, value in analysis.timings_ms.items():
            stages.setdefault(key, []).append(value)
    result.peak_rss_mb = _peak_rss_mb()
    result.extra = {
        "model_load_ms": round(load_ms, 1),
        "stage_median_ms": {k: round(statistics.median(v), 2) for k, v in stages.items()},
        "instances_found": found,
        "models": analyzer.model_versions,
        "torch_imported": "torch" in sys.modules,
    }
    return asdict(result)


def _pt_paths(cfg: BenchConfig) -> tuple[Path, Path, int, int]:
    from inference.registry import Registry

    registry = Registry.load(cfg.model_dir)
    damage, parts = registry.promoted_entry("damage"), registry.promoted_entry("parts")
    damage_pt = cfg.damage_pt or registry.path_of(damage).with_suffix(".pt")
    parts_pt = cfg.parts_pt or registry.path_of(parts).with_suffix(".pt")
    return damage_pt, parts_pt, damage.imgsz, parts.imgsz


def ultralytics_worker(cfg: BenchConfig, threads: int, photos: list[Path]) -> dict[str, Any]:
    os.environ.setdefault("YOLO_OFFLINE", "1")
    import cv2
    import numpy as np
    import torch
    from ultralytics import YOLO

    torch.set_num_threads(threads)
    damage_pt, parts_pt, damage_sz, parts_sz = _pt_paths(cfg)
    for path in (damage_pt, parts_pt):
        if not path.is_file():
            return {"name": "ultralytics_predict", "skipped": f"no PyTorch weights at {path}"}
    damage, parts = YOLO(str(damage_pt), task="segment"), YOLO(str(parts_pt), task="segment")

    def run(data: bytes) -> None:
        image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
        damage.predict(image, imgsz=damage_sz, device="cpu", verbose=False)
        parts.predict(image, imgsz=parts_sz, device="cpu", verbose=False)

    blobs = [p.read_bytes() for p in photos]
    for data in blobs[: cfg.warmup]:
        run(data)
    result = Measurement("ultralytics_predict", threads, len(blobs))
    for data in blobs:
        t0 = time.perf_counter()
        run(data)
        result.latencies_ms.append((time.perf_counter() - t0) * 1000)
    result.peak_rss_mb = _peak_rss_mb()
    result.extra = {"weights": [str(damage_pt), str(parts_pt)], "torch": torch.__version__}
    return asdict(result)


def parity_worker(cfg: BenchConfig, photos: list[Path]) -> dict[str, Any]:
    """Do ONNX Runtime and Ultralytics find the same things on the same weights?"""
    from inference.imaging import decode_photo
    from inference.postprocess import PostprocessConfig
    from inference.registry import Registry, Task
    from inference.runtime import OnnxRuntime
    from inference.ultralytics_runtime import UltralyticsRuntime

    registry = Registry.load(cfg.model_dir)
    damage_pt, parts_pt, _, _ = _pt_paths(cfg)
    images = [decode_photo(p.read_bytes()) for p in photos[: cfg.parity_photos]]
    report: dict[str, Any] = {}
    tasks: tuple[tuple[Task, Path], ...] = (("damage", damage_pt), ("parts", parts_pt))
    for task, weights in tasks:
        if not weights.is_file():
            report[task] = {"skipped": f"no PyTorch weights at {weights}"}
            continue
        entry = registry.promoted_entry(task)
        config = PostprocessConfig(conf=cfg.parity_conf)
        ours = OnnxRuntime(registry.path_of(entry), threads=2, config=config).infer(images)
        theirs = UltralyticsRuntime(weights, imgsz=entry.imgsz, config=config).infer(images)
        report[task] = compare_detections(ours, theirs)
    return report


def compare_detections(
    ours: list[Any], theirs: list[Any], names: tuple[str, str] = ("onnx", "ultralytics")
) -> dict[str, Any]:
    """Greedy same-class matching at box IoU >= 0.7; mask IoU on the analysis grid."""
    import numpy as np

    matched, total_ours, total_theirs = 0, 0, 0
    box_ious: list[float] = []
    mask_ious: list[float] = []
    score_diffs: list[float] = []
    for a, b in zip(ours, theirs, strict=True):
        total_ours, total_theirs = total_ours + len(a), total_theirs + len(b)
        used: set[int] = set()
        for i in range(len(a)):
            best, best_iou = -1, 0.7
            for j in range(len(b)):
                if j in used or a.class_ids[i] != b.class_ids[j]:
                    continue
                value = _box_iou(a.boxes[i], b.boxes[j])
                if value >= best_iou:
                    best, best_iou = j, value
            if best < 0:
                continue
            used.add(best)
            matched += 1
            box_ious.append(best_iou)
            score_diffs.append(abs(float(a.scores[i] - b.scores[best])))
            union = np.logical_or(a.masks[i], b.masks[best]).sum()
            inter = np.logical_and(a.masks[i], b.masks[best]).sum()
            mask_ious.append(float(inter / union) if union else 1.0)
    return {
        "photos": len(ours),
        f"detections_{names[0]}": total_ours,
        f"detections_{names[1]}": total_theirs,
        "matched": matched,
        "mean_box_iou": round(float(np.mean(box_ious)), 4) if box_ious else None,
        "mean_mask_iou": round(float(np.mean(mask_ious)), 4) if mask_ious else None,
        "max_score_diff": round(max(score_diffs), 4) if score_diffs else None,
    }


def _box_iou(a: Any, b: Any) -> float:
    x1, y1 = max(a[0], b[0]), max(a[1], b[1])
    x2, y2 = min(a[2], b[2]), min(a[3], b[3])
    inter = max(0.0, x2 - x1) * max(0.0, y2 - y1)
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return float(inter / union) if union > 0 else 0.0


def int8_worker(cfg: BenchConfig, out_dir: Path) -> dict[str, Any]:
    """INT8 copies of both promoted models in `out_dir`, with a registry promoting them."""
    from dataclasses import replace

    from inference.quantize import quantize_model
    from inference.registry import Registry, sha256_of

    registry = Registry.load(cfg.model_dir)
    calibration = find_photos(cfg.data_root, 64, CALIBRATION_DIRS)
    entries = []
    started = time.perf_counter()
    for task in ("damage", "parts"):
        entry = registry.promoted_entry(task)
        target = out_dir / f"{task}.int8.onnx"
        quantize_model(registry.path_of(entry), target, calibration)
        if entry.severity_model:  # the severity stage is served beside the detector as it is
            shutil.copyfile(cfg.model_dir / entry.severity_model, out_dir / entry.severity_model)
        entries.append(
            replace(entry, id=entry.id + "-int8", file=target.name, sha256=sha256_of(target))
        )
    Registry(out_dir, entries, {e.task: e.id for e in entries}).save()
    return {"calibration_photos": len(calibration), "seconds": round(time.perf_counter() - started)}


def int8_agreement_worker(cfg: BenchConfig, int8_dir: Path, photos: list[Path]) -> dict[str, Any]:
    """How far the INT8 models' findings are from the FP32 ones on the test photos."""
    from inference.imaging import decode_photo
    from inference.registry import Registry
    from inference.runtime import OnnxRuntime

    fp32, int8 = Registry.load(cfg.model_dir), Registry.load(int8_dir)
    images = [decode_photo(p.read_bytes()) for p in photos]
    report = {}
    for task in ("damage", "parts"):
        a = OnnxRuntime(fp32.path_of(fp32.promoted_entry(task)), threads=2)
        b = OnnxRuntime(int8.path_of(int8.promoted_entry(task)), threads=2)
        report[task] = compare_detections(a.infer(images), b.infer(images), ("fp32", "int8"))
    return report


def gpu_worker(cfg: BenchConfig, photos: list[Path]) -> dict[str, Any]:
    """Batched throughput on a GPU: ONNX Runtime CUDA if present, else Ultralytics on cuda."""
    import onnxruntime as ort

    providers = ort.get_available_providers()
    if "CUDAExecutionProvider" in providers:
        return _gpu_onnx(cfg, photos)
    try:
        import torch

        if torch.cuda.is_available():
            return _gpu_ultralytics(cfg, photos, torch.cuda.get_device_name(0))
    except ImportError:
        pass
    return {"available": False, "reason": f"no CUDA device (onnxruntime providers: {providers})"}


def _gpu_onnx(cfg: BenchConfig, photos: list[Path]) -> dict[str, Any]:
    from inference.imaging import decode_photo
    from inference.registry import Registry
    from inference.runtime import OnnxRuntime

    registry = Registry.load(cfg.model_dir)
    images = [decode_photo(p.read_bytes()) for p in photos]
    runtimes = [
        OnnxRuntime(
            registry.path_of(registry.promoted_entry(task)),
            batch_size=cfg.gpu_batch,
            providers=("CUDAExecutionProvider", "CPUExecutionProvider"),
        )
        for task in ("damage", "parts")
    ]
    for runtime in runtimes:
        runtime.infer(images[: cfg.gpu_batch])
    t0 = time.perf_counter()
    for runtime in runtimes:
        runtime.infer(images)
    elapsed = time.perf_counter() - t0
    return {
        "available": True,
        "runtime": "onnxruntime-cuda",
        "batch": runtimes[0].batch_size,
        "photos_per_s": round(len(images) / elapsed, 1),
    }


def _gpu_ultralytics(cfg: BenchConfig, photos: list[Path], device_name: str) -> dict[str, Any]:
    os.environ.setdefault("YOLO_OFFLINE", "1")
    from ultralytics import YOLO

    from inference.imaging import decode_photo

    if cfg.damage_pt and cfg.parts_pt:  # weights straight from training: their own size
        loaded = [YOLO(str(cfg.damage_pt)), YOLO(str(cfg.parts_pt))]
        models = [(m, int(m.overrides["imgsz"])) for m in loaded]
    else:
        damage_pt, parts_pt, damage_sz, parts_sz = _pt_paths(cfg)
        models = [(YOLO(str(damage_pt)), damage_sz), (YOLO(str(parts_pt)), parts_sz)]
    images = [decode_photo(p.read_bytes()) for p in photos]
    for model, size in models:
        model.predict(images[: cfg.gpu_batch], imgsz=size, device=0, verbose=False)
    t0 = time.perf_counter()
    for start in range(0, len(images), cfg.gpu_batch):
        batch = images[start : start + cfg.gpu_batch]
        for model, size in models:
            model.predict(batch, imgsz=size, device=0, verbose=False, half=True)
    elapsed = time.perf_counter() - t0
    return {
        "available": True,
        "runtime": "ultralytics-cuda-fp16",
        "device": device_name,
        "imgsz": [size for _, size in models],
        "photos": len(images),
        "batch": cfg.gpu_batch,
        "photos_per_s": round(len(images) / elapsed, 1),
    }


def in_worker(func, *args) -> dict[str, Any]:
    """Run one measurement in a fresh spawned process and return its result."""
    with mp.get_context("spawn").Pool(1) as pool:
        return pool.apply(func, args)


def environment() -> dict[str, Any]:
    import onnxruntime

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpu": cpu,
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "onnxruntime": onnxruntime.__version__,
        "platform": platform.platform(),
        # A shared machine: the load others put on it is part of the result.
        "load_average_1_5_15": [round(v, 2) for v in os.getloadavg()],
    }


def merged(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """One summary from several rounds of the same measurement."""
    if any("skipped" in r for r in runs):
        return next(r for r in runs if "skipped" in r)
    first = Measurement(**runs[0])
    for other in runs[1:]:
        first.latencies_ms += other["latencies_ms"]
        first.peak_rss_mb = max(first.peak_rss_mb, other["peak_rss_mb"])
    first.photos = len(first.latencies_ms)
    first.extra["rounds"] = len(runs)
    return first.summary()


def run(cfg: BenchConfig) -> dict[str, Any]:
    environment_at_start = environment()
    photos = find_photos(cfg.data_root, cfg.limit)
    raw: dict[tuple[str, int], list[dict[str, Any]]] = {}
    for _ in range(cfg.rounds):
        for t in cfg.threads:
            raw.setdefault(("onnx", t), []).append(in_worker(onnx_worker, cfg, t, photos))
            if cfg.ultralytics:
                raw.setdefault(("ultra", t), []).append(
                    in_worker(ultralytics_worker, cfg, t, photos)
                )
    int8: dict[str, Any] | None = None
    if cfg.int8:
        int8 = run_int8(cfg, photos)
    onnx = {t: merged(raw[("onnx", t)]) for t in cfg.threads}
    ultra = {t: merged(raw[("ultra", t)]) for t in cfg.threads if ("ultra", t) in raw}
    speedup = {
        str(t): round(ultra[t]["median_ms"] / onnx[t]["median_ms"], 2)
        for t in cfg.threads
        if ultra.get(t, {}).get("median_ms") and onnx[t]["median_ms"]
    }
    best = min(onnx.values(), key=lambda r: r["median_ms"])
    return {
        "benchmark": "inference",
        "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "config": {k: str(v) if isinstance(v, Path) else v for k, v in asdict(cfg).items()},
        "environment": {
            **environment_at_start,
            "load_average_at_end": environment()["load_average_1_5_15"],
        },
        "photos": {"count": len(photos), "dirs": list(PHOTO_DIRS)},
        "onnx": [onnx[t] for t in cfg.threads],
        "ultralytics": [ultra[t] for t in cfg.threads if t in ultra],
        "speedup_vs_ultralytics_median": speedup,
        "int8_optional": int8,
        "parity": in_worker(parity_worker, cfg, photos) if cfg.ultralytics else None,
        "gpu": in_worker(gpu_worker, cfg, photos),
        "goals": {
            "median_le_150ms": best["median_ms"] <= 150.0,
            "speedup_ge_2x": bool(speedup) and min(speedup.values()) >= 2.0,
        },
    }


def run_int8(cfg: BenchConfig, photos: list[Path]) -> dict[str, Any]:
    """The optional INT8 models (inference.quantize): speed and agreement with FP32."""
    import tempfile
    from dataclasses import replace

    with tempfile.TemporaryDirectory(prefix="cdat-int8-") as tmp:
        out = Path(tmp)
        made = in_worker(int8_worker, cfg, out)
        int8_cfg = replace(cfg, model_dir=out)
        runs = {t: merged([in_worker(onnx_worker, int8_cfg, t, photos)]) for t in cfg.threads}
        agreement = in_worker(int8_agreement_worker, cfg, out, photos)
    return {"quantization": made, "pipeline": list(runs.values()), "agreement_vs_fp32": agreement}


def print_report(report: dict[str, Any]) -> None:
    env = report["environment"]
    print(
        f"photos: {report['photos']['count']}  cpu: {env['cpu']} x{env['cpu_count']}  "
        f"load avg start {env['load_average_1_5_15']} end {env['load_average_at_end']}"
    )
    for row in report["onnx"] + report["ultralytics"]:
        if "skipped" in row:
            print(f"  {row['name']}: skipped ({row['skipped']})")
            continue
        print(
            f"  {row['name']:<22} threads={row['threads']}  median={row['median_ms']:.1f} ms  "
            f"p95={row['p95_ms']:.1f} ms  peak RSS={row['peak_rss_mb']:.0f} MB"
        )
    print(f"  speedup vs Ultralytics (median): {report['speedup_vs_ultralytics_median']}")
    int8 = report.get("int8_optional")
    if int8:
        for row in int8["pipeline"]:
            print(
                f"  int8 (optional)        threads={row['threads']}"
                f"  median={row['median_ms']:.1f} ms"
                f"  p95={row['p95_ms']:.1f} ms"
            )
        print(f"  int8 agreement vs fp32: {int8['agreement_vs_fp32']}")
    print(f"  parity ONNX vs Ultralytics: {report['parity']}")
    print(f"  gpu: {report['gpu']}")
    print(f"  goals: {report['goals']}")


def get_args_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    default_root = os.environ.get("CDAT_DATA_ROOT", str(REPO.parent / "shared" / "datasets"))
    parser.add_argument("--model-dir", type=Path, default=REPO / "inference" / "models")
    parser.add_argument("--data-root", type=Path, default=Path(default_root))
    parser.add_argument("--limit", type=int, default=60, help="photos to time (half per set)")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--rounds", type=int, default=2, help="alternating repetitions")
    parser.add_argument("--parity-conf", type=float, default=0.25)
    parser.add_argument("--no-int8", action="store_true", help="skip the optional INT8 models")
    parser.add_argument("--no-ultralytics", action="store_true")
    parser.add_argument("--damage-pt", type=Path, help="PyTorch weights of the damage model")
    parser.add_argument("--parts-pt", type=Path, help="PyTorch weights of the parts model")
    parser.add_argument(
        "--gpu-only",
        action="store_true",
        help="only the batched GPU throughput (a GPU machine, e.g. right after training there)",
    )
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "inference.json")
    return parser


def run_gpu_only(cfg: BenchConfig) -> dict[str, Any]:
    photos = find_photos(cfg.data_root, cfg.limit)
    return {
        "benchmark": "inference-gpu",
        "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "environment": environment(),
        "photos": {"count": len(photos), "dirs": list(PHOTO_DIRS)},
        "gpu": in_worker(gpu_worker, cfg, photos),
    }


def main(args: argparse.Namespace) -> int:
    sys.path.insert(0, str(REPO))
    cfg = BenchConfig(
        model_dir=args.model_dir.resolve(),
        data_root=args.data_root.resolve(),
        limit=args.limit,
        warmup=args.warmup,
        threads=tuple(args.threads),
        ultralytics=not args.no_ultralytics,
        damage_pt=args.damage_pt,
        parts_pt=args.parts_pt,
        rounds=args.rounds,
        parity_conf=args.parity_conf,
        int8=not args.no_int8,
    )
    from cdat.errors import CdatError

    try:
        report = run_gpu_only(cfg) if args.gpu_only else run(cfg)
    except CdatError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return 2
    if args.gpu_only:
        print(f"gpu: {report['gpu']}")
    else:
        print_report(report)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(get_args_parser().parse_args()))
