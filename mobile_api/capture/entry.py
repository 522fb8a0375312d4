"""The two ways in: the start page (self-service claim) and a one-time link from staff."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import RedirectResponse, Response
from pydantic import ValidationError

from cdat.claims import BodyType
from mobile_api.api import schemas
from mobile_api.api.serialize import claim_created, new_claim
from mobile_api.capture import access
from mobile_api.capture.pages import RuntimeDep, new_start_csrf, page, start_csrf
from mobile_api.capture.strings import t
from mobile_api.claims import service
from mobile_api.errors import RateLimited
from mobile_api.runtime import Runtime
from mobile_api.web.session import check_csrf

router = APIRouter()
FIELDS = (
    "policy_number",
    "loss_date",
    "description",
    "make",
    "model",
    "year",
    "body_type",
    "name",
    "phone",
    "email",
)
CLAIM_PAGE = "/capture/claim"
NO_REFERRER = {"Referrer-Policy": "no-referrer"}


async def _signed_in_claim(request: Request, rt: Any) -> str | None:
    try:
        who = await run_in_threadpool(
            access.claimant, rt, request.cookies.get(access.SESSION_COOKIE)
        )
    except access.NotSignedIn:
        return None
    return who.claim_id


def _start_form(
    request: Request, values: dict[str, str], errors: dict[str, str], status: int = 200
) -> Response:
    token = new_start_csrf()
    context = {
        "values": values,
        "errors": errors,
        "body_types": [b.value for b in BodyType],
        "csrf": token,
        "signed_out": request.query_params.get("signed_out") == "1",
    }
    response = page(request, "start.html", context, status)
    start_csrf(response, token)
    return response


@router.get("/")
async def start_page(request: Request, rt: RuntimeDep) -> Response:
    if await _signed_in_claim(request, rt):
        return RedirectResponse(CLAIM_PAGE, status_code=303)
    return _start_form(request, {}, {})


@router.post("/start")
async def start(request: Request, rt: RuntimeDep) -> Response:
    form = await request.form()
    check_csrf(request.cookies.get(access.START_CSRF_COOKIE, ""), form.get("csrf_token"))
    values = {name: str(form.get(name, "")).strip() for name in FIELDS}
    try:
        body = _claim_body(values)
    except ValidationError as exc:
        return _start_form(request, values, _field_errors(exc), status=422)
    if not (values["phone"] or values["email"]):  # the form says how we reach them: one is needed
        return _start_form(request, values, {"phone": t("contact_needed")}, status=422)
    address = request.client.host if request.client else "unknown"
    limits = request.app.state.parent.state.limits
    try:  # the API's own limit on claims per address
        limits.claims.hit(address, "claims opened from this address")
    except RateLimited as exc:
        return _start_form(request, values, {"form": exc.message}, status=429)
    _, created = await run_in_threadpool(
        service.create_claim, rt, new_claim(body), None, claim_created
    )
    token = await run_in_threadpool(access.open_session, rt, created["id"])
    return _signed_in(rt, token)


def _claim_body(values: dict[str, str]) -> schemas.ClaimCreate:
    contact: dict[str, str] = {"name": values["name"]}
    for name in ("phone", "email"):
        if values[name]:
            contact[name] = values[name]
    return schemas.ClaimCreate.model_validate(
        {
            "policy_number": values["policy_number"],
            "loss_date": values["loss_date"],
            "description": values["description"],
            "vehicle": {
                "make": values["make"],
                "model": values["model"],
                "year": values["year"],
                "body_type": values["body_type"],
            },
            "contact": contact,
        }
    )


def _field_errors(exc: ValidationError) -> dict[str, str]:
    """Form field -> its first error, in words (the form's names are the schema's leaves)."""
    errors: dict[str, str] = {}
    for error in exc.errors():
        where = [str(part) for part in error["loc"]]
        field = where[-1] if where else "form"
        if field not in FIELDS:
            field = "form"
        errors.setdefault(field, str(error["msg"]).removeprefix("Value error, "))
    return errors


@router.get("/link")
async def link_page(request: Request) -> Response:
    """The link a claimant was sent: `/capture/link#<secret>`. The secret is in the
    fragment, which browsers never send, so it reaches no server log, proxy or Referer;
    the page's script moves it into the form and takes it out of the address bar and
    history. Opening the page changes nothing (a messaging app's link preview must not
    use the link up): the button redeems it."""
    token = new_start_csrf()
    response = page(request, "link.html", {"csrf": token})
    response.headers.update(NO_REFERRER)
    start_csrf(response, token)
    return response


@router.post("/link")
async def redeem(request: Request, rt: RuntimeDep) -> Response:
    form = await request.form()
    check_csrf(request.cookies.get(access.START_CSRF_COOKIE, ""), form.get("csrf_token"))
    secret = str(form.get("secret", ""))
    signed_in = await _signed_in_claim(request, rt)
    if signed_in is not None and signed_in == await run_in_threadpool(
        access.link_owner, rt, secret
    ):  # the device that redeemed the link opens its claim again
        return RedirectResponse(CLAIM_PAGE, status_code=303, headers=NO_REFERRER)
    try:
        _, token = await run_in_threadpool(access.redeem_link, rt, secret)
    except access.LinkRefused:
        return _refused(request)
    return _signed_in(rt, token, NO_REFERRER)


def _refused(request: Request) -> Response:
    context = {"status": 403, "message": t("link_refused"), "hint": t("link_refused_hint")}
    response = page(request, "error.html", context, 403)
    response.headers.update(NO_REFERRER)
    return response


def _signed_in(rt: Runtime, token: str, headers: dict[str, str] | None = None) -> Response:
    """To the claim page with the new session's cookie; the start form's CSRF cookie is
    spent."""
    response = RedirectResponse(CLAIM_PAGE, status_code=303, headers=headers)
    response.set_cookie(
        access.SESSION_COOKIE,
        token,
        max_age=access.session_seconds(rt),
        **access.cookie_args(),  # type: ignore[arg-type]
    )
    response.delete_cookie(access.START_CSRF_COOKIE, path=access.COOKIE_PATH)
    return response
