"""Faults: what the service does when its parts fail, and whether anything accepted is lost.

Scenarios (all on 127.0.0.1; every service is restored in a `finally`):
  worker-kill      SIGKILL a `cdat worker` mid-assessment (Redis + PostgreSQL); a new worker
                   must finish the job, exactly once.
  broker-restart   `redis-cli shutdown nosave` while claims are submitted, then restart it:
                   submits answer 503 + Retry-After, nothing accepted is lost, no manual step.
  db-restart       restart PostgreSQL while claims are created and submitted.
  blob-failure     blob storage failing (StorageError) or unusable (its root is not a
                   directory): uploads answer 503 storage_unavailable, nothing half-stored.

    .venv/bin/python bench/faults.py                        # all scenarios
    .venv/bin/python bench/faults.py --only broker-restart --rounds 3

Prints a summary and writes bench/results/faults.json.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.load import CLAIM, make_photos
from bench.prodstack import (
    FAKE_ANALYZER,
    Stack,
    ensure_redis,
    restart_postgres,
    restart_redis,
    running_stack,
    stop_process,
    wait_ready,
)

RESULTS = Path(__file__).resolve().parent / "results" / "faults.json"
DONE = {"assessed", "needs_review", "failed"}
SHORT_LEASE = {"CDAT_JOB_LEASE_SECONDS": "4", "CDAT_STALE_JOB_SCAN_SECONDS": "1"}
Result = dict[str, Any]


def get_args_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--only", choices=sorted(SCENARIOS), action="append", help="scenario(s)")
    parser.add_argument("--rounds", type=int, default=2, help="times each fault is injected")
    parser.add_argument("--claims", type=int, default=12, help="claims submitted around a restart")
    parser.add_argument("--output", type=Path, default=RESULTS)
    return parser


# --- a policyholder that retries the way the mobile app should --------------------------


class Client:
    def __init__(self, base_url: str) -> None:
        self.http = httpx.Client(base_url=base_url, timeout=30)
        self.statuses: Counter[str] = Counter()
        self.retry_after_missing = 0

    def request(self, method: str, url: str, *, give_up_s: float = 90, **kw: Any) -> httpx.Response:
        """Retry 503s (honouring Retry-After, capped) and connection errors until `give_up_s`."""
        deadline = time.monotonic() + give_up_s
        while True:
            try:
                response = self.http.request(method, url, **kw)
            except httpx.HTTPError as exc:
                self.statuses[type(exc).__name__] += 1
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)
                continue
            self.statuses[str(response.status_code)] += 1
            if response.status_code != 503 or time.monotonic() > deadline:
                return response
            if "retry-after" not in response.headers:
                self.retry_after_missing += 1
            time.sleep(min(float(response.headers.get("retry-after", 1)), 2.0))

    def open_claim(self, photos: list[bytes]) -> tuple[str, dict[str, str]]:
        created = self.request("POST", "/v1/claims", json=CLAIM)
        created.raise_for_status()
        claim_id, token = created.json()["id"], created.json()["access_token"]
        auth = {"Authorization": f"Bearer {token}"}
        files = [("files", (f"p{i}.jpg", data, "image/jpeg")) for i, data in enumerate(photos)]
        self.request(
            "POST", f"/v1/claims/{claim_id}/photos", files=files, headers=auth
        ).raise_for_status()
        return claim_id, auth

    def claim(self, claim_id: str, auth: dict[str, str]) -> dict[str, Any]:
        response = self.request("GET", f"/v1/claims/{claim_id}", headers=auth)
        response.raise_for_status()
        body: dict[str, Any] = response.json()
        return body

    def wait_done(self, claim_id: str, auth: dict[str, str], timeout_s: float) -> dict[str, Any]:
        deadline = time.monotonic() + timeout_s
        claim = self.claim(claim_id, auth)
        while claim["status"] not in DONE and time.monotonic() < deadline:
            time.sleep(0.3)
            claim = self.claim(claim_id, auth)
        return claim


def once_assessed(claim: dict[str, Any]) -> bool:
    return (
        claim["status"] in ("assessed", "needs_review") and len(claim["assessment_versions"]) == 1
    )


# --- scenarios ---------------------------------------------------------------------------


def worker_kill(args: argparse.Namespace, tmp: Path) -> Result:
    extra = {**SHORT_LEASE, "CDAT_ANALYZER": "tests.fakes:build_slow_fake_analyzer"}
    rounds: list[Result] = []
    with running_stack(tmp / "kill", 1, FAKE_ANALYZER, **extra) as stack:
        client = Client(stack.base_url)
        photos = make_photos(2, 320, 7)
        for index in range(args.rounds):
            claim_id, auth = client.open_claim(photos)
            assert (
                client.request("POST", f"/v1/claims/{claim_id}/submit", headers=auth).status_code
                == 202
            )
            running = _wait(_job_is(client, claim_id, auth, "running"), 60)
            victim = stack.workers[-1]
            stop_process(victim, kill=True)
            stack.start_worker(f"after-kill-{index}")
            claim = client.wait_done(claim_id, auth, 90)
            job = claim["progress"]["job"] or {}
            rounds.append(
                {
                    "killed_while_running": running,
                    "status": claim["status"],
                    "job_attempts": job.get("attempts"),
                    "assessment_versions": len(claim["assessment_versions"]),
                    "completed_once": once_assessed(claim),
                }
            )
    lost = sum(not r["completed_once"] for r in rounds)
    return _result(
        "worker-kill",
        "SIGKILL the only worker (process group) while its job is running; start a new one",
        args.rounds,
        lost,
        {"rounds": rounds, "broker": "redis", "database": "postgresql"},
    )


def _job(client: Client, claim_id: str, auth: dict[str, str]) -> dict[str, Any]:
    job: dict[str, Any] = client.claim(claim_id, auth)["progress"]["job"] or {}
    return job


def _job_is(client: Client, claim_id: str, auth: dict[str, str], state: str) -> Callable[[], bool]:
    return lambda: _job(client, claim_id, auth).get("state") == state


def _wait(condition: Callable[[], bool], timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.2)
    return False


def submissions_across(
    stack: Stack, args: argparse.Namespace, fault: Callable[[], dict[str, float]], name: str
) -> Result:
    """Submit claims in one thread while `fault` runs in another; then check every one."""
    client = Client(stack.base_url)
    photos = make_photos(4, 320, 11)
    accepted: list[tuple[str, dict[str, str]]] = []
    failures: list[str] = []
    fault_info: list[dict[str, float]] = []

    def submitter() -> None:
        for _ in range(args.claims):
            try:
                claim_id, auth = client.open_claim(photos)
                response = client.request("POST", f"/v1/claims/{claim_id}/submit", headers=auth)
                if response.status_code == 202:
                    accepted.append((claim_id, auth))
                else:
                    failures.append(f"submit {response.status_code}: {response.text[:200]}")
            except Exception as exc:  # counted, never hidden
                failures.append(f"{type(exc).__name__}: {exc}")
            time.sleep(0.4)

    rounds = []
    for _ in range(args.rounds):
        thread = threading.Thread(target=submitter)
        thread.start()
        time.sleep(1.0)
        fault_info.append(fault())
        thread.join()
        rounds.append(len(accepted))
    wait_ready(stack.base_url, 60, stack.logs / "api.log")
    finished = [client.wait_done(cid, auth, 120) for cid, auth in accepted]
    lost = sum(not once_assessed(claim) for claim in finished)
    return _result(
        name,
        f"{args.claims} claims created, uploaded and submitted per round while the fault ran",
        args.rounds,
        lost + len(failures),
        {
            "fault": fault_info,
            "claims_accepted": len(accepted),
            "claims_assessed_once": len(finished) - lost,
            "client_gave_up": failures[:10],
            "answers_seen": dict(client.statuses),
            "503_without_retry_after": client.retry_after_missing,
            "recovered_without_intervention": True,
        },
    )


def broker_restart(args: argparse.Namespace, tmp: Path) -> Result:
    try:
        with running_stack(tmp / "broker", 2, FAKE_ANALYZER, **SHORT_LEASE) as stack:
            return submissions_across(stack, args, lambda: restart_redis(4.0), "broker-restart")
    finally:
        ensure_redis()


def db_restart(args: argparse.Namespace, tmp: Path) -> Result:
    with running_stack(tmp / "db", 2, FAKE_ANALYZER, **SHORT_LEASE) as stack:
        return submissions_across(stack, args, restart_postgres, "db-restart")


def blob_failure(args: argparse.Namespace, tmp: Path) -> Result:
    from tests.faults.storage import refused_uploads

    outcomes = refused_uploads(tmp / "blobs", args.rounds)
    broken, mended = outcomes[:-1], outcomes[-1]
    lost = sum(not o["nothing_half_stored"] or o["status"] != 503 for o in broken)
    lost += mended["status"] != 201
    return _result(
        "blob-failure",
        "uploads while the blob store raises StorageError / its root is not a directory",
        len(outcomes),
        lost,
        {"attempts": outcomes},
    )


def _result(name: str, tried: str, times: int, lost: int, details: dict[str, Any]) -> Result:
    return {
        "scenario": name,
        "tried": tried,
        "times": times,
        "lost": lost,
        "ok": lost == 0,
        **details,
    }


SCENARIOS: dict[str, Callable[[argparse.Namespace, Path], Result]] = {
    "worker-kill": worker_kill,
    "broker-restart": broker_restart,
    "db-restart": db_restart,
    "blob-failure": blob_failure,
}


def main(args: argparse.Namespace) -> int:
    if args.rounds < 1 or args.claims < 1:
        raise SystemExit("error: --rounds and --claims must be positive")
    results = []
    with tempfile.TemporaryDirectory(prefix="cdat-faults-") as tmp:
        for name in args.only or list(SCENARIOS):
            started = time.monotonic()
            try:
                result = SCENARIOS[name](args, Path(tmp))
            except Exception as exc:
                result = _result(
                    name, "scenario crashed", 0, -1, {"error": f"{type(exc).__name__}: {exc}"}
                )
            result["seconds"] = round(time.monotonic() - started, 1)
            print(json.dumps(result, indent=2), flush=True)
            results.append(result)
    ensure_redis()
    summary = {"benchmark": "faults", "scenarios": results, "all_ok": all(r["ok"] for r in results)}
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(summary, indent=2) + "\n")
    print(f"all_ok={summary['all_ok']}; wrote {args.output}")
    return 0 if summary["all_ok"] else 1


if __name__ == "__main__":
    sys.exit(main(get_args_parser().parse_args()))
