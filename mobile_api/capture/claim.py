"""The claim's page: the shot list, uploads with a quick check each, submit, live status.

Every write goes through the policyholder API's services (`claims.submission`), every read
through its policyholder view (`api.claim_views`), so the page can do and show exactly
what the policyholder API can, no more.
"""

from __future__ import annotations

import dataclasses
import secrets
from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Header, Query, Request, UploadFile
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, RedirectResponse, Response, StreamingResponse

from cdat.claims import ClaimStatus
from mobile_api.api import claim_views, schemas
from mobile_api.api.long_poll import wait_until
from mobile_api.api.routes.claims import checked_upload, enqueue_assessment
from mobile_api.api.serialize import submit_accepted
from mobile_api.capture import access, checks, shots
from mobile_api.capture.pages import (
    ClaimantDep,
    FormClaimantDep,
    RuntimeDep,
    csrf_for,
    page,
    templates,
    wants_json,
)
from mobile_api.capture.strings import t
from mobile_api.claims import idempotency, submission
from mobile_api.claims.public_photos import public_photo
from mobile_api.errors import NotFound, ValidationFailed
from mobile_api.runtime import Runtime

router = APIRouter(prefix="/claim")
CAPTURING = frozenset({ClaimStatus.RECEIVED, ClaimStatus.MORE_PHOTOS_REQUESTED, ClaimStatus.FAILED})
HERE = "/capture/claim"


def _mode(view: schemas.PolicyholderClaim) -> str:
    """Photos are taken while the claim is open to them, and while it waits on an adjuster
    after no damage was found on photos of the whole car alone: the close-ups it lacks are
    asked for there and then, not after an adjuster's round trip."""
    if view.status in CAPTURING:
        return "capture"
    wanted = view.assessment is not None and view.assessment.close_up_wanted
    return "capture" if view.status is ClaimStatus.NEEDS_REVIEW and wanted else "status"


def _context(rt: Runtime, claim_id: str) -> dict[str, Any]:
    view = claim_views.policyholder_claim(rt, claim_id)
    asked = None
    if view.status is ClaimStatus.MORE_PHOTOS_REQUESTED and view.retake_request is not None:
        asked = frozenset(view.retake_request.model_dump().get("photo_ids", ()))
    found = shots.slots(view.photos, checks.claim_checks(rt, claim_id), asked)
    names = checks.shot_names()
    mode = _mode(view)
    return {
        "claim": view,
        "mode": mode,
        "heading": t("claim_title") if mode == "capture" else t("status_title"),
        "slots": found,
        "missing": shots.missing(found),
        "names": names,
        "submitted_before": bool(view.assessment_versions) or view.progress.job is not None,
    }


@router.get("")
async def claim_page(request: Request, rt: RuntimeDep, who: ClaimantDep) -> Response:
    context = await run_in_threadpool(_context, rt, who.claim_id)
    context["csrf"] = csrf_for(rt, who)
    context["submit_key"] = secrets.token_hex(16)  # a double-tapped submit replays
    return page(request, "claim.html", context)


@router.get("/status")
async def status_fragment(
    request: Request,
    rt: RuntimeDep,
    who: ClaimantDep,
    since_revision: Annotated[int | None, Query(ge=0, le=2**31 - 1)] = None,
    wait: Annotated[float, Query(ge=0, le=60)] = 0,
) -> Response:
    """The status part of the page, as soon as the claim moves past `since_revision`
    (a long-poll, as `GET /v1/claims/{id}?since_revision=`), or after `wait` seconds."""
    if since_revision is not None and wait:
        limit = min(wait, rt.settings.long_poll_max_seconds)
        since = since_revision
        await wait_until(lambda: claim_views.claim_revision(rt, who.claim_id) > since, limit)
    context = await run_in_threadpool(_context, rt, who.claim_id)
    return templates.TemplateResponse(request, "status.html", context)


@router.post("/photos")
async def upload(
    request: Request,
    rt: RuntimeDep,
    who: FormClaimantDep,
    file: Annotated[UploadFile, File()],
    shot: Annotated[str, Form()],
    replaces: Annotated[str, Form()] = "",
    key: Annotated[str | None, Header(alias="Idempotency-Key")] = None,
) -> Response:
    """One photo for one shot (a retake when `replaces` names the photo it replaces).
    With an Idempotency-Key, a retry after a dropped connection answers as the first
    upload did; without one, the same bytes still never make a second photo."""
    if shot not in shots.SHOTS:
        raise ValidationFailed(f"unknown shot {shot!r}", field="shot")
    claim_id = who.claim_id
    key_hash, parsed = None, idempotency.parse_key(key)
    if parsed is not None:
        key_hash = checks.upload_key(rt.settings.secret_key, claim_id, parsed)
        replay = await run_in_threadpool(checks.by_upload_key, rt, claim_id, key_hash)
        if replay is not None:
            return _answer(request, replay, 200)
    await run_in_threadpool(claim_views.claim_revision, rt, claim_id)
    request.app.state.limits.uploads.hit(claim_id, "photo uploads for this claim")
    photo = await checked_upload(rt, request, file)
    # Named after its shot, so an adjuster reading the claim sees which view it is.
    photo = dataclasses.replace(photo, filename=f"{shot}{_suffix(photo.content_type)}")
    if replaces:
        done = await run_in_threadpool(submission.replace_photo, rt, claim_id, replaces, photo)
        photo_id = done.id
    else:
        added = await run_in_threadpool(submission.add_photos, rt, claim_id, [photo])
        photo_id = added.photos[0].id if added.photos else added.duplicates[0]
    check, queue = await run_in_threadpool(
        checks.record_upload, rt, claim_id, photo_id, shot, key_hash
    )
    if check.shot != shot:  # the very same file is already another shot's photo
        same = checks.PhotoCheck(photo_id, shot, checks.DONE, [_same_as(check.shot)])
        return _answer(request, same, 409)
    if queue:
        check = await run_in_threadpool(checks.queue_check, rt, check)
    return _answer(request, check, 201)


def _same_as(shot: str) -> dict[str, str]:
    return {"code": "duplicate_photo", "other_shot": shot}


def _suffix(content_type: str) -> str:
    return {"image/png": ".png", "image/webp": ".webp"}.get(content_type, ".jpg")


def _answer(request: Request, check: checks.PhotoCheck, status: int) -> Response:
    if not wants_json(request):  # a plain form post, without the page's script
        return RedirectResponse(HERE, status_code=303)
    return JSONResponse(check.as_json(checks.shot_names()), status_code=status)


@router.get("/photos/{photo_id}/check")
async def photo_check(
    photo_id: str,
    rt: RuntimeDep,
    who: ClaimantDep,
    wait: Annotated[float, Query(ge=0, le=30)] = 0,
) -> JSONResponse:
    """The photo's quick check; with `wait`, returns as soon as it is done."""

    def current() -> checks.PhotoCheck:
        found = checks.claim_checks(rt, who.claim_id).get(photo_id)
        if found is None:
            raise NotFound(f"no photo {photo_id} on this claim")
        return found

    limit = min(wait, rt.settings.long_poll_max_seconds)
    await wait_until(lambda: current().state != checks.PENDING, limit)
    result = await run_in_threadpool(current)
    return JSONResponse(result.as_json(checks.shot_names()))


@router.get("/photos/{photo_id}")
async def photo(photo_id: str, rt: RuntimeDep, who: ClaimantDep) -> Response:
    """The photo as the policyholder API gives it: without its GPS position."""
    blob, content_type = await run_in_threadpool(public_photo, rt, who.claim_id, photo_id)
    headers = {"Cache-Control": "private", "Content-Length": str(blob.size)}
    return StreamingResponse(blob.chunks, media_type=content_type, headers=headers)


@router.post("/photos/{photo_id}/remove")
async def remove(photo_id: str, rt: RuntimeDep, who: FormClaimantDep) -> Response:
    await run_in_threadpool(submission.remove_photo, rt, who.claim_id, photo_id)
    return RedirectResponse(HERE, status_code=303)


@router.post("/submit")
async def submit(
    rt: RuntimeDep, who: FormClaimantDep, submit_key: Annotated[str, Form()] = ""
) -> Response:
    key = submit_key or None
    _, job_id = await run_in_threadpool(submission.submit, rt, who.claim_id, key, submit_accepted)
    if job_id is not None:
        retry = submission.submit_request(who.claim_id, key)
        await run_in_threadpool(enqueue_assessment, rt, job_id, retry)  # 503 page when it is down
    return RedirectResponse(HERE, status_code=303)


@router.post("/sign-out")
async def sign_out(rt: RuntimeDep, who: FormClaimantDep) -> Response:
    """End the session here and on the server, for a shared or borrowed phone. The page's
    kept copies go too (`Clear-Site-Data`), so the claim cannot be read offline after it."""
    await run_in_threadpool(access.close_session, rt, who.session_id)
    headers = {"Clear-Site-Data": '"cache", "storage"'}
    response = RedirectResponse("/capture/?signed_out=1", status_code=303, headers=headers)
    response.delete_cookie(access.SESSION_COOKIE, **access.cookie_args())  # type: ignore[arg-type]
    return response
