"""The security probes of issue 13 against the production-shaped stack, each several times.

Stack: PostgreSQL + Redis (broker and rate-limit counters) + `cdat serve --no-worker` +
one `cdat worker`, all on 127.0.0.1. Scenarios:
  oversize-json     200 MB JSON at POST /v1/claims, declared and chunked: 413, API memory
  anonymous-upload  1.5 GB multipart upload without a token: refused before the body is read
  photo-downloads   six concurrent policyholder downloads of a 49-megapixel PNG with GPS
  webhook-kill      SIGKILL the worker while it delivers a webhook; a new worker resends it
  signin-spraying   200 wrong passwords across e-mails from one address, over two replicas
  idempotent-retry  six concurrent retries of one submit with one Idempotency-Key
Issue 33 (third probe):
  upload-cost       4 concurrent uploads of three 7000x7000 PNGs with GPS EXIF (156 KB
                    each): API RSS sampled every 20 ms, /healthz timed throughout
  signin-burst      100 concurrent wrong passwords for one account from one address
  small-inputs      an 8-character Idempotency-Key, a NUL in a claim id
  forwarded-spoof   70 claim creations from 127.0.0.1, each with another X-Forwarded-For
                    (CDAT_CLAIMS_PER_HOUR_PER_ADDRESS=60 here): the header must not help

    .venv/bin/python bench/probe_security.py --rounds 3
    .venv/bin/python bench/probe_security.py --only webhook-kill --broker rabbitmq \
        --output bench/results/security-webhook-rabbitmq.json
Prints each result and writes bench/results/security.json.
"""

from __future__ import annotations

import argparse
import json
import re
import select
import socket
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.load import CLAIM, make_photos
from bench.probe_third import (
    Result,
    forwarded_spoof,
    gps_png,
    rss_mb,
    signin_burst,
    small_inputs,
    upload_cost,
)
from bench.prodstack import (
    FAKE_ANALYZER,
    REDIS_URL,
    Stack,
    free_port,
    running_stack,
    stop_process,
)

RESULTS = Path(__file__).resolve().parent / "results" / "security.json"
MB = 1024 * 1024
FILE_PART = (  # a well-formed start of a photo part: the rest of the 1.5 GB is its "photo"
    b'--xyz\r\nContent-Disposition: form-data; name="files"; filename="a.jpg"\r\n'
    b"Content-Type: image/jpeg\r\n\r\n"
)


def raw_post(
    port: int, path: str, headers: dict[str, str], total: int, prefix: bytes = b""
) -> Result:
    """Send a POST of `total` bytes at full speed; stop as soon as the server answers."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=300)
    head = f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n" + "".join(
        f"{k}: {v}\r\n" for k, v in headers.items()
    )
    chunked = "Content-Length" not in headers
    sock.sendall((head + ("Transfer-Encoding: chunked\r\n" if chunked else "") + "\r\n").encode())
    started, sent, chunk = time.monotonic(), 0, b"x" * MB
    try:
        while sent < total:
            if select.select([sock], [], [], 0)[0]:
                break  # the answer came before the body was sent
            part = (prefix if sent == 0 else b"") + chunk
            sock.sendall(b"%x\r\n%s\r\n" % (len(part), part) if chunked else part)
            sent += len(part)
        answer = sock.recv(4096).decode("latin-1")
    except (BrokenPipeError, ConnectionResetError):
        answer = sock.recv(4096).decode("latin-1") if select.select([sock], [], [], 2)[0] else ""
    finally:
        sock.close()
    status = re.match(r"HTTP/1.1 (\d+)", answer)
    return {
        "status": int(status.group(1)) if status else None,
        "body_mb_sent_before_answer": round(sent / MB, 1),
        "seconds": round(time.monotonic() - started, 2),
    }


def oversize_json(stack: Stack, rounds: int) -> Result:
    tries = []
    for _ in range(rounds):
        for declared in (True, False):
            before = rss_mb(stack.api)
            headers = {"Content-Type": "application/json"}
            if declared:
                headers["Content-Length"] = str(200 * MB)
            outcome = raw_post(stack.port, "/v1/claims", headers, 200 * MB, b'{"description": "')
            tries.append(
                {**outcome, "declared_length": declared, "api_rss_mb": [before, rss_mb(stack.api)]}
            )
    held = all(t["status"] == 413 and t["api_rss_mb"][1] - t["api_rss_mb"][0] < 50 for t in tries)
    return {"scenario": "oversize-json", "times": len(tries), "held": held, "tries": tries}


def anonymous_upload(stack: Stack, rounds: int) -> Result:
    client = httpx.Client(base_url=stack.base_url, timeout=30)
    claim_id = client.post("/v1/claims", json=CLAIM).json()["id"]
    tries = []
    for index in range(rounds):
        token = {} if index % 2 == 0 else {"Authorization": "Bearer cdat_claim_forged"}
        headers = {
            "Content-Type": "multipart/form-data; boundary=xyz",
            "Content-Length": str(1536 * MB),
            **token,
        }
        before = rss_mb(stack.api)
        disk = psutil.disk_usage(tempfile.gettempdir()).used
        path = f"/v1/claims/{claim_id}/photos"
        outcome = raw_post(stack.port, path, headers, 1536 * MB, FILE_PART)
        grown = (psutil.disk_usage(tempfile.gettempdir()).used - disk) / MB
        tries.append(
            {
                **outcome,
                "api_rss_mb": [before, rss_mb(stack.api)],
                "tmp_disk_growth_mb": round(grown, 1),
            }
        )
    held = all(t["status"] == 401 and t["body_mb_sent_before_answer"] < 64 for t in tries)
    return {"scenario": "anonymous-upload", "times": rounds, "held": held, "tries": tries}


def photo_downloads(stack: Stack, rounds: int) -> Result:
    client = httpx.Client(base_url=stack.base_url, timeout=120)
    created = client.post("/v1/claims", json=CLAIM).json()
    auth = {"Authorization": f"Bearer {created['access_token']}"}
    photo = gps_png(7000)
    files = [("files", ("big.png", photo, "image/png"))]
    uploaded = client.post(f"/v1/claims/{created['id']}/photos", files=files, headers=auth)
    uploaded.raise_for_status()
    url = f"/v1/claims/{created['id']}/photos/{uploaded.json()['photos'][0]['id']}"
    api = psutil.Process(stack.api.pid)  # type: ignore[union-attr]
    tries = []
    for _ in range(rounds):
        before, cpu = rss_mb(stack.api), api.cpu_times()
        with ThreadPoolExecutor(6) as pool:
            answers = list(pool.map(lambda _: client.get(url, headers=auth), range(6)))
        used = api.cpu_times()
        tries.append(
            {
                "statuses": sorted({a.status_code for a in answers}),
                "bytes": len(answers[0].content),
                "api_rss_mb": [before, rss_mb(stack.api)],
                "api_cpu_s_per_download": round(
                    (used.user + used.system - cpu.user - cpu.system) / 6, 3
                ),
            }
        )
    held = all(
        t["api_rss_mb"][1] - t["api_rss_mb"][0] < 100 and t["api_cpu_s_per_download"] < 0.2
        for t in tries
    )
    return {
        "scenario": "photo-downloads",
        "png_kb": len(photo) // 1024,
        "times": rounds,
        "held": held,
        "tries": tries,
    }


class Receiver(BaseHTTPRequestHandler):
    hang_next = threading.Event()
    completed: list[bytes] = []
    arrived = threading.Event()

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        Receiver.arrived.set()
        if Receiver.hang_next.is_set():
            Receiver.hang_next.clear()
            time.sleep(20)  # the worker sending this is killed meanwhile
            return
        Receiver.completed.append(body)
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        return


def webhook_kill(stack: Stack, rounds: int) -> Result:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    hook = f"http://127.0.0.1:{server.server_port}/hook"
    client = httpx.Client(base_url=stack.base_url, timeout=30)
    photo = make_photos(1, 320, 3)[0]
    tries = []
    for index in range(rounds):
        Receiver.completed.clear()
        Receiver.arrived.clear()
        Receiver.hang_next.set()
        created = client.post("/v1/claims", json={**CLAIM, "webhook_url": hook}).json()
        auth = {"Authorization": f"Bearer {created['access_token']}"}
        files = [("files", ("p.jpg", photo, "image/jpeg"))]
        client.post(f"/v1/claims/{created['id']}/photos", files=files, headers=auth)
        client.post(f"/v1/claims/{created['id']}/submit", headers=auth)
        in_flight = Receiver.arrived.wait(60)
        stop_process(stack.workers[-1], kill=True)
        killed_at = time.monotonic()
        stack.start_worker(f"after-kill-{index}")
        deadline = time.monotonic() + 60
        while not Receiver.completed and time.monotonic() < deadline:
            time.sleep(0.2)
        time.sleep(3)  # a second resend, if any, would arrive now
        tries.append(
            {
                "killed_mid_delivery": in_flight,
                "delivered": len(Receiver.completed),
                "seconds_to_redelivery": round(time.monotonic() - killed_at - 3, 1),
                "same_event": all(
                    json.loads(b)["claim_id"] == created["id"] for b in Receiver.completed
                ),
            }
        )
    server.shutdown()
    held = all(t["killed_mid_delivery"] and t["delivered"] == 1 and t["same_event"] for t in tries)
    return {"scenario": "webhook-kill", "times": rounds, "held": held, "tries": tries}


def signin_spraying(stack: Stack, rounds: int) -> Result:
    second = stack._spawn(
        ["serve", "--no-worker", "--host", "127.0.0.1", "--port", str(port := free_port())],
        "api2.log",
    )
    try:
        time.sleep(8)
        replicas = [
            httpx.Client(base_url=stack.base_url),
            httpx.Client(base_url=f"http://127.0.0.1:{port}"),
        ]
        tries = []
        for index in range(rounds):
            answers: dict[int, int] = {}
            started = time.monotonic()
            for attempt in range(200):
                replica = replicas[attempt % 2]
                form = replica.get("/adjuster/login")
                token = re.search(r'name="csrf_token" value="([^"]+)"', form.text).group(1)  # type: ignore[union-attr]
                answer = replica.post(
                    "/adjuster/login",
                    data={
                        "email": f"user{index}-{attempt}@insurer.example",
                        "password": "Winter2026!",
                        "csrf_token": token,
                    },
                    headers={"Cookie": f"cdat_login_csrf={token}"},
                )
                answers[answer.status_code] = answers.get(answer.status_code, 0) + 1
            tries.append({"answers": answers, "seconds": round(time.monotonic() - started, 1)})
            time.sleep(0)  # the next round reuses the address: its budget is spent
    finally:
        stop_process(second)
    held = tries[0]["answers"].get(401, 0) <= 20 and all(
        t["answers"].get(401, 0) <= 20 for t in tries
    )
    return {
        "scenario": "signin-spraying",
        "times": rounds,
        "replicas": 2,
        "held": held,
        "tries": tries,
    }


def idempotent_retry(stack: Stack, rounds: int) -> Result:
    client = httpx.Client(base_url=stack.base_url, timeout=30)
    photo = make_photos(1, 320, 5)[0]
    tries = []
    for index in range(rounds):
        created = client.post("/v1/claims", json=CLAIM).json()
        auth = {"Authorization": f"Bearer {created['access_token']}"}
        files = [("files", ("p.jpg", photo, "image/jpeg"))]
        client.post(f"/v1/claims/{created['id']}/photos", files=files, headers=auth)
        retry = {**auth, "Idempotency-Key": f"probe-submit-{index}-{time.time_ns()}"}
        url = f"/v1/claims/{created['id']}/submit"
        with ThreadPoolExecutor(6) as pool:
            answers = list(pool.map(lambda _, u=url, h=retry: client.post(u, headers=h), range(6)))
        jobs = {a.json().get("job", {}).get("id") for a in answers}
        tries.append({"statuses": [a.status_code for a in answers], "jobs": len(jobs)})
    held = all(t["statuses"] == [202] * 6 and t["jobs"] == 1 for t in tries)
    return {"scenario": "idempotent-retry", "times": rounds, "held": held, "tries": tries}


BROKERS = {  # Redis also holds the rate-limit counters; with the others they are per process
    "redis": REDIS_URL,
    "rabbitmq": "amqp://guest:guest@127.0.0.1:5672//",
    "embedded": "sqla+sqlite:///{tmp}/broker.sqlite3",
}
SCENARIOS = {
    "oversize-json": oversize_json,
    "anonymous-upload": anonymous_upload,
    "photo-downloads": photo_downloads,
    "webhook-kill": webhook_kill,
    "signin-spraying": signin_spraying,
    "idempotent-retry": idempotent_retry,
    "upload-cost": upload_cost,
    "signin-burst": signin_burst,
    "small-inputs": small_inputs,
    "forwarded-spoof": forwarded_spoof,  # last: it spends the address's claim budget
}


def main(args: argparse.Namespace) -> int:
    extra = {
        "CDAT_WEBHOOK_LEASE_SECONDS": "3",
        "CDAT_STALE_JOB_SCAN_SECONDS": "1",
        "CDAT_WEBHOOK_TIMEOUT_SECONDS": "2",
        "CDAT_SIGNIN_FAILURES_PER_ADDRESS": "20",
        "CDAT_CLAIMS_PER_HOUR_PER_ADDRESS": "60",
    }
    with tempfile.TemporaryDirectory(prefix="cdat-probe-") as tmp:
        extra["CDAT_BROKER_URL"] = BROKERS[args.broker].format(tmp=tmp)
        with running_stack(Path(tmp), 1, FAKE_ANALYZER, **extra) as stack:
            names = [name for name in SCENARIOS if not args.only or name in args.only]
            results = [_run(name, stack, args.rounds) for name in names]
    summary = {
        "benchmark": "security probes",
        "broker": args.broker,
        "scenarios": results,
        "all_held": all(r["held"] for r in results),
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(summary, indent=2) + "\n")
    print(f"all_held={summary['all_held']}; wrote {args.output}")
    return 0 if summary["all_held"] else 1


def _run(name: str, stack: Stack, rounds: int) -> Result:
    started = time.monotonic()
    try:
        result = SCENARIOS[name](stack, rounds)
    except Exception as exc:
        result = {"scenario": name, "held": False, "error": f"{type(exc).__name__}: {exc}"}
    result["seconds"] = round(time.monotonic() - started, 1)
    print(json.dumps(result), flush=True)
    return result


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--only", choices=sorted(SCENARIOS), action="append")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--broker", choices=sorted(BROKERS), default="redis")
    parser.add_argument("--output", type=Path, default=RESULTS)
    sys.exit(main(parser.parse_args()))
