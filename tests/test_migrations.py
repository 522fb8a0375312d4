"""Migrations build the whole schema from empty, and match the models."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, inspect, text

from mobile_api.storage import sealed_secrets
from mobile_api.storage.db import Base
from mobile_api.storage.migrate import downgrade, upgrade
from tests import services
from tests.migrated import migrated

SECRET = "a-test-secret-key-of-32-characters-or-more"


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


def head_revision(url: str) -> str:
    engine = create_engine(url)
    with engine.connect() as connection:
        revision = connection.execute(text("SELECT version_num FROM alembic_version")).scalar()
    engine.dispose()
    return str(revision)


def test_the_suites_migrated_copies_are_at_head_and_match_the_models(tmp_path: Path) -> None:
    # given the SQLite databases most tests start from: copies of one migrated per run
    reference = f"sqlite:///{tmp_path / 'reference.sqlite3'}"
    upgrade(reference)
    # when two new ones are made
    copies = [f"sqlite:///{tmp_path / name / 'cdat.sqlite3'}" for name in ("a", "b")]
    for url in copies:
        migrated(url)
    # then each is at the head a full upgrade reaches, matches the models, and is its own file
    for url in copies:
        assert head_revision(url) == head_revision(reference)
        assert_schema_matches_models(url)
    engine = create_engine(copies[0])
    with engine.begin() as connection:
        connection.execute(text("INSERT INTO alembic_version VALUES ('written-to-a')"))
    engine.dispose()
    engine = create_engine(copies[1])
    with engine.connect() as connection:
        versions = connection.execute(text("SELECT version_num FROM alembic_version")).all()
    engine.dispose()
    assert [v for (v,) in versions] == [head_revision(reference)]


@pytest.mark.services
def test_the_suites_migrated_postgres_copies_are_at_head_and_match_the_models() -> None:
    with services.fresh_postgres_database() as reference:
        upgrade(reference)
        with services.fresh_postgres_database(migrated=True) as url:
            assert head_revision(url) == head_revision(reference)
            assert_schema_matches_models(url)


def test_claims_stand_on_their_latest_version_after_the_lifecycle_upgrade(
    tmp_path: Path,
) -> None:
    # given a database from before the lifecycle migration, with a claim of two versions
    url = f"sqlite:///{tmp_path / 'old.sqlite3'}"
    upgrade(url, "0002")
    engine = create_engine(url)
    with engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO claims (id, token_hash, policy_number, loss_date, description, "
                "vehicle, contact, status, status_reason, revision, review_priority, "
                "created_at, updated_at) VALUES ('c1', 'h', 'POL-1', '2026-11-20', '', '{}', "
                "'{}', 'needs_review', '', 3, 1, '2026-11-20', '2026-11-20')"
            )
        )
        for version in (1, 2):
            connection.execute(
                text(
                    "INSERT INTO assessments (claim_id, version, photo_ids, body, source, "
                    "created_at) VALUES ('c1', :v, '[]', '{}', 'adjuster', '2026-11-20')"
                ),
                {"v": version},
            )
    # when it is upgraded
    upgrade(url)
    # then the claim stands on its latest version, and photos can be removed
    with engine.connect() as connection:
        assert connection.execute(text("SELECT current_version FROM claims")).scalar() == 2
    assert "removed_at" in {c["name"] for c in inspect(engine).get_columns("photos")}
    # and the upgrade can be undone
    downgrade(url, "0002")
    assert "current_version" not in {c["name"] for c in inspect(engine).get_columns("claims")}
    engine.dispose()


def test_webhook_secrets_stored_in_the_clear_are_sealed_by_the_upgrade(tmp_path: Path) -> None:
    # given a database from before sealing, holding a claim's webhook secret in the clear
    url = f"sqlite:///{tmp_path / 'old.sqlite3'}"
    upgrade(url, "0003_security")
    engine = create_engine(url)
    with engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO claims (id, token_hash, policy_number, loss_date, description, "
                "vehicle, contact, status, status_reason, revision, review_priority, "
                "webhook_url, webhook_secret, created_at, updated_at) VALUES ('c1', 'h', "
                "'POL-1', '2026-11-20', '', '{}', '{}', 'received', '', 0, 0, "
                "'https://hooks.example.com/x', 'plain-old-secret', '2026-11-20', '2026-11-20')"
            )
        )
    # when it is upgraded with the service's secret key
    upgrade(url, secret_key=SECRET)
    with engine.connect() as connection:
        stored = connection.execute(text("SELECT webhook_secret FROM claims")).scalar_one()
    engine.dispose()
    # then the row no longer holds the secret, and opens to it under that key only
    assert "plain-old-secret" not in stored
    assert sealed_secrets.unseal(SECRET, "c1", stored) == "plain-old-secret"
    with pytest.raises(RuntimeError):
        sealed_secrets.unseal("another-key-of-thirty-two-characters!", "c1", stored)
    # and going back down leaves it as it was
    downgrade(url, "0003_security", secret_key=SECRET)
    engine = create_engine(url)
    with engine.connect() as connection:
        back = connection.execute(text("SELECT webhook_secret FROM claims")).scalar_one()
    engine.dispose()
    assert back == "plain-old-secret"
