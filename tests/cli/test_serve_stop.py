"""`cdat serve` stopped as a process manager stops it (SIGTERM) stops the worker it started."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _children(pid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _wait(condition, seconds: float) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.2)
    return False


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as answer:
            return bool(answer.status == 200)
    except OSError:
        return False


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="needs /proc to find the worker")
def test_sigterm_stops_the_api_and_the_worker_it_started(tmp_path: Path) -> None:
    # given `cdat serve` on the embedded defaults, with the worker it starts
    port = _free_port()
    env = {**os.environ, "CDAT_DATA_DIR": str(tmp_path)}
    serve = subprocess.Popen(
        [sys.executable, "-m", "mobile_api.cli", "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    workers: list[int] = []
    try:
        assert _wait(lambda: _healthy(f"http://127.0.0.1:{port}/healthz"), 90), "no /healthz"
        workers += _children(serve.pid)
        assert workers, "serve started no worker"
        # when a process manager stops it
        serve.send_signal(signal.SIGTERM)
        serve.wait(timeout=90)
        # then the worker is gone too, not left running on its own
        assert _wait(lambda: not any(_alive(w) for w in workers), 60), "the worker outlived serve"
        assert serve.returncode == 0
    finally:
        # the worker's own pool processes too, should it have been left behind
        for pid in [serve.pid, *workers, *(c for w in workers for c in _children(w))]:
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)
