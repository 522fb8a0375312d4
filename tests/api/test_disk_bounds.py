"""What bounds the disk: refused uploads store nothing; claims per address are limited."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import func, select, update

from mobile_api.runtime import Runtime
from mobile_api.storage import models
from tests import images
from tests.conftest import claim_body, make_settings, open_claim, serving, upload


def blob_files(runtime: Runtime) -> int:
    root = runtime.settings.blob_dir
    return sum(1 for path in root.rglob("*") if path.is_file()) if root.exists() else 0


def test_refused_uploads_leave_no_blobs(tmp_path: Path) -> None:
    with serving(make_settings(tmp_path, max_photos_per_claim=2)) as client:
        runtime: Runtime = client.app.state.runtime  # type: ignore[attr-defined]
        # given a claim at its photo limit, and a decided claim
        full_id, full = open_claim(client)
        assert upload(client, full_id, full, images.jpeg(color=(1, 1, 1)), images.jpeg()).is_success
        decided_id, decided = open_claim(client)
        with runtime.sessions() as session, session.begin():
            session.execute(
                update(models.Claim).where(models.Claim.id == decided_id).values(status="approved")
            )
        before = blob_files(runtime)
        # when each gets six more photos, twice
        answers = [
            upload(client, claim_id, headers, *(images.jpeg(color=(i, 9, n)) for i in range(3)))
            for n in range(2)
            for claim_id, headers in ((full_id, full), (decided_id, decided))
        ]
        # then every upload is refused and no blob was written
        assert [a.status_code for a in answers] == [409] * 4
        assert blob_files(runtime) == before == 2


def test_claims_opened_per_address_are_limited(tmp_path: Path) -> None:
    with serving(make_settings(tmp_path, claims_per_hour_per_address=3)) as client:
        runtime: Runtime = client.app.state.runtime  # type: ignore[attr-defined]
        # when one address opens four claims within the hour
        answers = [client.post("/v1/claims", json=claim_body()) for _ in range(4)]
        with runtime.sessions() as session:
            stored = session.scalar(select(func.count()).select_from(models.Claim))
    # then the fourth is refused with a 429 and Retry-After, and not stored
    assert [a.status_code for a in answers] == [201, 201, 201, 429]
    assert answers[-1].json()["error"]["code"] == "rate_limited"
    assert answers[-1].headers["Retry-After"]
    assert stored == 3
