"""Runs every variant side by side: one worker process each, photos sent round-robin.

For each thread count, all variants' workers are started, then each photo goes to every
worker in turn (the order rotated per photo), then each claim of `claim_size` photos
does the same: a burst of load from a neighbour lands on all variants alike, which
running one variant after another would not give.
"""

from __future__ import annotations

import multiprocessing as mp
import statistics
from dataclasses import replace
from pathlib import Path
from typing import Any

from bench.inference_bench.config import (
    CALIBRATION_DIRS,
    REFERENCE,
    BenchConfig,
    Samples,
    Variant,
    find_photos,
    spread,
    summarise,
)
from bench.inference_bench.workers import serve


class Worker:
    def __init__(self, cfg: BenchConfig, variant: Variant, threads: int, photos: list[Path]):
        self.variant = variant
        ctx = mp.get_context("spawn")
        self.conn, child = ctx.Pipe()
        self.process = ctx.Process(target=serve, args=(child, cfg, variant, threads, photos))
        self.process.start()
        self.samples = Samples()
        self.skipped: str | None = None
        self.torch_imported = False

    def ready(self) -> None:
        status, detail = self.conn.recv()
        if status == "skipped":
            self.skipped = detail
            self.process.join()
        else:
            self.torch_imported = bool(detail)

    def ask(self, *request: Any) -> Any:
        self.conn.send(request)
        return self.conn.recv()

    def stop(self) -> float:
        if self.skipped:
            return 0.0
        rss = float(self.ask("stop"))
        self.process.join()
        return rss


def _send_round_robin(workers: list[Worker], request: str, items: list[int]) -> None:
    live = [w for w in workers if not w.skipped]
    for k, item in enumerate(items):
        order = live[k % len(live) :] + live[: k % len(live)]
        for worker in order:
            answer = worker.ask(request, item)
            if request == "photo":
                worker.samples.add(*answer)
            elif request == "claim":
                worker.samples.claim_s.append(float(answer))
            elif answer:
                worker.samples.claim_models_s.append(float(answer))


def measure(cfg: BenchConfig, threads: int, photos: list[Path], last: bool) -> dict[str, Any]:
    workers = [Worker(cfg, v, threads, photos) for v in cfg.variants]
    for worker in workers:  # started together, loaded in parallel: none is timed yet
        worker.ready()
    if all(w.skipped for w in workers):  # nothing to time: say why, not divide by zero
        reasons = "; ".join(f"{w.variant.name}: {w.skipped}" for w in workers)
        raise SystemExit(f"error: no variant could load ({reasons})")
    singles = [w for w in workers if w.variant.batch == 1]
    for _ in range(cfg.rounds):
        _send_round_robin(singles, "photo", list(range(len(photos))))
    room = max(1, len(photos) - cfg.claim_size + 1)
    starts = [(k * cfg.claim_size) % room for k in range(cfg.claims)]
    for start in starts:  # both claim layouts, alternating
        _send_round_robin(workers, "claim", [start])
        _send_round_robin(workers, "claim_models", [start])
    parity: dict[str, Any] = {}
    profile: list[str] = []
    if last:
        parity = {w.variant.name: w.ask("parity") for w in singles if not w.skipped}
        reference = next((w for w in workers if w.variant == REFERENCE and not w.skipped), None)
        if cfg.profile and reference is not None:
            profile = reference.ask("profile")
    rows = [_row(w, threads, w.stop(), cfg.claim_size) for w in workers]
    return {"rows": rows, "parity_raw": parity, "profile": profile}


def _row(worker: Worker, threads: int, rss: float, claim_size: int) -> dict[str, Any]:
    row: dict[str, Any] = {"name": worker.variant.name, "threads": threads}
    if worker.skipped:
        return {**row, "skipped": worker.skipped}
    s = worker.samples
    stages = {k: round(statistics.median(v), 2) for k, v in s.stages.items()}
    claim: dict[str, float] = {}
    if s.claim_models_s:  # as served: all the claim's photos, the models side by side
        claim["claim_photos_per_s"] = round(claim_size / statistics.median(s.claim_models_s), 2)
    if s.claim_s:  # CDAT_CLAIM_PHOTOS_SIDE_BY_SIDE: one photo per core
        per_core = round(claim_size / statistics.median(s.claim_s), 2)
        claim["claim_one_photo_per_core_photos_per_s"] = per_core
    if s.latencies_ms:  # the same photos one call each, back to back
        claim["one_by_one_photos_per_s"] = round(1000 / statistics.fmean(s.latencies_ms), 2)
    return {
        **row,
        "photos": len(s.latencies_ms),
        **summarise(s.latencies_ms),
        "stage_median_ms": stages,
        **claim,
        "peak_rss_mb": round(rss, 1),
        "instances_found": s.found,
        "torch_imported": worker.torch_imported,
    }


def parity_report(raw: dict[str, dict[str, list[Any]]]) -> dict[str, Any]:
    """Each variant's detections against ONNX Runtime FP32's, per model, and whether they
    are within the parity limits (inference.parity) on these test photos: information; what
    serves a precision is its accuracy on val (training.precision_gate)."""
    from inference.parity import compare, judge

    reference = raw.get(REFERENCE.name)
    if reference is None:
        return {"skipped": "the reference did not run"}
    report: dict[str, Any] = {}
    for name, found in raw.items():
        if name == REFERENCE.name:
            continue
        report[name] = {}
        for task, detections in found.items():
            verdict = judge(compare(reference[task], detections))
            report[name][task] = {**verdict.parity.as_dict(), "within_parity": verdict.passed}
    return report


def make_int8(cfg: BenchConfig, out_dir: Path) -> dict[str, Any]:
    """INT8 copies of both promoted models (head kept in float), calibrated on train photos."""
    import time

    from inference.quantize import quantize_model
    from inference.registry import Registry

    registry = Registry.load(cfg.model_dir)
    started = time.perf_counter()
    made = {}
    for task, sub in zip(("damage", "parts"), CALIBRATION_DIRS, strict=True):
        photos = spread(find_photos(cfg.data_root, 10_000, (sub,)), cfg.calibration_photos)
        source = registry.path_of(registry.promoted_entry(task))
        quantize_model(source, out_dir / f"{task}.int8.onnx", photos, keep="head")
        made[task] = {"calibration_photos": len(photos), "from": sub, "keep_float": "head"}
    return {**made, "seconds": round(time.perf_counter() - started)}


def in_process(func: Any, *args: Any) -> Any:
    with mp.get_context("spawn").Pool(1) as pool:
        return pool.apply(func, args)


def run_all(cfg: BenchConfig, photos: list[Path]) -> dict[str, Any]:
    import tempfile

    int8: dict[str, Any] | None = None
    wants_int8 = any(v.precision == "int8" for v in cfg.variants)
    with tempfile.TemporaryDirectory(prefix="cdat-int8-") as tmp:
        if wants_int8 and cfg.int8_dir is None:
            int8 = in_process(make_int8, cfg, Path(tmp))
            cfg = replace(cfg, int8_dir=Path(tmp))
        results = [
            measure(cfg, t, photos, last=(k == len(cfg.threads) - 1))
            for k, t in enumerate(cfg.threads)
        ]
    rows = [row for r in results for row in r["rows"]]
    return {
        "rows": rows,
        "parity_vs_onnxruntime_fp32": parity_report(results[-1]["parity_raw"]),
        "profile_reference_top_tottime": results[-1]["profile"],
        "int8_quantisation": int8 or {"from": str(cfg.int8_dir)} if wants_int8 else None,
    }
