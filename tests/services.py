"""The production-shape services on this machine. Tests skip, saying why, when one is down."""

from __future__ import annotations

import socket
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

PG_ADMIN_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
REDIS_URL = "redis://127.0.0.1:6379/7"
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


def fresh_redis() -> str:
    require_port("Redis", 6379)
    import redis

    redis.Redis.from_url(REDIS_URL).flushdb()
    return REDIS_URL


def rabbitmq() -> str:
    require_port("RabbitMQ", 5672)
    return RABBIT_URL
