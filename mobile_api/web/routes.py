"""The adjuster workspace's pages and actions: one flat router, mounted by `create_web_app`.

Every route needs a signed-in staff user (`UserDep`), and every POST the session's CSRF
token too (`FormUserDep`). An action answers 303 back to the claim page, or the page with
the error inline (422).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from cdat import corrections
from cdat.assessment import Assessment
from cdat.claims import ClaimStatus
from cdat.corrections import CorrectionRefused, Edit
from mobile_api.capture import access
from mobile_api.claims import review
from mobile_api.errors import Conflict, NotFound, ValidationFailed
from mobile_api.runtime import Runtime
from mobile_api.web import queries
from mobile_api.web.pages import FormUserDep, RuntimeDep, UserDep, page, runtime
from mobile_api.web.session import WebUser

router = APIRouter()
DAMAGE = "/claims/{claim_id}/damages/{photo_id}/{index}"


@dataclass(frozen=True)
class DamageForm:
    """A finding's fields as the form sent them; parsed inside the action, so that an
    unknown value is an inline form error."""

    damage_type: str
    severity: str
    part: str

    def parsed(self) -> corrections.DamageFields:
        return corrections.parse_fields(self.damage_type, self.severity, self.part)


def damage_form(
    damage_type: Annotated[str, Form()] = "",
    severity: Annotated[str, Form()] = "",
    part: Annotated[str, Form()] = "",
) -> DamageForm:
    return DamageForm(damage_type, severity, part)


DamageFormDep = Annotated[DamageForm, Depends(damage_form)]


@router.get("/", response_class=HTMLResponse)
async def queue(
    request: Request,
    rt: RuntimeDep,
    user: UserDep,
    status: str = "",
    reason: str = "",
    min_amount: str = "",
    max_amount: str = "",
    date_from: str = "",
    date_to: str = "",
) -> HTMLResponse:
    raw = {
        "status": status,
        "reason": reason,
        "min_amount": min_amount,
        "max_amount": max_amount,
        "date_from": date_from,
        "date_to": date_to,
    }
    try:
        filters = queries.parse_filters(reason, min_amount, max_amount, date_from, date_to, status)
    except ValidationFailed as exc:
        filters, errors = queries.QueueFilters(), {exc.field or "filters": exc.message}
    else:
        errors = {}
    view = await run_in_threadpool(queries.review_queue, rt, filters)
    context = {"user": user, "view": view, "filters": raw, "errors": errors, "shown": filters}
    return page(request, "queue.html", context, 422 if errors else 200)


@router.get("/claims/{claim_id}", response_class=HTMLResponse)
async def claim_page(
    request: Request, claim_id: str, rt: RuntimeDep, user: UserDep
) -> HTMLResponse:
    return await _claim_page(request, rt, user, claim_id)


@router.get("/claims/{claim_id}/photos/{photo_id}")
async def photo(claim_id: str, photo_id: str, rt: RuntimeDep, _: UserDep) -> Response:
    sha, content_type = await run_in_threadpool(queries.photo_of, rt, claim_id, photo_id)
    data = await run_in_threadpool(rt.blobs.get, sha)
    return Response(data, media_type=content_type, headers=_private())


@router.get("/claims/{claim_id}/photos/{photo_id}/overlay.jpg")
async def overlay(claim_id: str, photo_id: str, rt: RuntimeDep, _: UserDep) -> Response:
    data = await run_in_threadpool(_overlay, rt, claim_id, photo_id)
    return Response(data, media_type="image/jpeg", headers=_private())


@router.post(DAMAGE + "/confirm")
async def confirm(
    request: Request, claim_id: str, photo_id: str, index: int, user: FormUserDep
) -> Response:
    def change(assessment: Assessment) -> Edit:
        return corrections.confirm_damage(assessment, photo_id, index)

    return await _correct(request, user, claim_id, "finding.confirm", change, "d-" + photo_id)


@router.post(DAMAGE + "/edit")
async def edit(
    request: Request,
    claim_id: str,
    photo_id: str,
    index: int,
    user: FormUserDep,
    form: DamageFormDep,
) -> Response:
    def change(assessment: Assessment) -> Edit:
        return corrections.edit_damage(assessment, photo_id, index, form.parsed())

    return await _correct(request, user, claim_id, "finding.edit", change, "d-" + photo_id)


@router.post(DAMAGE + "/delete")
async def delete(
    request: Request,
    claim_id: str,
    photo_id: str,
    index: int,
    user: FormUserDep,
    repeats: Annotated[str, Form()] = "",
) -> Response:
    def change(assessment: Assessment) -> Edit:
        if repeats not in ("", "delete"):
            refused = "repeats takes 'delete' (the damage's repeats go with it) or nothing"
            raise CorrectionRefused(refused, field="repeats")
        with_repeats = repeats == "delete"
        return corrections.delete_damage(assessment, photo_id, index, with_repeats=with_repeats)

    return await _correct(request, user, claim_id, "finding.delete", change, "d-" + photo_id)


@router.post("/claims/{claim_id}/damages/{photo_id}/add")
async def add(
    request: Request,
    claim_id: str,
    photo_id: str,
    user: FormUserDep,
    form: DamageFormDep,
    shape: Annotated[str, Form()] = "",
) -> Response:
    def change(assessment: Assessment) -> Edit:
        return corrections.add_damage(assessment, photo_id, form.parsed(), _json(shape))

    return await _correct(request, user, claim_id, "finding.add", change, "add-" + photo_id)


@router.post("/claims/{claim_id}/operations")
async def operation(
    request: Request,
    claim_id: str,
    user: FormUserDep,
    part: Annotated[str, Form()] = "",
    operation: Annotated[str, Form()] = "",
) -> Response:
    def change(assessment: Assessment) -> Edit:
        return corrections.set_operation(assessment, part, operation)

    return await _correct(request, user, claim_id, "estimate.operation", change, "estimate")


@router.post("/claims/{claim_id}/approve")
async def approve(
    request: Request,
    claim_id: str,
    rt: RuntimeDep,
    user: FormUserDep,
    nothing_to_pay: Annotated[str, Form()] = "",
) -> Response:
    actor = review.Actor(user.id, user.email)

    def approve_it() -> None:
        review.decide(
            rt,
            claim_id,
            actor,
            ClaimStatus.APPROVED,
            nothing_to_pay_confirmed=nothing_to_pay == "yes",
        )

    return await _act(request, user, claim_id, "decision", approve_it)


@router.post("/claims/{claim_id}/reject")
async def reject(
    request: Request,
    claim_id: str,
    rt: RuntimeDep,
    user: FormUserDep,
    reason: Annotated[str, Form()] = "",
) -> Response:
    actor = review.Actor(user.id, user.email)
    return await _act(
        request,
        user,
        claim_id,
        "reject",
        review.decide,
        rt,
        claim_id,
        actor,
        ClaimStatus.REJECTED,
        reason,
    )


@router.post("/claims/{claim_id}/clear-fraud")
async def clear_fraud(
    request: Request,
    claim_id: str,
    rt: RuntimeDep,
    user: FormUserDep,
    note: Annotated[str, Form()] = "",
) -> Response:
    actor = review.Actor(user.id, user.email)
    return await _act(
        request, user, claim_id, "fraud", review.clear_fraud_signals, rt, claim_id, actor, note
    )


@router.post("/claims/{claim_id}/request-photos")
async def request_photos(
    request: Request,
    claim_id: str,
    rt: RuntimeDep,
    user: FormUserDep,
    message: Annotated[str, Form()] = "",
) -> Response:
    form = await request.form()
    photo_ids = [str(v) for v in form.getlist("photo_ids")]
    actor = review.Actor(user.id, user.email)
    return await _act(
        request,
        user,
        claim_id,
        "retake",
        review.request_photos,
        rt,
        claim_id,
        actor,
        message,
        photo_ids,
    )


@router.post("/claims/{claim_id}/capture-link", response_class=HTMLResponse)
async def capture_link(
    request: Request,
    claim_id: str,
    rt: RuntimeDep,
    user: FormUserDep,
    valid_hours: Annotated[str, Form()] = str(access.LINK_HOURS),
) -> HTMLResponse:
    """A one-time link for the claimant (the staff API's service), shown on the page once:
    answered here rather than by a redirect, since only the digest is stored."""
    try:
        hours = int(valid_hours)
        if not 1 <= hours <= access.LINK_MAX_HOURS:
            raise ValueError
    except ValueError:
        message = (
            f"give the hours the link is valid as a whole number from 1 to {access.LINK_MAX_HOURS}"
        )
        return await _claim_page(request, rt, user, claim_id, {"capture-link": message}, 422)
    base = str(request.base_url)
    issued = await run_in_threadpool(access.issue_link, rt, base, claim_id, user.email, hours)
    return await _claim_page(request, rt, user, claim_id, link=issued)


async def _correct(
    request: Request, user: WebUser, claim_id: str, action: str, change: Any, form_id: str
) -> Response:
    rt = runtime(request)
    actor = review.Actor(user.id, user.email)
    args = (rt, claim_id, actor, action, change)
    return await _act(request, user, claim_id, form_id, review.correct, *args)


async def _act(
    request: Request, user: WebUser, claim_id: str, form_id: str, fn: Any, *args: Any
) -> Response:
    """Run an action; back to the claim page (303), or the page with the error inline (422)."""
    try:
        await run_in_threadpool(fn, *args)
    except (ValidationFailed, CorrectionRefused, Conflict) as exc:
        rt = runtime(request)
        status = 409 if isinstance(exc, Conflict) else 422
        return await _claim_page(request, rt, user, claim_id, {form_id: exc.message}, status)
    return RedirectResponse(f"/adjuster/claims/{claim_id}#{form_id}", status_code=303)


async def _claim_page(
    request: Request,
    rt: Runtime,
    user: WebUser,
    claim_id: str,
    errors: dict[str, str] | None = None,
    status: int = 200,
    link: access.IssuedLink | None = None,
) -> HTMLResponse:
    view = await run_in_threadpool(queries.claim_view, rt, claim_id)
    context = {
        "user": user,
        "view": view,
        "claim": view.claim,
        "assessment": view.assessment,
        "errors": errors or {},
        "capture_link": link,
        "link_hours": (access.LINK_HOURS, access.LINK_MAX_HOURS),
        "editable": ClaimStatus(view.claim.status) in review.EDITABLE,
        "decidable": ClaimStatus(view.claim.status) in review.DECIDABLE,
    }
    return page(request, "claim.html", context, status)


def _overlay(rt: Runtime, claim_id: str, photo_id: str) -> bytes:
    from inference.overlay import render_overlay  # the API process can serve without OpenCV

    analysis = queries.claim_view(rt, claim_id).analysis(photo_id)
    if analysis is None:
        raise NotFound(f"the current assessment has no photo {photo_id}")
    sha, _ = queries.photo_of(rt, claim_id, photo_id)
    return render_overlay(rt.blobs.get(sha), analysis, max_side=1280)


def _json(text: str) -> Any:
    try:
        return json.loads(text) if text else None
    except ValueError:
        raise ValidationFailed("draw a box or polygon on the photo", field="shape") from None


def _private() -> dict[str, str]:
    return {"Cache-Control": "private, max-age=300"}
