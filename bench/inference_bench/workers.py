"""Worker processes: each loads one variant's models once, then answers the controller.

A worker is a fresh spawned process (so one variant's imports, threads and memory do not
leak into another's: the ONNX Runtime and OpenVINO workers never import torch). The
controller sends it one request at a time over a pipe and waits for the answer, so only
one worker computes at any moment and the machine's load hits every variant alike.

Requests: ("photo", i) -> (latency ms, stage ms, instances); ("claim", i) and
("claim_models", i) -> seconds for photos i..i+claim_size as one `analyze` call, one photo
per core or the models side by side; ("parity",) -> raw detections of the first
`parity_photos` per task; ("profile",) -> the top of a cProfile of all photos;
("stop",) -> peak RSS MB.
"""

from __future__ import annotations

import os
import sys
import time
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from bench.inference_bench.config import BenchConfig, Variant, peak_rss_mb


def _entries(cfg: BenchConfig) -> dict[str, Any]:
    from inference.registry import Registry

    registry = Registry.load(cfg.model_dir)
    return {task: registry.promoted_entry(task) for task in ("damage", "parts")}


class PipelineWorker:
    """The served pipeline (`inference.pipeline.Analyzer`) on one backend and precision."""

    def __init__(self, cfg: BenchConfig, variant: Variant, threads: int, photos: list[Path]):
        from cdat.analysis import PhotoInput

        self.cfg = cfg
        self.inputs = [PhotoInput(p.name, p.read_bytes()) for p in photos]
        if variant.backend == "served":
            self._served(variant, threads)
        else:
            self._variant(variant, threads)
        for photo in self.inputs[: cfg.warmup]:
            self.analyzer.analyze([photo])

    def _served(self, variant: Variant, threads: int) -> None:
        """The analyzer the claim service builds (`build_analyzer`): each model in what this
        machine serves it in, with every stage its registry entry names (the gate, the
        whole-car rule, the damage verifier and placer, the part-family stage)."""
        from cdat.settings import Settings
        from inference.loading import build_analyzer

        settings = Settings(
            model_dir=self.cfg.model_dir,
            onnx_threads=threads,
            damage_crop_look=variant.second_look,
            claim_photos_side_by_side=True,  # both claim layouts are measured
        )
        self.analyzer = build_analyzer(settings)
        analyzer = self.analyzer
        self.runtimes = {"damage": analyzer.damage.runtime, "parts": analyzer.parts.runtime}

    def _variant(self, variant: Variant, threads: int) -> None:
        """Both models on one backend and precision, with the vehicle gate and no stages."""
        from inference import quality
        from inference.backends import open_session
        from inference.pipeline import Analyzer
        from inference.postprocess import PostprocessConfig
        from inference.runtime import DetectorRuntime, SegmentationModel
        from inference.severity import SeverityModel
        from inference.threads import single_threaded_blas
        from inference.vehicle_gate import load_gate

        cfg = self.cfg
        single_threaded_blas()  # as build_analyzer
        parallel = threads >= 2  # as build_analyzer: the models side by side
        per_model = max(1, threads // 2) if parallel else threads
        models = {}
        self.runtimes = {}
        for task, entry in _entries(cfg).items():
            path = cfg.model_dir / entry.file
            backend, precision = variant.backend, variant.precision
            if variant.precision == "int8":
                assert cfg.int8_dir is not None
                path = cfg.int8_dir / f"{task}.int8.onnx"
            session = open_session(
                path,
                backend,  # type: ignore[arg-type]
                precision,  # type: ignore[arg-type]
                threads=per_model,
                batch_size=variant.batch,
            )
            config = PostprocessConfig(conf=entry.served_conf)
            runtime: Any = DetectorRuntime(session, batch_size=variant.batch, config=config)
            severity = closeup_severity = None
            if entry.severity_model:
                severity = SeverityModel.load(cfg.model_dir / entry.severity_model)
            if entry.closeup_severity_model:  # as served: close-ups re-read by their own
                closeup_severity = SeverityModel.load(cfg.model_dir / entry.closeup_severity_model)
            models[task] = SegmentationModel(entry, runtime, severity, closeup_severity)
            self.runtimes[task] = runtime
        self.analyzer = Analyzer(
            models["damage"],
            models["parts"],
            quality_config=quality.QualityConfig(),
            parallel_models=parallel,
            photos_side_by_side=variant.batch == 1,  # both claim layouts are measured
            # as served: the promoted vehicle gate runs first on every photo
            gate=load_gate(cfg.model_dir, per_model),
        )

    def photo(self, index: int) -> tuple[float, dict[str, float], int]:
        started = time.perf_counter()
        (analysis,) = self.analyzer.analyze([self.inputs[index]])
        latency = (time.perf_counter() - started) * 1000
        return latency, dict(analysis.timings_ms), len(analysis.damages) + len(analysis.parts)

    def claim(self, start: int) -> float:
        """A claim as one call, its photos side by side (one per core)."""
        return self._claim(start, photos_side_by_side=True)

    def claim_models(self, start: int) -> float:
        """The same claim with the models side by side instead, all photos through them
        (as served by default)."""
        return self._claim(start, photos_side_by_side=False)

    def _claim(self, start: int, photos_side_by_side: bool) -> float:
        batch = self.inputs[start : start + self.cfg.claim_size]
        served = self.analyzer.photos_side_by_side
        self.analyzer.photos_side_by_side = photos_side_by_side and served
        started = time.perf_counter()
        self.analyzer.analyze(batch)
        elapsed = time.perf_counter() - started
        self.analyzer.photos_side_by_side = served
        return elapsed

    def parity(self) -> dict[str, list[Any]]:
        from inference.imaging import decode_photo

        images = [decode_photo(p.data) for p in self.inputs[: self.cfg.parity_photos]]
        return {task: runtime.infer(images) for task, runtime in self.runtimes.items()}

    def profile(self) -> list[str]:
        import cProfile
        import io
        import pstats

        profiler = cProfile.Profile()
        profiler.enable()
        for photo in self.inputs:
            self.analyzer.analyze([photo])
        profiler.disable()
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(25)
        return [line for line in out.getvalue().splitlines() if line.strip()][-27:]


class UltralyticsWorker:
    """Ultralytics `YOLO.predict` on the same weights (.pt beside the .onnx), decode included."""

    def __init__(self, cfg: BenchConfig, threads: int, photos: list[Path]):
        os.environ.setdefault("YOLO_OFFLINE", "1")
        import torch
        from ultralytics import YOLO

        torch.set_num_threads(threads)
        self.cfg = cfg
        entries = _entries(cfg)
        self.weights = {
            "damage": cfg.damage_pt or (cfg.model_dir / entries["damage"].file).with_suffix(".pt"),
            "parts": cfg.parts_pt or (cfg.model_dir / entries["parts"].file).with_suffix(".pt"),
        }
        for path in self.weights.values():
            if not path.is_file():
                raise FileNotFoundError(f"no PyTorch weights at {path}")
        self.sizes = {task: entries[task].imgsz for task in entries}
        self.confs = {task: entries[task].served_conf for task in entries}
        self.models = {t: YOLO(str(p), task="segment") for t, p in self.weights.items()}
        self.blobs = [p.read_bytes() for p in photos]
        for data in self.blobs[: cfg.warmup]:
            self.photo_of(data)

    def _predict(self, task: str, images: Any) -> None:
        self.models[task].predict(
            images, imgsz=self.sizes[task], conf=self.confs[task], device="cpu", verbose=False
        )

    def photo_of(self, data: bytes) -> tuple[float, dict[str, float], int]:
        import cv2
        import numpy as np

        stages: dict[str, float] = {}
        t0 = time.perf_counter()
        image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
        stages["decode_ms"] = (time.perf_counter() - t0) * 1000
        for task in ("damage", "parts"):
            t = time.perf_counter()
            self._predict(task, image)
            stages[f"{task}_ms"] = (time.perf_counter() - t) * 1000
        return (time.perf_counter() - t0) * 1000, stages, 0

    def photo(self, index: int) -> tuple[float, dict[str, float], int]:
        return self.photo_of(self.blobs[index])

    def claim(self, start: int) -> float:
        import cv2
        import numpy as np

        batch = self.blobs[start : start + self.cfg.claim_size]
        started = time.perf_counter()
        images = [cv2.imdecode(np.frombuffer(d, np.uint8), cv2.IMREAD_COLOR) for d in batch]
        for task in ("damage", "parts"):
            self._predict(task, images)
        return time.perf_counter() - started

    def claim_models(self, start: int) -> float:
        """Ultralytics has one layout: each model predicts on the claim as a batch."""
        return self.claim(start)

    def parity(self) -> dict[str, list[Any]]:
        from inference.imaging import decode_photo
        from inference.postprocess import PostprocessConfig
        from inference.ultralytics_runtime import UltralyticsRuntime

        images = [decode_photo(d) for d in self.blobs[: self.cfg.parity_photos]]
        return {
            task: UltralyticsRuntime(
                path, imgsz=self.sizes[task], config=PostprocessConfig(conf=self.confs[task])
            ).infer(images)
            for task, path in self.weights.items()
        }

    def profile(self) -> list[str]:
        return []


def serve(conn: Connection, cfg: BenchConfig, variant: Variant, threads: int, photos: list[Path]):
    """A worker process's main loop."""
    try:
        worker: PipelineWorker | UltralyticsWorker
        if variant.backend == "ultralytics":
            worker = UltralyticsWorker(cfg, threads, photos)
        else:
            worker = PipelineWorker(cfg, variant, threads, photos)
    except Exception as exc:  # a variant that cannot load is reported, not fatal
        conn.send(("skipped", f"{type(exc).__name__}: {exc}"))
        return
    conn.send(("ready", "torch" in sys.modules))
    while True:
        request = conn.recv()
        kind = request[0]
        if kind == "photo":
            conn.send(worker.photo(request[1]))
        elif kind == "claim":
            conn.send(worker.claim(request[1]))
        elif kind == "claim_models":
            conn.send(worker.claim_models(request[1]))
        elif kind == "parity":
            conn.send(worker.parity())
        elif kind == "profile":
            conn.send(worker.profile())
        else:
            conn.send(peak_rss_mb())
            return
