"""Alembic environment: the URL comes from the caller (cdat db upgrade), not from a file."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine, pool

from mobile_api.storage import models  # noqa: F401  (registers tables on Base.metadata)
from mobile_api.storage.db import Base

config = context.config
url = str(config.attributes.get("url") or config.get_main_option("sqlalchemy.url"))


def run_offline() -> None:
    context.configure(url=url, target_metadata=Base.metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()


def run_online() -> None:
    engine = create_engine(url, poolclass=pool.NullPool)
    with engine.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=Base.metadata,
            render_as_batch=connection.dialect.name == "sqlite",
        )
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


if context.is_offline_mode():
    run_offline()
else:
    run_online()
