"""Real `cdat worker` processes for end-to-end tests."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from cdat.settings import Settings
from tests.conftest import REPO_ROOT

SETTING_FIELDS = (
    "environment",
    "data_dir",
    "database_url",
    "broker_url",
    "analyzer",
    "job_lease_seconds",
    "stale_job_scan_seconds",
    "job_max_attempts",
)


def worker_env(settings: Settings) -> dict[str, str]:
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT))
    for name in SETTING_FIELDS:
        value = getattr(settings, name)
        if value is not None:
            env[f"CDAT_{name.upper()}"] = str(value)
    return env


def start_worker(settings: Settings, log: Path, name: str = "w1") -> subprocess.Popen[bytes]:
    command = [sys.executable, "-m", "mobile_api.cli", "worker", "-c", "1", "-n", f"{name}@%h"]
    with log.open("ab") as out:
        return subprocess.Popen(
            command,
            cwd=REPO_ROOT,
            env=worker_env(settings),
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def stop_worker(process: subprocess.Popen[bytes], *, kill: bool = False) -> None:
    if process.poll() is not None:
        return
    os.killpg(process.pid, signal.SIGKILL if kill else signal.SIGTERM)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def wait_until(condition: Callable[[], bool], timeout_s: float, what: str, log: Path) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.25)
    tail = log.read_text(errors="replace")[-3000:] if log.exists() else ""
    raise AssertionError(f"timed out after {timeout_s}s waiting for {what}\nworker log:\n{tail}")
