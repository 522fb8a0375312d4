"""The production-shape services on this machine. Tests skip, saying why, when one is down."""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

PG_ADMIN_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
REDIS_SERVER = "redis://127.0.0.1:6379"
REDIS_SLOTS = 4
"""Redis databases each test process may flush: pytest-xdist's workers run side by side and
must never flush each other's queue or counters."""
RABBIT_URL = "amqp://guest:guest@127.0.0.1:5672//"


def require_port(name: str, port: int) -> None:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except OSError as exc:
        pytest.skip(f"{name} is unreachable on 127.0.0.1:{port} ({exc}); start it to run this test")


@contextmanager
def fresh_postgres_database(*, migrated: bool = False) -> Iterator[str]:
    """A new database, empty or (`migrated`) at the newest migration; dropped afterwards."""
    require_port("PostgreSQL", 5432)
    from sqlalchemy import create_engine, text

    from tests.migrated import create_migrated_postgres

    name = f"cdat_test_{uuid.uuid4().hex[:10]}"
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    if migrated:
        url = create_migrated_postgres(PG_ADMIN_URL, name)
    else:
        with admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
        url = f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    try:
        yield url
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def redis_database(slot: int = 0) -> int:
    """This test process's `slot`-th Redis database (0-15 on a stock server)."""
    if not 0 <= slot < REDIS_SLOTS:
        raise ValueError(f"a test process has Redis slots 0-{REDIS_SLOTS - 1}, not {slot}")
    worker = int(os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw"))
    first = 3 + REDIS_SLOTS * worker
    if first + REDIS_SLOTS - 1 > 15:
        raise RuntimeError(
            f"Redis has databases 0-15: run at most 3 test workers, not {worker + 1}"
        )
    return first + slot


def fresh_redis(slot: int = 0) -> str:
    """An emptied Redis database of this test process's own."""
    require_port("Redis", 6379)
    import redis

    url = f"{REDIS_SERVER}/{redis_database(slot)}"
    redis.Redis.from_url(url).flushdb()
    return url


def rabbitmq() -> str:
    require_port("RabbitMQ", 5672)
    return RABBIT_URL
