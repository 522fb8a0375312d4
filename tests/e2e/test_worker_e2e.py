"""Claims from creation to a finished job through real workers and real brokers."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from cdat.settings import Settings
from mobile_api.api.app import create_app
from mobile_api.runtime import Runtime
from mobile_api.storage import models
from tests import images, services
from tests.conftest import make_settings, open_claim, upload
from tests.e2e.workers import start_worker, stop_worker, wait_until
from tests.migrated import migrated

pytestmark = pytest.mark.slow


@contextmanager
def running_service(settings: Settings) -> Iterator[tuple[TestClient, Runtime]]:
    migrated(settings.resolved_database_url)
    rt = Runtime.build(settings)
    try:
        with TestClient(create_app(settings, rt)) as client:
            yield client, rt
    finally:
        rt.dispose()


def assess_one_claim(settings: Settings, log: Path) -> None:
    with running_service(settings) as (client, _):
        worker = start_worker(settings, log)
        try:
            claim_id, headers = open_claim(client)
            upload(client, claim_id, headers, images.jpeg(), images.jpeg(color=(200, 200, 200)))
            assert client.post(f"/v1/claims/{claim_id}/submit", headers=headers).status_code == 202

            def finished() -> bool:
                status = client.get(f"/v1/claims/{claim_id}", headers=headers).json()["status"]
                return status in ("needs_review", "assessed", "failed")

            wait_until(finished, 90, "the claim to be assessed", log)
            claim = client.get(f"/v1/claims/{claim_id}", headers=headers).json()
            assert claim["status"] == "needs_review", claim["status_reason"]
            assert claim["progress"]["job"]["state"] == "succeeded"
            assert len(claim["assessment"]["photos"]) == 2
        finally:
            stop_worker(worker)


def test_embedded_sqlite_broker(tmp_path: Path) -> None:
    assess_one_claim(make_settings(tmp_path), tmp_path / "worker.log")


def test_postgres_and_redis(tmp_path: Path) -> None:
    redis_url = services.fresh_redis()
    with services.fresh_postgres_database(migrated=True) as database_url:
        settings = make_settings(tmp_path, database_url=database_url, broker_url=redis_url)
        assess_one_claim(settings, tmp_path / "worker.log")


def test_postgres_and_rabbitmq(tmp_path: Path) -> None:
    broker = services.rabbitmq()
    with services.fresh_postgres_database(migrated=True) as database_url:
        settings = make_settings(tmp_path, database_url=database_url, broker_url=broker)
        assess_one_claim(settings, tmp_path / "worker.log")


def test_killed_worker_job_is_redelivered_and_completes_once(tmp_path: Path) -> None:
    # given a slow assessment and a short lease
    settings = make_settings(
        tmp_path,
        analyzer="tests.fakes:build_slow_fake_analyzer",
        job_lease_seconds=3.0,
        stale_job_scan_seconds=1.0,
    )
    log = tmp_path / "worker.log"
    with running_service(settings) as (client, rt):
        first = start_worker(settings, log, "first")
        claim_id, headers = open_claim(client)
        upload(client, claim_id, headers, images.jpeg())
        job_id = client.post(f"/v1/claims/{claim_id}/submit", headers=headers).json()["job"]["id"]

        def job_state() -> str:
            with rt.sessions() as session:
                return session.get_one(models.Job, job_id).state

        # when the worker is killed in the middle of the assessment
        wait_until(lambda: job_state() == "running", 60, "the job to start", log)
        stop_worker(first, kill=True)
        second = start_worker(settings, log, "second")
        try:
            # then another worker picks the job up and it completes exactly once
            wait_until(lambda: job_state() == "succeeded", 90, "the job to be redone", log)
        finally:
            stop_worker(second)
        with rt.sessions() as session:
            job = session.get_one(models.Job, job_id)
            stored = session.scalar(
                select(func.count()).where(models.AssessmentRecord.job_id == job_id)
            )
        assert job.attempts == 2
        assert stored == 1


def test_two_workers_on_redis_and_postgres_do_each_job_once(tmp_path: Path) -> None:
    # given two worker processes sharing Redis and PostgreSQL
    redis_url = services.fresh_redis()
    with services.fresh_postgres_database(migrated=True) as database_url:
        settings = make_settings(
            tmp_path,
            database_url=database_url,
            broker_url=redis_url,
            analyzer="tests.fakes:build_slow_fake_analyzer",
        )
        logs = [tmp_path / "worker-a.log", tmp_path / "worker-b.log"]
        with running_service(settings) as (client, rt):
            workers = [
                start_worker(settings, log, name) for log, name in zip(logs, "ab", strict=True)
            ]
            try:
                # when four claims are submitted at once
                job_ids = []
                for shade in range(4):
                    claim_id, headers = open_claim(client)
                    upload(client, claim_id, headers, images.jpeg(color=(shade * 40, 90, 90)))
                    response = client.post(f"/v1/claims/{claim_id}/submit", headers=headers)
                    job_ids.append(response.json()["job"]["id"])

                def all_done() -> bool:
                    with rt.sessions() as session:
                        states = session.scalars(
                            select(models.Job.state).where(models.Job.id.in_(job_ids))
                        ).all()
                    return all(state == "succeeded" for state in states)

                wait_until(all_done, 120, "four jobs on two workers", logs[0])
            finally:
                for worker in workers:
                    stop_worker(worker)
            # then every job ran once, and both workers took part
            with rt.sessions() as session:
                attempts = session.scalars(
                    select(models.Job.attempts).where(models.Job.id.in_(job_ids))
                ).all()
                stored = session.scalar(
                    select(func.count()).where(models.AssessmentRecord.job_id.in_(job_ids))
                )
        assert sorted(attempts) == [1, 1, 1, 1]
        assert stored == 4
        started = [log.read_text().count("assessment started") for log in logs]
        assert sum(started) == 4 and min(started) >= 1, started
