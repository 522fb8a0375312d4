"""Load: many policyholders at once against the production shape on this machine.

Each simulated policyholder loops: open a claim, upload four photos, submit, then
long-poll the claim until it is assessed. PostgreSQL + Redis + `cdat serve --no-worker`
+ N `cdat worker` processes, on 127.0.0.1 only; the fake analyzer unless --real-models.
Goal: zero errors and submit-to-assessed p95 under 5 s for a four-photo claim.

    .venv/bin/python bench/load.py                          # 150 s, 8 users, 2 workers
    .venv/bin/python bench/load.py --duration 60 --users 16 --workers 2
    .venv/bin/python bench/load.py --real-models            # the shipped ONNX models

Prints a summary and writes bench/results/load.json.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import platform
import random
import statistics
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.prodstack import FAKE_ANALYZER, REAL_ANALYZER, Stack, running_stack

RESULTS = Path(__file__).resolve().parent / "results" / "load.json"
DONE = {"assessed", "needs_review", "failed"}


def get_args_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--duration", type=float, default=150, help="seconds of load")
    parser.add_argument("--users", type=int, default=8, help="concurrent policyholders")
    parser.add_argument("--workers", type=int, default=2, help="`cdat worker` processes")
    parser.add_argument("--real-models", action="store_true", help="shipped ONNX models")
    parser.add_argument("--photo-size", type=int, default=640, help="photo width in px")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", type=Path, default=RESULTS)
    return parser


@dataclass
class Tally:
    latencies: dict[str, list[float]] = field(default_factory=dict)
    submit_to_done: list[float] = field(default_factory=list)
    finished: Counter[str] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    error_samples: list[str] = field(default_factory=list)

    def timed(self, kind: str, seconds: float) -> None:
        self.latencies.setdefault(kind, []).append(seconds)

    def error(self, what: str, detail: str) -> None:
        self.errors[what] += 1
        if len(self.error_samples) < 20:
            self.error_samples.append(f"{what}: {detail[:300]}")


def make_photos(count: int, width: int, seed: int) -> list[bytes]:
    rng = random.Random(seed)
    photos = []
    for _ in range(count):
        noise = Image.effect_noise((width, width * 3 // 4), rng.randint(20, 80)).convert("RGB")
        tint = Image.new("RGB", noise.size, tuple(rng.randint(0, 255) for _ in range(3)))
        buffer = io.BytesIO()
        Image.blend(noise, tint, 0.5).save(buffer, "JPEG", quality=85)
        photos.append(buffer.getvalue())
    return photos


CLAIM = {
    "policy_number": "POL-LOAD",
    "loss_date": "2026-01-10",
    "description": "load test",
    "vehicle": {"make": "Maruti", "model": "Swift", "year": 2021, "body_type": "hatchback"},
    "contact": {"name": "Load User", "phone": "+91 98765 43210"},
}


async def call(
    client: httpx.AsyncClient, tally: Tally, kind: str, method: str, url: str, **kwargs: Any
) -> httpx.Response | None:
    started = time.perf_counter()
    try:
        response = await client.request(method, url, **kwargs)
    except httpx.HTTPError as exc:
        tally.error(kind, f"{type(exc).__name__}: {exc}")
        return None
    if kind != "poll":  # long-polls wait on purpose; they are not API latency
        tally.timed(kind, time.perf_counter() - started)
    if response.status_code >= 400:
        tally.error(kind, f"HTTP {response.status_code}: {response.text}")
        return None
    return response


async def one_claim(client: httpx.AsyncClient, tally: Tally, photos: list[bytes]) -> None:
    created = await call(client, tally, "create", "POST", "/v1/claims", json=CLAIM)
    if created is None:
        return
    claim_id = created.json()["id"]
    auth = {"Authorization": f"Bearer {created.json()['access_token']}"}
    files = [("files", (f"p{i}.jpg", data, "image/jpeg")) for i, data in enumerate(photos)]
    path = f"/v1/claims/{claim_id}"
    if (
        await call(client, tally, "upload", "POST", f"{path}/photos", files=files, headers=auth)
        is None
    ):
        return
    submitted_at = time.perf_counter()
    if await call(client, tally, "submit", "POST", f"{path}/submit", headers=auth) is None:
        return
    revision = -1
    while True:
        params = {"since_revision": revision, "wait": 25} if revision >= 0 else {}
        response = await call(client, tally, "poll", "GET", path, params=params, headers=auth)
        if response is None:
            return
        claim = response.json()
        if claim["status"] in DONE:
            break
        revision = claim["revision"]
    tally.submit_to_done.append(time.perf_counter() - submitted_at)
    tally.finished[claim["status"]] += 1
    if claim["status"] == "failed":
        tally.error("assessment", claim.get("status_reason") or "failed")
    else:
        await call(client, tally, "read", "GET", path, headers=auth)


async def policyholder(
    base_url: str, tally: Tally, pool: list[bytes], deadline: float, rng: random.Random
) -> None:
    async with httpx.AsyncClient(base_url=base_url, timeout=60) as client:
        while time.monotonic() < deadline:
            await one_claim(client, tally, rng.sample(pool, 4))


async def drive(base_url: str, users: int, duration: float, pool: list[bytes], seed: int) -> Tally:
    tally = Tally()
    deadline = time.monotonic() + duration
    await asyncio.gather(
        *(
            policyholder(base_url, tally, pool, deadline, random.Random(seed + i))
            for i in range(users)
        )
    )
    return tally


class MemoryWatch:
    """Samples the summed RSS of the API, the workers and their children."""

    def __init__(self, stack: Stack) -> None:
        self.stack, self.peak, self.stop = stack, 0, threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self.stop.wait(0.5):
            self.peak = max(self.peak, self.stack.rss_bytes())

    def __enter__(self) -> MemoryWatch:
        self.thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop.set()
        self.thread.join()


def pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 4)


def summarize(
    tally: Tally, args: argparse.Namespace, elapsed: float, peak_rss: int
) -> dict[str, Any]:
    api = [v for values in tally.latencies.values() for v in values]
    done = sum(tally.finished.values())
    return {
        "benchmark": "load",
        "machine": {"cpus": __import__("os").cpu_count(), "python": platform.python_version()},
        "config": {
            "duration_s": args.duration,
            "users": args.users,
            "workers": args.workers,
            "analyzer": "real" if args.real_models else "fake",
            "photos_per_claim": 4,
            "photo_width_px": args.photo_size,
        },
        "elapsed_s": round(elapsed, 1),
        "claims_assessed": done,
        "claims_per_minute": round(done / elapsed * 60, 1),
        "outcomes": dict(tally.finished),
        "api_latency_s": {"p50": pct(api, 0.5), "p95": pct(api, 0.95), "requests": len(api)},
        "api_latency_by_call_s": {
            kind: {"p50": pct(v, 0.5), "p95": pct(v, 0.95), "n": len(v)}
            for kind, v in sorted(tally.latencies.items())
        },
        "submit_to_assessed_s": {
            "p50": pct(tally.submit_to_done, 0.5),
            "p95": pct(tally.submit_to_done, 0.95),
            "mean": round(statistics.fmean(tally.submit_to_done), 3)
            if tally.submit_to_done
            else None,
        },
        "errors": sum(tally.errors.values()),
        "errors_by_call": dict(tally.errors),
        "error_samples": tally.error_samples,
        "peak_rss_mb": round(peak_rss / 2**20, 1),
        "goal": {"submit_to_assessed_p95_s": 5.0, "errors": 0},
    }


def main(args: argparse.Namespace) -> int:
    if args.duration <= 0 or args.users < 1 or args.workers < 1:
        raise SystemExit("error: --duration, --users and --workers must be positive")
    pool = make_photos(16, args.photo_size, args.seed)
    analyzer = REAL_ANALYZER if args.real_models else FAKE_ANALYZER
    with tempfile.TemporaryDirectory(prefix="cdat-load-") as tmp:
        with (
            running_stack(Path(tmp), args.workers, analyzer) as stack,
            MemoryWatch(stack) as memory,
        ):
            started = time.monotonic()
            tally = asyncio.run(drive(stack.base_url, args.users, args.duration, pool, args.seed))
            elapsed = time.monotonic() - started
        result = summarize(tally, args, elapsed, memory.peak)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    print(f"wrote {args.output}")
    return 0 if result["errors"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main(get_args_parser().parse_args()))
