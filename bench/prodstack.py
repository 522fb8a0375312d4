"""The production shape on this machine, for bench/load.py and bench/faults.py.

PostgreSQL (a fresh database, dropped afterwards) + Redis (its own DB number) + the API
(`cdat serve --no-worker`) + N `cdat worker` processes, all on 127.0.0.1 only.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psutil

REPO = Path(__file__).resolve().parent.parent
PG_ADMIN_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
REDIS_URL = "redis://127.0.0.1:6379/5"
FAKE_ANALYZER = "tests.fakes:build_fake_analyzer"
REAL_ANALYZER = "inference.loading:build_analyzer"
REDIS_START = [
    "redis-server",
    "--daemonize",
    "yes",
    "--bind",
    "127.0.0.1",
    "-::1",
    "--port",
    "6379",
    "--save",
    "",
    "--appendonly",
    "no",
    "--dir",
    "/var/lib/redis",
    "--logfile",
    "/var/log/redis/ci.log",
]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def port_open(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except OSError:
        return False
    return True


def require_services() -> None:
    missing = [
        name for name, port in (("PostgreSQL", 5432), ("Redis", 6379)) if not port_open(port)
    ]
    if missing:
        raise SystemExit(f"error: {', '.join(missing)} not reachable on 127.0.0.1")


@contextmanager
def fresh_database() -> Iterator[str]:
    from sqlalchemy import create_engine, text

    name = f"cdat_bench_{uuid.uuid4().hex[:10]}"
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    finally:
        for _ in range(10):  # the database may be restarting in a fault scenario
            try:
                with admin.connect() as connection:
                    connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
                break
            except Exception:
                time.sleep(1)
        admin.dispose()


@dataclass
class Stack:
    env: dict[str, str]
    port: int
    logs: Path
    api: subprocess.Popen[bytes] | None = None
    workers: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _spawn(self, args: list[str], log_name: str) -> subprocess.Popen[bytes]:
        with (self.logs / log_name).open("ab") as out:
            return subprocess.Popen(
                [sys.executable, "-m", "mobile_api.cli", *args],
                cwd=REPO,
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def start_api(self) -> None:
        self.api = self._spawn(
            ["serve", "--no-worker", "--host", "127.0.0.1", "--port", str(self.port)], "api.log"
        )
        wait_ready(self.base_url, 90, self.logs / "api.log")

    def start_worker(self, name: str) -> subprocess.Popen[bytes]:
        worker = self._spawn(
            ["worker", "-Q", "assess,events", "-c", "1", "-n", f"{name}@%h"], f"{name}.log"
        )
        self.workers.append(worker)
        return worker

    def processes(self) -> list[psutil.Process]:
        roots = [p for p in [self.api, *self.workers] if p is not None and p.poll() is None]
        found: list[psutil.Process] = []
        for root in roots:
            try:
                proc = psutil.Process(root.pid)
                found += [proc, *proc.children(recursive=True)]
            except psutil.NoSuchProcess:
                continue
        return found

    def rss_bytes(self) -> int:
        total = 0
        for proc in self.processes():
            try:
                total += proc.memory_info().rss
            except psutil.NoSuchProcess:
                continue
        return total

    def stop(self) -> None:
        for process in [*self.workers, self.api]:
            if process is not None:
                stop_process(process)


def stop_process(process: subprocess.Popen[bytes], *, kill: bool = False) -> None:
    if process.poll() is not None:
        return
    try:
        os.killpg(process.pid, signal.SIGKILL if kill else signal.SIGTERM)
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    except ProcessLookupError:
        pass


def wait_ready(base_url: str, timeout_s: float, log: Path) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base_url}/readyz", timeout=3).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
    raise RuntimeError(f"the API at {base_url} was not ready after {timeout_s}s\n{tail}")


def stack_env(database_url: str, data_dir: Path, analyzer: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CDAT_")}
    env.update(
        PYTHONPATH=str(REPO),
        YOLO_OFFLINE="1",
        CDAT_ENVIRONMENT="test",
        CDAT_DATA_DIR=str(data_dir),
        CDAT_DATABASE_URL=database_url,
        CDAT_BROKER_URL=REDIS_URL,
        CDAT_ANALYZER=analyzer,
        CDAT_UPLOAD_REQUESTS_PER_MINUTE="100000",
        CDAT_CLAIMS_PER_HOUR_PER_ADDRESS="100000",
    )
    env.update(extra)
    return env


@contextmanager
def running_stack(data_dir: Path, workers: int, analyzer: str, **extra: str) -> Iterator[Stack]:
    require_services()
    import redis

    redis.Redis.from_url(REDIS_URL).flushdb()
    data_dir.mkdir(parents=True, exist_ok=True)
    with fresh_database() as database_url:
        stack = Stack(stack_env(database_url, data_dir, analyzer, **extra), free_port(), data_dir)
        try:
            stack.start_api()
            for index in range(workers):
                stack.start_worker(f"w{index + 1}")
            yield stack
        finally:
            stack.stop()


def restart_redis(down_s: float) -> dict[str, float]:
    """Stop Redis (losing whatever it held, as a crash would) and start it again."""
    stopped = time.monotonic()
    subprocess.run(["redis-cli", "shutdown", "nosave"], check=False, capture_output=True)
    try:
        time.sleep(down_s)
    finally:
        ensure_redis()
    return {"down_s": round(time.monotonic() - stopped, 2)}


def ensure_redis() -> None:
    if port_open(6379):
        return
    subprocess.run(REDIS_START, check=True, capture_output=True)
    deadline = time.monotonic() + 20
    while not port_open(6379):
        if time.monotonic() > deadline:
            raise RuntimeError("redis did not come back within 20 s")
        time.sleep(0.2)


def restart_postgres() -> dict[str, float]:
    version = sorted(os.listdir("/etc/postgresql"))[0]
    started = time.monotonic()
    subprocess.run(
        ["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", "restart"],
        check=True,
        capture_output=True,
    )
    return {"restart_s": round(time.monotonic() - started, 2)}
