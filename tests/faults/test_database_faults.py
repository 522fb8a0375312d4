"""The database unreachable (restarting, failed over): a 503 to retry, never a 500."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import create_engine
from sqlalchemy.orm import sessionmaker

from mobile_api.runtime import Runtime
from tests.conftest import claim_body, open_claim


def test_unreachable_database_answers_503_with_retry_after(
    client: TestClient, runtime: Runtime
) -> None:
    # given a claim, then a database that refuses connections (nothing listens on port 1)
    claim_id, headers = open_claim(client)
    healthy = runtime.sessions
    down = create_engine(
        "postgresql+psycopg://cdat@127.0.0.1:1/cdat", connect_args={"connect_timeout": 2}
    )
    runtime.sessions = sessionmaker(down)
    try:
        # when a policyholder opens a claim or reads one
        created = client.post("/v1/claims", json=claim_body())
        read = client.get(f"/v1/claims/{claim_id}", headers=headers)
    finally:
        runtime.sessions = healthy
        down.dispose()
    # then both are 503 database_unavailable with Retry-After, and the service works again
    for response in (created, read):
        assert response.status_code == 503, response.text
        assert response.json()["error"]["code"] == "database_unavailable"
        assert response.headers["retry-after"]
    assert client.get(f"/v1/claims/{claim_id}", headers=headers).status_code == 200
