from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from cdat.settings import Settings
from mobile_api.api.app import create_app
from mobile_api.auth import Role
from mobile_api.claims.service import create_staff
from mobile_api.runtime import Runtime
from tests.migrated import migrated

REPO_ROOT = Path(__file__).resolve().parent.parent

# Ultralytics must never reach the network from a test run.
os.environ.setdefault("YOLO_OFFLINE", "1")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if os.environ.get("CDAT_HEAVY_TESTS") == "1":
        return
    skip = pytest.mark.skip(reason="heavy test: opt in with CDAT_HEAVY_TESTS=1")
    for item in items:
        if "heavy" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session", autouse=True)
def fresh_cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A test run starts with nothing remembered (cdat.settings.Settings.cache_dir): a
    policy a test loads is checked in this run, not trusted from the user's own cache."""
    with pytest.MonkeyPatch.context() as patch:
        cache = tmp_path_factory.mktemp("cdat-cache")
        patch.setenv("CDAT_CACHE_DIR", str(cache))
        yield cache


def make_settings(tmp_path: Path, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "environment": "test",
        "data_dir": tmp_path,
        "analyzer": "tests.fakes:build_fake_analyzer",
        "webhook_backoff_seconds": 0.1,
        # Tests open many claims from one address; test_disk_bounds sets a low limit itself.
        "claims_per_hour_per_address": 100_000,
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path)


@pytest.fixture
def runtime(settings: Settings) -> Iterator[Runtime]:
    migrated(settings.resolved_database_url)
    rt = Runtime.build(settings)
    yield rt
    rt.dispose()


@pytest.fixture
def client(settings: Settings, runtime: Runtime) -> Iterator[TestClient]:
    with TestClient(create_app(settings, runtime)) as test_client:
        yield test_client


@pytest.fixture
def staff_token(runtime: Runtime) -> str:
    _, token = create_staff(runtime, "adjuster@example.com", Role.ADJUSTER, name="Ada")
    return token


@contextmanager
def serving(settings: Settings, **client_options: Any) -> Iterator[TestClient]:
    """A migrated database and the app over it, for tests that need their own settings."""
    migrated(settings.resolved_database_url)
    rt = Runtime.build(settings)
    try:
        with TestClient(create_app(settings, rt), **client_options) as test_client:
            yield test_client
    finally:
        rt.dispose()


def claim_body(**overrides: object) -> dict[str, object]:
    body: dict[str, object] = {
        "policy_number": "POL-12345",
        "loss_date": "2026-11-20",
        "description": "Rear-ended at a junction",
        "vehicle": {"make": "Maruti", "model": "Swift", "year": 2021, "body_type": "hatchback"},
        "contact": {"name": "Asha Rao", "email": "asha@example.com", "phone": "+91 98765 43210"},
    }
    body.update(overrides)
    return body


def open_claim(client: TestClient, **overrides: object) -> tuple[str, dict[str, str]]:
    response = client.post("/v1/claims", json=claim_body(**overrides))
    assert response.status_code == 201, response.text
    created = response.json()
    return created["id"], {"Authorization": f"Bearer {created['access_token']}"}


def upload(client: TestClient, claim_id: str, headers: dict[str, str], *photos: bytes) -> Any:
    """POST the photos as JPEGs; returns the response, whatever its status."""
    files = [("files", (f"p{i}.jpg", data, "image/jpeg")) for i, data in enumerate(photos)]
    return client.post(f"/v1/claims/{claim_id}/photos", files=files, headers=headers)


def submit(client: TestClient, claim_id: str, headers: dict[str, str]) -> str:
    """Submit the claim; it must be accepted. Returns the job's id."""
    response = client.post(f"/v1/claims/{claim_id}/submit", headers=headers)
    assert response.status_code == 202, response.text
    job_id: str = response.json()["job"]["id"]
    return job_id


@pytest.fixture(scope="session")
def data_root() -> Path:
    """Where the real data sets are (CDAT_DATA_ROOT, else ../shared/datasets)."""
    import os

    return Path(os.environ.get("CDAT_DATA_ROOT", REPO_ROOT.parent / "shared" / "datasets"))
