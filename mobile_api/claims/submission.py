"""What a policyholder does to a claim before a decision: add, remove and replace photos,
and submit it for assessment.

Every operation locks the claim first (`claim_store.lock_claim`), so the per-claim photo
limit and "one job per submit" hold under concurrent requests on SQLite and PostgreSQL.
Results are stored rows and plain values; the HTTP edge turns them into responses. A
submit's answer, which an Idempotency-Key replays, is written by the caller's `answer`
inside the submit's transaction, so the stored answer and the job commit together.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from cdat.claims import DECIDED, ClaimStatus, can_submit
from mobile_api.auth import new_id
from mobile_api.claims import idempotency
from mobile_api.claims.images import CheckedPhoto
from mobile_api.errors import Conflict, NotFound, PayloadTooLarge, TooManyPhotos
from mobile_api.queues import jobs
from mobile_api.runtime import Runtime
from mobile_api.storage import models
from mobile_api.storage.claim_store import latest_job_id, lock_claim
from mobile_api.storage.db import transaction


@dataclass(frozen=True)
class PhotosAdded:
    photos: list[models.Photo]
    """The photos this request stored, in the order sent."""
    duplicates: list[str]
    """Ids of photos the claim already had with the same bytes: stored once."""


@dataclass(frozen=True)
class Submitted:
    claim_id: str
    job: models.Job
    status: ClaimStatus


SubmitAnswer = Callable[[Submitted], idempotency.Outcome]


def _open_for_photos(claim: models.Claim) -> None:
    if ClaimStatus(claim.status) in DECIDED:
        raise Conflict(f"claim is {claim.status}: its photos can no longer change")


def add_photos(rt: Runtime, claim_id: str, checked: list[CheckedPhoto]) -> PhotosAdded:
    with transaction(rt.sessions) as session:
        claim = lock_claim(session, claim_id)
        _open_for_photos(claim)
        existing = {photo.sha256: photo for photo in claim.photos}
        fresh = {p.sha256: p for p in checked if p.sha256 not in existing}
        _check_room(rt, len(existing), len(fresh))
        _check_pixels(rt, claim.photos, list(fresh.values()))
        for photo in fresh.values():
            _put_blobs(rt, photo)
        added = [_stored(session, claim, photo) for photo in fresh.values()]
        session.flush()
        if added:
            claim.touch()
        duplicates = [existing[p.sha256].id for p in checked if p.sha256 in existing]
        return PhotosAdded(added, duplicates)


def _put_blobs(rt: Runtime, photo: CheckedPhoto) -> None:
    # After the checks, so a refused upload stores nothing, and before the rows commit: a
    # blob without a row is harmless garbage, a row without its blob is data loss.
    rt.blobs.put(photo.sha256, photo.data, photo.content_type)
    if photo.public_data is not None:
        rt.blobs.put(photo.public_sha256, photo.public_data, photo.content_type)


def _check_room(rt: Runtime, present: int, adding: int) -> None:
    limit = rt.settings.max_photos_per_claim
    if present + adding > limit:
        raise TooManyPhotos(
            f"a claim holds at most {limit} photos; it has {present} and this request "
            f"adds {adding}",
            field="files",
        )


def _check_pixels(
    rt: Runtime, present: Sequence[models.Photo], adding: Sequence[CheckedPhoto]
) -> None:
    limit = rt.settings.max_claim_pixels
    total = sum(p.width * p.height for p in present) + sum(p.width * p.height for p in adding)
    if total > limit:
        raise PayloadTooLarge(
            f"a claim's photos hold at most {limit / 1e6:g} megapixels together; with these "
            f"they would hold {total / 1e6:g}: send smaller photos or remove some",
            field="files",
        )


def _stored(session: Session, claim: models.Claim, photo: CheckedPhoto) -> models.Photo:
    """A row for the photo: a new one, or the one removed earlier with the same bytes."""
    removed = session.scalar(
        select(models.Photo).where(
            models.Photo.claim_id == claim.id, models.Photo.sha256 == photo.sha256
        )
    )
    if removed is not None:
        removed.removed_at, removed.filename = None, photo.filename
        return removed
    row = models.Photo(
        id=new_id(),
        claim_id=claim.id,
        sha256=photo.sha256,
        content_type=photo.content_type,
        size_bytes=len(photo.data),
        width=photo.width,
        height=photo.height,
        exif=photo.exif,
        filename=photo.filename,
        public_sha256=photo.public_sha256,
    )
    session.add(row)
    return row


def _present_photo(claim: models.Claim, photo_id: str) -> models.Photo:
    for photo in claim.photos:
        if photo.id == photo_id:
            return photo
    raise NotFound(f"no photo {photo_id} on this claim")


def remove_photo(rt: Runtime, claim_id: str, photo_id: str) -> None:
    """Take a photo off the claim; the next submit assesses the claim without it."""
    with transaction(rt.sessions) as session:
        claim = lock_claim(session, claim_id)
        _open_for_photos(claim)
        _present_photo(claim, photo_id).removed_at = models.utcnow()
        claim.touch()


def replace_photo(rt: Runtime, claim_id: str, photo_id: str, checked: CheckedPhoto) -> models.Photo:
    """A retake in place of a photo: one step, so the claim never holds both or neither.
    Returns the new photo."""
    with transaction(rt.sessions) as session:
        claim = lock_claim(session, claim_id)
        _open_for_photos(claim)
        old = _present_photo(claim, photo_id)
        if old.sha256 == checked.sha256:
            raise Conflict("the new photo is the same file as the one it replaces", field="file")
        if any(p.sha256 == checked.sha256 for p in claim.photos):
            raise Conflict("the new photo is already on this claim", field="file")
        _check_pixels(rt, [p for p in claim.photos if p.id != old.id], [checked])
        _put_blobs(rt, checked)
        old.removed_at = models.utcnow()
        new = _stored(session, claim, checked)
        session.flush()
        claim.touch()
        return new


def submit(
    rt: Runtime, claim_id: str, key: str | None, answer: SubmitAnswer
) -> tuple[idempotency.Outcome, str | None]:
    """Queue an assessment. Returns `answer`'s response (or the first one's, on a replay)
    and the job id to send (None on a replay)."""
    created: list[str] = []

    def action(session: Session) -> idempotency.Outcome:
        claim = lock_claim(session, claim_id)
        if not claim.photos:
            raise Conflict("upload at least one photo before submitting", field="photos")
        if not can_submit(ClaimStatus(claim.status)):
            raise Conflict(f"a claim that is {claim.status} cannot be submitted now")
        _check_photos_changed(session, claim)
        job = jobs.create_job(session, claim)
        session.flush()
        created.append(job.id)
        return answer(Submitted(claim.id, job, ClaimStatus(claim.status)))

    outcome = idempotency.run_once(rt, submit_request(claim_id, key), action)
    return outcome, (created[0] if created else None)


def submit_request(claim_id: str, key: str | None) -> idempotency.Request | None:
    return idempotency.request_for(f"claims.submit:{claim_id}", claim_id, key, None)


def _check_photos_changed(session: Session, claim: models.Claim) -> None:
    """A re-submit must bring something new: the same photos give the same assessment."""
    last = latest_job_id(session, claim.id)
    if last is None:
        return
    job = session.get_one(models.Job, last)
    if job.state == jobs.FAILED:
        return
    if sorted(job.photo_ids) == sorted(p.id for p in claim.photos):
        raise Conflict(
            "no photo was added, removed or replaced since the last submit", field="photos"
        )
