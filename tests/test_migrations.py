"""Migrations build the whole schema from empty, and match the models."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, inspect

from mobile_api.db import Base
from mobile_api.migrate import downgrade, upgrade
from tests import services


def assert_schema_matches_models(url: str) -> None:
    engine = create_engine(url)
    with engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), Base.metadata)
        tables = set(inspect(connection).get_table_names())
    engine.dispose()
    assert differences == []
    assert {"claims", "photos", "jobs", "assessments", "idempotency_keys"} <= tables


def test_sqlite_upgrade_from_empty_and_back(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'fresh.sqlite3'}"
    upgrade(url)
    assert_schema_matches_models(url)
    downgrade(url, "base")
    engine = create_engine(url)
    assert set(inspect(engine).get_table_names()) == {"alembic_version"}
    engine.dispose()


@pytest.mark.services
def test_postgres_upgrade_from_empty() -> None:
    with services.fresh_postgres_database() as url:
        upgrade(url)
        assert_schema_matches_models(url)
