"""Policyholders download a GPS-free copy made once at upload, never re-encoded per download."""

from __future__ import annotations

import io

import pytest
from fastapi.testclient import TestClient
from PIL import Image
from sqlalchemy import update

from mobile_api.runtime import Runtime
from mobile_api.storage import models
from tests import images
from tests.conftest import open_claim, upload

GPS = {1: "N", 2: (12.0, 58.0, 0.0), 3: "E", 4: (77.0, 35.0, 0.0)}


@pytest.fixture
def encodes(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every image encode in this process from here on (a re-encode is what costs)."""
    seen: list[str] = []
    real = Image.Image.save

    def counted(self: Image.Image, *args: object, **kwargs: object) -> None:
        seen.append(self.format or "?")
        real(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(Image.Image, "save", counted)
    return seen


def test_downloads_serve_the_copy_made_at_upload(client: TestClient, encodes: list[str]) -> None:
    # given a photo with a location, uploaded once
    claim_id, headers = open_claim(client)
    photo = images.jpeg(640, 480, gps=GPS)
    before = len(encodes)
    photo_id = upload(client, claim_id, headers, photo).json()["photos"][0]["id"]
    at_upload = len(encodes) - before
    # when the policyholder downloads it six times
    served = [
        client.get(f"/v1/claims/{claim_id}/photos/{photo_id}", headers=headers) for _ in range(6)
    ]
    # then nothing was re-encoded, every download is the same file, and it has no location
    assert at_upload == 1
    assert len(encodes) == before + at_upload
    assert len({r.content for r in served}) == 1
    assert int(served[0].headers["content-length"]) == len(served[0].content)
    assert 0x8825 not in Image.open(io.BytesIO(served[0].content)).getexif()


def test_photos_stored_before_copies_get_one_on_first_download(
    client: TestClient, runtime: Runtime, encodes: list[str]
) -> None:
    # given a photo stored before copies existed
    claim_id, headers = open_claim(client)
    photo = images.jpeg(gps=GPS)
    photo_id = upload(client, claim_id, headers, photo).json()["photos"][0]["id"]
    with runtime.sessions() as session, session.begin():
        session.execute(
            update(models.Photo).where(models.Photo.id == photo_id).values(public_sha256=None)
        )
    before = len(encodes)
    # when it is downloaded three times
    served = [
        client.get(f"/v1/claims/{claim_id}/photos/{photo_id}", headers=headers) for _ in range(3)
    ]
    # then its copy was made once, without the location
    assert len(encodes) == before + 1
    assert all(0x8825 not in Image.open(io.BytesIO(r.content)).getexif() for r in served)
