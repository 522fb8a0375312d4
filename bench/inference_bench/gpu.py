"""Batched throughput on a GPU (a lent GPU machine, e.g. right after training there)."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from bench.inference_bench.config import BenchConfig


def gpu_worker(cfg: BenchConfig, photos: list[Path], batch: int = 16) -> dict[str, Any]:
    """ONNX Runtime CUDA if present, else Ultralytics on cuda, else absent."""
    import onnxruntime as ort

    providers = ort.get_available_providers()
    if "CUDAExecutionProvider" in providers:
        return _gpu_onnx(cfg, photos, batch)
    try:
        import torch

        if torch.cuda.is_available():
            return _gpu_ultralytics(cfg, photos, batch, torch.cuda.get_device_name(0))
    except ImportError:
        pass
    return {"available": False, "reason": f"no CUDA device (onnxruntime providers: {providers})"}


def _gpu_onnx(cfg: BenchConfig, photos: list[Path], batch: int) -> dict[str, Any]:
    from inference.imaging import decode_photo
    from inference.registry import Registry
    from inference.runtime import OnnxRuntime

    registry = Registry.load(cfg.model_dir)
    images = [decode_photo(p.read_bytes()) for p in photos]
    runtimes = [
        OnnxRuntime(
            registry.path_of(registry.promoted_entry(task)),
            batch_size=batch,
            providers=("CUDAExecutionProvider", "CPUExecutionProvider"),
        )
        for task in ("damage", "parts")
    ]
    for runtime in runtimes:
        runtime.infer(images[:batch])
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


def _gpu_ultralytics(
    cfg: BenchConfig, photos: list[Path], batch: int, device_name: str
) -> dict[str, Any]:
    os.environ.setdefault("YOLO_OFFLINE", "1")
    from ultralytics import YOLO

    from inference.imaging import decode_photo
    from inference.registry import Registry

    if cfg.damage_pt and cfg.parts_pt:  # weights straight from training: their own size
        loaded = [YOLO(str(cfg.damage_pt)), YOLO(str(cfg.parts_pt))]
        models = [(m, int(m.overrides["imgsz"])) for m in loaded]
    else:
        registry = Registry.load(cfg.model_dir)
        entries = [registry.promoted_entry(t) for t in ("damage", "parts")]
        models = [(YOLO(str(registry.path_of(e).with_suffix(".pt"))), e.imgsz) for e in entries]
    images = [decode_photo(p.read_bytes()) for p in photos]
    for model, size in models:
        model.predict(images[:batch], imgsz=size, device=0, verbose=False)
    t0 = time.perf_counter()
    for start in range(0, len(images), batch):
        chunk = images[start : start + batch]
        for model, size in models:
            model.predict(chunk, imgsz=size, device=0, verbose=False, half=True)
    elapsed = time.perf_counter() - t0
    return {
        "available": True,
        "runtime": "ultralytics-cuda-fp16",
        "device": device_name,
        "imgsz": [size for _, size in models],
        "photos": len(images),
        "batch": batch,
        "photos_per_s": round(len(images) / elapsed, 1),
    }
