"""Policyholder API: claims, photos, submission, status and assessments."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, File, Form, Header, Path, Query, Request, UploadFile
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, Response, StreamingResponse

from mobile_api.api import claim_views, schemas
from mobile_api.api.long_poll import wait_until
from mobile_api.api.photo_checks import PhotoChecks
from mobile_api.api.routes.deps import PrincipalDep, RuntimeDep, single_valued_query
from mobile_api.api.serialize import (
    claim_created,
    new_claim,
    photo_check_public,
    photo_public,
    photos_uploaded,
    submit_accepted,
)
from mobile_api.capture import checks as quick_checks
from mobile_api.capture.shots import SHOTS
from mobile_api.claims import idempotency, service, submission
from mobile_api.claims.images import CheckedPhoto, check_photo
from mobile_api.claims.public_photos import public_photo
from mobile_api.errors import NotFound, PayloadTooLarge, ServiceUnavailable, ValidationFailed
from mobile_api.queues import jobs
from mobile_api.runtime import Runtime

router = APIRouter(
    prefix="/v1/claims", tags=["policyholder"], dependencies=[Depends(single_valued_query)]
)
IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        description="Retry-safe key (16-255 visible ASCII characters; a random UUID): a retry "
        "with the same key and request replays the first answer, to the same caller only.",
    ),
]
ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": schemas.ErrorBody}
    for code in (400, 401, 403, 404, 409, 413, 415, 422, 429, 503)
}


@router.post("", status_code=201, response_model=schemas.ClaimCreated, responses=ERRORS)
async def create_claim(
    body: schemas.ClaimCreate,
    rt: RuntimeDep,
    request: Request,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    address = request.client.host if request.client else "unknown"
    request.app.state.limits.claims.hit(address, "claims opened from this address")
    status, payload = await run_in_threadpool(
        service.create_claim, rt, new_claim(body), idempotency_key, claim_created
    )
    return JSONResponse(payload, status_code=status)


@router.get("/{claim_id}", response_model=schemas.PolicyholderClaim, responses=ERRORS)
async def get_claim(
    claim_id: str,
    rt: RuntimeDep,
    principal: PrincipalDep,
    wait: Annotated[float, Query(ge=0, le=60, description="Long-poll: seconds to wait")] = 0,
    since_revision: Annotated[int | None, Query(ge=0)] = None,
) -> schemas.PolicyholderClaim:
    """The claim as its policyholder sees it (staff: `/v1/adjuster/claims/{id}`). With
    `wait` and `since_revision`, the call returns as soon as the claim's revision moves
    past `since_revision`, or after `wait` s."""
    service.authorize_claim(principal, claim_id)
    if wait and since_revision is not None:
        since = since_revision
        await wait_until(
            lambda: claim_views.claim_revision(rt, claim_id) > since,
            min(wait, rt.settings.long_poll_max_seconds),
        )
    return await run_in_threadpool(claim_views.policyholder_claim, rt, claim_id)


@router.post(
    "/{claim_id}/photos", status_code=201, response_model=schemas.PhotosUploaded, responses=ERRORS
)
async def upload_photos(
    claim_id: str,
    rt: RuntimeDep,
    principal: PrincipalDep,
    files: Annotated[list[UploadFile], File(description="One or more JPEG, PNG or WebP photos")],
    request: Request,
    shot: Annotated[str | None, Form(description=SHOT_HELP)] = None,
) -> schemas.PhotosUploaded:
    """Store the photos; each new one gets a quick check (`GET .../photos/{id}/check`)."""
    service.authorize_claim(principal, claim_id)
    if shot is not None and shot not in SHOTS:
        raise ValidationFailed(f"unknown shot {shot!r} (known: {sorted(SHOTS)})", field="shot")
    if shot is not None and len(files) != 1:
        raise ValidationFailed("a shot names one photo: send one file with it", field="shot")
    await run_in_threadpool(claim_views.claim_revision, rt, claim_id)  # 404 before the bodies
    request.app.state.limits.uploads.hit(claim_id, "photo uploads for this claim")
    limit = rt.settings.max_photos_per_request
    if len(files) > limit:
        raise ValidationFailed(f"at most {limit} photos per request", field="files")
    checked = [await checked_upload(rt, request, upload) for upload in files]
    added = await run_in_threadpool(submission.add_photos, rt, claim_id, checked)
    for photo in added.photos:
        await run_in_threadpool(_check_later, rt, claim_id, photo.id, shot or "extra")
    uploaded = photos_uploaded(added)
    if principal.is_staff:
        return uploaded
    return uploaded.model_copy(update={"photos": [_without_location(p) for p in uploaded.photos]})


SHOT_HELP = (
    "The guided shot this photo is (front_left, front_right, rear_left, rear_right, damage_1, "
    "damage_2, extra; one file only): its quick check also says whether it is framed as the "
    "shot asks"
)


def _check_later(rt: Runtime, claim_id: str, photo_id: str, shot: str) -> None:
    """The photo's quick check, recorded and queued; the photo is stored whatever happens."""
    check, queue = quick_checks.record_upload(rt, claim_id, photo_id, shot, None)
    if queue:
        quick_checks.queue_check(rt, check)


def _without_location(photo: schemas.PhotoPublic) -> schemas.PhotoPublic:
    return photo.model_copy(update={"exif": claim_views.without_location(photo.exif)})


@router.delete("/{claim_id}/photos/{photo_id}", status_code=204, responses=ERRORS)
async def remove_photo(
    claim_id: str, photo_id: str, rt: RuntimeDep, principal: PrincipalDep
) -> Response:
    """Take a photo off the claim until it is decided; submit again to assess without it."""
    service.authorize_claim(principal, claim_id)
    await run_in_threadpool(submission.remove_photo, rt, claim_id, photo_id)
    return Response(status_code=204)


@router.put("/{claim_id}/photos/{photo_id}", response_model=schemas.PhotoReplaced, responses=ERRORS)
async def replace_photo(
    claim_id: str,
    photo_id: str,
    rt: RuntimeDep,
    principal: PrincipalDep,
    file: Annotated[UploadFile, File(description="The retake: a JPEG, PNG or WebP photo")],
    request: Request,
) -> schemas.PhotoReplaced:
    """Put a retake in place of a photo until the claim is decided; submit again after."""
    service.authorize_claim(principal, claim_id)
    await run_in_threadpool(claim_views.claim_revision, rt, claim_id)  # 404 before the body
    request.app.state.limits.uploads.hit(claim_id, "photo uploads for this claim")
    checked = await checked_upload(rt, request, file)
    shot = await run_in_threadpool(_shot_of, rt, claim_id, photo_id)
    new = await run_in_threadpool(submission.replace_photo, rt, claim_id, photo_id, checked)
    await run_in_threadpool(_check_later, rt, claim_id, new.id, shot)
    replaced = schemas.PhotoReplaced(replaced=photo_id, photo=photo_public(new))
    if principal.is_staff:
        return replaced
    return replaced.model_copy(update={"photo": _without_location(replaced.photo)})


def _shot_of(rt: Runtime, claim_id: str, photo_id: str) -> str:
    """The shot a photo was taken as; a retake stands for the same shot."""
    found = quick_checks.claim_checks(rt, claim_id).get(photo_id)
    return found.shot if found is not None else "extra"


@router.get(
    "/{claim_id}/photos/{photo_id}/check",
    response_model=schemas.PhotoCheckPublic,
    responses=ERRORS,
)
async def get_photo_check(
    claim_id: str,
    photo_id: str,
    rt: RuntimeDep,
    principal: PrincipalDep,
    wait: Annotated[float, Query(ge=0, le=30, description="Seconds to wait for it")] = 0,
) -> schemas.PhotoCheckPublic:
    """A photo's quick check: whether it is sharp, lit, shows a car, is framed as its shot
    asks, repeats another photo or predates the loss. With `wait`, answers as soon as the
    check is done. A retake (`PUT`) has its own check under its new id."""
    service.authorize_claim(principal, claim_id)

    def current() -> quick_checks.PhotoCheck:
        found = quick_checks.claim_checks(rt, claim_id).get(photo_id)
        if found is None:
            raise NotFound(f"no quick check for photo {photo_id} on this claim")
        return found

    await run_in_threadpool(current)  # 404 before any wait
    await wait_until(
        lambda: current().state != quick_checks.PENDING,
        min(wait, rt.settings.long_poll_max_seconds),
    )
    return photo_check_public(await run_in_threadpool(current))


async def checked_upload(rt: Runtime, request: Request, upload: UploadFile) -> CheckedPhoto:
    """One uploaded photo read within the size limit and checked in the photo-check pool:
    the API's uploads and the capture page's go through here alike."""
    settings = rt.settings
    name = upload.filename or "photo"
    data = await upload.read(settings.max_upload_bytes + 1)
    if len(data) > settings.max_upload_bytes:
        raise PayloadTooLarge(
            f"{name}: over the {settings.max_upload_bytes}-byte limit per photo", field="files"
        )
    if not data:
        raise ValidationFailed(f"{name}: the file is empty", field="files")
    checks: PhotoChecks = request.app.state.photo_checks
    return await checks.run(
        check_photo,
        data,
        name,
        max_bytes=settings.max_upload_bytes,
        max_pixels=settings.max_image_pixels,
        min_side=settings.min_image_side,
    )


PHOTO_BYTES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "The photo as uploaded (GPS removed for policyholders)",
        "content": {
            kind: {"schema": {"type": "string", "format": "binary"}}
            for kind in ("image/jpeg", "image/png", "image/webp")
        },
    }
}


@router.get(
    "/{claim_id}/photos/{photo_id}",
    response_class=Response,
    responses={**ERRORS, **PHOTO_BYTES},
)
async def get_photo(
    claim_id: str, photo_id: str, rt: RuntimeDep, principal: PrincipalDep
) -> Response:
    service.authorize_claim(principal, claim_id)
    # nosniff: a polyglot upload (a valid PNG with HTML after it) must never render as a page.
    headers = {"Cache-Control": "private", "X-Content-Type-Options": "nosniff"}
    if principal.is_staff:
        data, content_type = await run_in_threadpool(service.photo_blob, rt, claim_id, photo_id)
        return Response(data, media_type=content_type, headers=headers)
    blob, content_type = await run_in_threadpool(public_photo, rt, claim_id, photo_id)
    headers["Content-Length"] = str(blob.size)
    return StreamingResponse(blob.chunks, media_type=content_type, headers=headers)


@router.post(
    "/{claim_id}/submit", status_code=202, response_model=schemas.SubmitAccepted, responses=ERRORS
)
async def submit_claim(
    claim_id: str, rt: RuntimeDep, principal: PrincipalDep, idempotency_key: IdempotencyKey = None
) -> JSONResponse:
    """Queue an assessment of every photo on the claim; each submit makes a new version."""
    service.authorize_claim(principal, claim_id)
    (status, payload), job_id = await run_in_threadpool(
        submission.submit, rt, claim_id, idempotency_key, submit_accepted
    )
    if job_id is not None:
        await run_in_threadpool(
            enqueue_assessment, rt, job_id, submission.submit_request(claim_id, idempotency_key)
        )
    return JSONResponse(payload, status_code=status)


def enqueue_assessment(rt: Runtime, job_id: str, retry: idempotency.Request | None) -> None:
    """Queue the job; a broker that is down withdraws it and forgets the idempotent retry, so
    the caller's 503 leaves nothing half done (the API's submit and the capture page's)."""
    from mobile_api.worker.tasks import assess_claim

    try:
        assess_claim.apply_async(args=[job_id])
    except Exception as exc:
        idempotency.forget(rt, retry)
        jobs.withdraw(rt, job_id, "")
        raise ServiceUnavailable(
            f"the job queue is unavailable ({type(exc).__name__}); "
            "nothing was queued, retry shortly"
        ) from exc


# Bounded: an integer past the database's range is a 422, not a driver overflow (500).
Version = Annotated[int, Path(ge=1, le=2**31 - 1)]


@router.get(
    "/{claim_id}/assessments/{version}",
    response_model=schemas.PolicyholderAssessment,
    responses=ERRORS,
)
async def get_assessment(
    claim_id: str, version: Version, rt: RuntimeDep, principal: PrincipalDep
) -> schemas.PolicyholderAssessment:
    """One assessment version as the policyholder sees it (staff: the adjuster API)."""
    service.authorize_claim(principal, claim_id)
    return await run_in_threadpool(claim_views.policyholder_assessment, rt, claim_id, version)
