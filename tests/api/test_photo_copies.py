"""Policyholders download a location-free copy made once at upload by rewriting the photo's
metadata: never re-encoded, neither at upload nor per download."""

from __future__ import annotations

import io

import pytest
from fastapi.testclient import TestClient
from PIL import Image
from PIL.PngImagePlugin import PngInfo
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
    # then nothing was encoded (the copy is the metadata rewritten), every download is the
    # same file, and it has no location
    assert at_upload == 0
    assert len(encodes) == before
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
    # then its copy was made without an encode, and without the location
    assert len(encodes) == before
    assert all(0x8825 not in Image.open(io.BytesIO(r.content)).getexif() for r in served)


XMP = (
    b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF '
    b'xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
    b'<rdf:Description xmlns:exif="http://ns.adobe.com/exif/1.0/" '
    b'exif:GPSLatitude="12,58.0N" exif:GPSLongitude="77,35.0E"/></rdf:RDF></x:xmpmeta>'
)


def _with_xmp(kind: str, exif_gps: bool) -> bytes:
    image = Image.new("RGB", (320, 240), (120, 40, 200))
    exif = Image.Exif()
    exif[0x010F] = "PhoneMaker"
    if exif_gps:
        exif.get_ifd(0x8825).update(GPS)
    buffer = io.BytesIO()
    if kind == "PNG":
        info = PngInfo()
        info.add_itxt("XML:com.adobe.xmp", XMP.decode())
        image.save(buffer, "PNG", pnginfo=info, exif=exif.tobytes())
    elif kind == "WEBP":
        image.save(buffer, "WEBP", lossless=True, exif=exif.tobytes(), xmp=XMP)
    else:
        image.save(buffer, "JPEG", quality=90, exif=exif.tobytes(), xmp=XMP)
    return buffer.getvalue()


@pytest.mark.parametrize("exif_gps", [False, True], ids=["xmp-only", "xmp-and-exif"])
@pytest.mark.parametrize("kind", ["JPEG", "PNG", "WEBP"])
def test_the_copy_has_no_location_in_xmp_or_exif_and_the_same_pixels(
    client: TestClient, kind: str, exif_gps: bool
) -> None:
    # given a photo whose location is in its XMP (and in its EXIF, or not)
    claim_id, headers = open_claim(client)
    photo = _with_xmp(kind, exif_gps)
    assert b"GPSLatitude" in photo
    photo_id = upload(client, claim_id, headers, photo).json()["photos"][0]["id"]
    # when the policyholder downloads it
    served = client.get(f"/v1/claims/{claim_id}/photos/{photo_id}", headers=headers).content
    # then neither block carries a location, and the pixels are the uploaded ones
    copy = Image.open(io.BytesIO(served))
    assert b"GPSLatitude" not in served and b"xmpmeta" not in served
    assert 0x8825 not in copy.getexif()
    assert copy.tobytes() == Image.open(io.BytesIO(photo)).tobytes()
    assert copy.getexif().get(0x010F) == "PhoneMaker"  # the rest of the EXIF is kept
