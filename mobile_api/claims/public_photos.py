"""The photo a policyholder downloads: the GPS-free copy made at upload, streamed as stored.

Re-encoding on each download cost a second of CPU and hundreds of MB per request for a large
photo, unbounded under concurrent downloads. Photos stored before copies existed get theirs
made once, on first download, one at a time per process.
"""

from __future__ import annotations

import hashlib
import threading

from sqlalchemy import update

from mobile_api.claims.privacy import strip_location
from mobile_api.errors import NotFound
from mobile_api.runtime import Runtime
from mobile_api.storage import models
from mobile_api.storage.blobs import Blob
from mobile_api.storage.db import transaction

_one_copy_at_a_time = threading.Lock()


def public_photo(rt: Runtime, claim_id: str, photo_id: str) -> tuple[Blob, str]:
    """The copy a policyholder may see, opened to be streamed, and its content type."""
    with rt.sessions() as session:
        photo = session.get(models.Photo, photo_id)
        if photo is None or photo.claim_id != claim_id:
            raise NotFound(f"no photo {photo_id} on this claim")
        sha, public, content_type = photo.sha256, photo.public_sha256, photo.content_type
    if public is None:
        public = _make_copy(rt, photo_id, sha, content_type)
    return rt.blobs.stream(public), content_type


def _make_copy(rt: Runtime, photo_id: str, sha: str, content_type: str) -> str:
    with _one_copy_at_a_time:
        data = rt.blobs.get(sha)
        stripped = strip_location(data)
        public = sha if stripped is data else hashlib.sha256(stripped).hexdigest()
        if public != sha:
            rt.blobs.put(public, stripped, content_type)
        with transaction(rt.sessions) as session:
            session.execute(
                update(models.Photo)
                .where(models.Photo.id == photo_id, models.Photo.public_sha256.is_(None))
                .values(public_sha256=public)
            )
    return public
