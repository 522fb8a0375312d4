"""The third probe's attacks (issue 33) and the helpers the probes share, for
bench/probe_security.py, which runs them (its docstring lists every scenario)."""

from __future__ import annotations

import io
import re
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import psutil
from PIL import Image

from bench.load import CLAIM
from bench.prodstack import Stack

MB = 1024 * 1024
Result = dict[str, Any]


def rss_mb(process: Any) -> float:
    proc = psutil.Process(process.pid)
    procs = [proc, *proc.children(recursive=True)]
    return round(sum(p.memory_info().rss for p in procs) / MB, 1)


def gps_png(side: int) -> bytes:
    image = Image.new("RGB", (side, side), (120, 130, 140))
    exif = Image.Exif()
    exif[0x8825] = {1: "N", 2: (12.0, 58.0, 0.0), 3: "E", 4: (77.0, 35.0, 0.0)}
    buffer = io.BytesIO()
    image.save(buffer, "PNG", exif=exif.tobytes())
    return buffer.getvalue()


class Sampler:
    """API RSS and /healthz latency, sampled on threads until stopped."""

    def __init__(self, stack: Stack) -> None:
        self.stack, self.stop = stack, threading.Event()
        self.rss: list[float] = []
        self.health_ms: list[float] = []
        self.health_errors = 0
        self.threads = [
            threading.Thread(target=self._rss, daemon=True),
            threading.Thread(target=self._health, daemon=True),
        ]

    def __enter__(self) -> Sampler:
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join()

    def _rss(self) -> None:
        while not self.stop.is_set():
            self.rss.append(rss_mb(self.stack.api))
            self.stop.wait(0.02)

    def _health(self) -> None:
        with httpx.Client(base_url=self.stack.base_url, timeout=10) as client:
            while not self.stop.is_set():
                started = time.perf_counter()
                try:
                    ok = client.get("/healthz").status_code == 200
                except httpx.HTTPError:
                    ok = False
                self.health_ms.append((time.perf_counter() - started) * 1000)
                self.health_errors += not ok
                self.stop.wait(0.05)


def upload_cost(stack: Stack, rounds: int) -> Result:
    client = httpx.Client(base_url=stack.base_url, timeout=300)
    photos = [gps_png(7000) for _ in range(3)]
    api = psutil.Process(stack.api.pid)  # type: ignore[union-attr]
    tries = []
    for index in range(rounds):
        claims = [client.post("/v1/claims", json=CLAIM).json() for _ in range(4)]

        def send(created: dict[str, Any], i: int = index) -> int:
            auth = {"Authorization": f"Bearer {created['access_token']}"}
            files = [
                ("files", (f"big{n}.png", photo + bytes([i, n]), "image/png"))
                for n, photo in enumerate(photos)
            ]
            url = f"/v1/claims/{created['id']}/photos"
            return client.post(url, files=files, headers=auth).status_code

        before, cpu = rss_mb(stack.api), api.cpu_times()
        with Sampler(stack) as sampled, ThreadPoolExecutor(4) as pool:
            statuses = list(pool.map(send, claims))
            time.sleep(0.5)
        used = api.cpu_times()
        tries.append(
            {
                "statuses": statuses,
                "api_rss_mb_before": before,
                "api_rss_mb_peak": max(sampled.rss),
                "api_rss_mb_after": rss_mb(stack.api),
                "api_cpu_s": round(used.user + used.system - cpu.user - cpu.system, 2),
                "healthz_ms_max": round(max(sampled.health_ms), 1),
                "healthz_ms_p95": round(
                    sorted(sampled.health_ms)[int(0.95 * (len(sampled.health_ms) - 1))], 1
                ),
                "healthz_samples": len(sampled.health_ms),
                "healthz_errors": sampled.health_errors,
            }
        )
    held = all(
        t["api_rss_mb_peak"] < 400
        and t["healthz_ms_max"] < 100
        and t["healthz_errors"] == 0
        and all(s in (201, 503) for s in t["statuses"])
        for t in tries
    )
    return {
        "scenario": "upload-cost",
        "png_kb": len(photos[0]) // 1024,
        "times": rounds,
        "held": held,
        "tries": tries,
    }


def signin_burst(stack: Stack, rounds: int) -> Result:
    client = httpx.Client(base_url=stack.base_url, timeout=60)
    tries = []
    for index in range(rounds):
        form = client.get("/adjuster/login")
        token = re.search(r'name="csrf_token" value="([^"]+)"', form.text).group(1)  # type: ignore[union-attr]
        data = {"email": f"victim{index}@insurer.example", "password": "guess", "csrf_token": token}

        def attempt(_: int, d: dict[str, str] = data, t: str = token) -> int:
            headers = {"Cookie": f"cdat_login_csrf={t}"}
            return client.post("/adjuster/login", data=d, headers=headers).status_code

        with ThreadPoolExecutor(100) as pool:
            statuses = list(pool.map(attempt, range(100)))
        tries.append({str(code): statuses.count(code) for code in sorted(set(statuses))})
    held = all(t.get("401", 0) <= 20 and set(t) <= {"401", "429"} for t in tries)
    return {"scenario": "signin-burst", "times": rounds, "held": held, "tries": tries}


def forwarded_spoof(stack: Stack, rounds: int) -> Result:
    client = httpx.Client(base_url=stack.base_url, timeout=30)
    statuses, retry_after = [], None
    for index in range(70):
        headers = {"X-Forwarded-For": f"198.51.100.{index % 250}"}
        answer = client.post("/v1/claims", json=CLAIM, headers=headers)
        statuses.append(answer.status_code)
        if answer.status_code == 429:
            retry_after = int(answer.headers["Retry-After"])
    counted = {str(code): statuses.count(code) for code in sorted(set(statuses))}
    held = counted.get("201", 0) <= 60 and "429" in counted and (retry_after or 0) > 60
    return {
        "scenario": "forwarded-spoof",
        "times": 70,
        "held": held,
        "answers": counted,
        "retry_after_s": retry_after,
    }


def small_inputs(stack: Stack, rounds: int) -> Result:
    client = httpx.Client(base_url=stack.base_url, timeout=30)
    short = client.post("/v1/claims", json=CLAIM, headers={"Idempotency-Key": "aaaaaaaa"})
    created = client.post("/v1/claims", json=CLAIM).json()
    auth = {"Authorization": f"Bearer {created['access_token']}"}
    nul = client.get("/v1/claims/a%00b", headers=auth)
    answers = {"short_idempotency_key": short.status_code, "nul_claim_id": nul.status_code}
    held = short.status_code == 422 and nul.status_code in (403, 404)
    return {"scenario": "small-inputs", "times": 1, "held": held, "answers": answers}
