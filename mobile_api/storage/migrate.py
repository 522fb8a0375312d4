"""Database migrations, run programmatically (`cdat db upgrade`)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


def alembic_config(url: str, secret_key: str | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    config.attributes["url"] = url
    # For migrations that seal stored secrets (0004); never written to a file.
    config.attributes["secret_key"] = secret_key
    return config


def upgrade(url: str, revision: str = "head", *, secret_key: str | None = None) -> None:
    command.upgrade(alembic_config(url, secret_key), revision)


def downgrade(url: str, revision: str, *, secret_key: str | None = None) -> None:
    command.downgrade(alembic_config(url, secret_key), revision)


def make_revision(url: str, message: str) -> None:
    command.revision(alembic_config(url), message=message, autogenerate=True)
