"""The adjuster workspace: server-rendered pages mounted at /adjuster on the API app.

    app.mount("/adjuster", create_web_app(app))

Only a signed-in staff user (cookie session) reaches any page or action here; bearer
tokens, the policyholder's claim token included, are never looked at. Every POST is a
form with a CSRF token. Errors render as HTML pages; form errors render inline.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import Depends, FastAPI, Form, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from starlette.exceptions import HTTPException as StarletteHTTPException

from cdat import corrections
from cdat.assessment import Assessment, Operation
from cdat.claims import ClaimStatus
from cdat.corrections import CorrectionRefused, Edit
from cdat.errors import CdatError
from cdat.estimate import OVERRIDABLE
from cdat.taxonomy import CarPart, DamageType, Severity
from mobile_api import review
from mobile_api.errors import NotFound, RateLimited, ValidationFailed, status_for
from mobile_api.runtime import Runtime
from mobile_api.web import queries
from mobile_api.web import session as websession
from mobile_api.web.session import (
    COOKIE_PATH,
    LOGIN_CSRF_COOKIE,
    SESSION_COOKIE,
    NotSignedIn,
    WebUser,
)

HERE = Path(__file__).resolve().parent
templates = Jinja2Templates(directory=str(HERE / "templates"))
templates.env.filters["photos_named"] = queries.photos_named
templates.env.globals["label_positions"] = queries.label_positions
DAMAGE_COLOURS = {  # CSS versions of inference.overlay.DAMAGE_COLOURS (same hues)
    "dent": "#e67200",
    "scratch": "#56b4e9",
    "crack": "#009e73",
    "glass_shatter": "#f0e442",
    "lamp_broken": "#0072b2",
    "tire_flat": "#cc79a7",
    "broken_part": "#d55e00",
}


def create_web_app(parent: FastAPI) -> FastAPI:
    web = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)
    web.state.parent = parent
    web.mount("/static", StaticFiles(directory=str(HERE / "static")), name="static")
    _routes(web)
    _error_pages(web)
    return web


def runtime(request: Request) -> Runtime:
    rt: Runtime = request.app.state.parent.state.runtime
    return rt


RuntimeDep = Annotated[Runtime, Depends(runtime)]


async def signed_in(request: Request, rt: RuntimeDep) -> WebUser:
    return await run_in_threadpool(websession.current_user, rt, request.cookies.get(SESSION_COOKIE))


UserDep = Annotated[WebUser, Depends(signed_in)]


async def form_user(request: Request, rt: RuntimeDep, user: UserDep) -> WebUser:
    """The signed-in user of a form POST whose CSRF token matches the session."""
    form = await request.form()
    websession.check_csrf(
        websession.csrf_token(rt.settings.secret_key, user.nonce), form.get("csrf_token")
    )
    return user


FormUserDep = Annotated[WebUser, Depends(form_user)]


def _cookie_args(rt: Runtime) -> dict[str, Any]:
    return {"httponly": True, "secure": True, "samesite": "strict", "path": COOKIE_PATH}


def page(request: Request, name: str, context: dict[str, Any], status: int = 200) -> HTMLResponse:
    rt = runtime(request)
    user = context.get("user")
    csrf = websession.csrf_token(rt.settings.secret_key, user.nonce) if user else ""
    base = {
        "csrf": csrf,
        "colours": DAMAGE_COLOURS,
        "damage_types": [d.value for d in DamageType],
        "severities": [s.value for s in Severity],
        "parts": [p.value for p in CarPart],
        "operations": [o.value for o in OVERRIDABLE],
        "errors": {},
    }
    return templates.TemplateResponse(request, name, {**base, **context}, status_code=status)


def _routes(web: FastAPI) -> None:
    @web.get("/login", response_class=HTMLResponse)
    async def login_page(request: Request, next: str = "/adjuster/") -> HTMLResponse:
        return _login_form(request, next, "", "")

    @web.post("/login", response_class=HTMLResponse)
    async def login(
        request: Request,
        rt: RuntimeDep,
        email: Annotated[str, Form()] = "",
        password: Annotated[str, Form()] = "",
        csrf_token: Annotated[str, Form()] = "",
        next: Annotated[str, Form()] = "/adjuster/",
    ) -> Response:
        websession.check_csrf(request.cookies.get(LOGIN_CSRF_COOKIE, ""), csrf_token)
        client = request.client.host if request.client else "unknown"
        limiter = request.app.state.parent.state.signin_limiter
        try:
            limiter.hit(f"{client}|{email.strip().lower()}", "sign-in attempts")
        except RateLimited as exc:
            return _login_form(request, next, email, exc.message, status=429)
        try:
            token = await run_in_threadpool(websession.sign_in, rt, email, password)
        except websession.SignInFailed as exc:
            return _login_form(request, next, email, exc.message, status=401)
        response = RedirectResponse(_safe_next(next), status_code=303)
        response.set_cookie(
            SESSION_COOKIE, token, max_age=websession.SESSION_SECONDS, **_cookie_args(rt)
        )
        response.delete_cookie(LOGIN_CSRF_COOKIE, path=COOKIE_PATH)
        return response

    @web.post("/logout")
    async def logout(rt: RuntimeDep, _: FormUserDep) -> Response:
        response = RedirectResponse("/adjuster/login", status_code=303)
        response.delete_cookie(SESSION_COOKIE, **_cookie_args(rt))
        return response

    @web.get("/", response_class=HTMLResponse)
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
            filters = queries.parse_filters(
                reason, min_amount, max_amount, date_from, date_to, status
            )
        except ValidationFailed as exc:
            filters, errors = queries.QueueFilters(), {exc.field or "filters": exc.message}
        else:
            errors = {}
        view = await run_in_threadpool(queries.review_queue, rt, filters)
        context = {"user": user, "view": view, "filters": raw, "errors": errors, "shown": filters}
        return page(request, "queue.html", context, 422 if errors else 200)

    @web.get("/claims/{claim_id}", response_class=HTMLResponse)
    async def claim_page(
        request: Request, claim_id: str, rt: RuntimeDep, user: UserDep
    ) -> HTMLResponse:
        return await _claim_page(request, rt, user, claim_id)

    @web.get("/claims/{claim_id}/photos/{photo_id}")
    async def photo(claim_id: str, photo_id: str, rt: RuntimeDep, _: UserDep) -> Response:
        sha, content_type = await run_in_threadpool(queries.photo_of, rt, claim_id, photo_id)
        data = await run_in_threadpool(rt.blobs.get, sha)
        return Response(data, media_type=content_type, headers=_private())

    @web.get("/claims/{claim_id}/photos/{photo_id}/overlay.jpg")
    async def overlay(claim_id: str, photo_id: str, rt: RuntimeDep, _: UserDep) -> Response:
        data = await run_in_threadpool(_overlay, rt, claim_id, photo_id)
        return Response(data, media_type="image/jpeg", headers=_private())

    _action_routes(web)


def _action_routes(web: FastAPI) -> None:
    damage = "/claims/{claim_id}/damages/{photo_id}/{index}"

    @web.post(damage + "/confirm")
    async def confirm(
        request: Request, claim_id: str, photo_id: str, index: int, user: FormUserDep
    ) -> Response:
        def change(assessment: Assessment) -> Edit:
            return corrections.confirm_damage(assessment, photo_id, index)

        return await _correct(request, user, claim_id, "finding.confirm", change, "d-" + photo_id)

    @web.post(damage + "/edit")
    async def edit(
        request: Request,
        claim_id: str,
        photo_id: str,
        index: int,
        user: FormUserDep,
        damage_type: Annotated[str, Form()] = "",
        severity: Annotated[str, Form()] = "",
        part: Annotated[str, Form()] = "",
    ) -> Response:
        def change(assessment: Assessment) -> Edit:
            fields = corrections.parse_fields(damage_type, severity, part)
            return corrections.edit_damage(assessment, photo_id, index, fields)

        return await _correct(request, user, claim_id, "finding.edit", change, "d-" + photo_id)

    @web.post(damage + "/delete")
    async def delete(
        request: Request, claim_id: str, photo_id: str, index: int, user: FormUserDep
    ) -> Response:
        def change(assessment: Assessment) -> Edit:
            return corrections.delete_damage(assessment, photo_id, index)

        return await _correct(request, user, claim_id, "finding.delete", change, "d-" + photo_id)

    @web.post("/claims/{claim_id}/damages/{photo_id}/add")
    async def add(
        request: Request,
        claim_id: str,
        photo_id: str,
        user: FormUserDep,
        damage_type: Annotated[str, Form()] = "",
        severity: Annotated[str, Form()] = "",
        part: Annotated[str, Form()] = "",
        shape: Annotated[str, Form()] = "",
    ) -> Response:
        def change(assessment: Assessment) -> Edit:
            fields = corrections.parse_fields(damage_type, severity, part)
            return corrections.add_damage(assessment, photo_id, fields, _json(shape))

        return await _correct(request, user, claim_id, "finding.add", change, "add-" + photo_id)

    @web.post("/claims/{claim_id}/operations")
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

    _decision_routes(web)


def _decision_routes(web: FastAPI) -> None:
    @web.post("/claims/{claim_id}/approve")
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

    @web.post("/claims/{claim_id}/reject")
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

    @web.post("/claims/{claim_id}/request-photos")
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
    except (ValidationFailed, CorrectionRefused) as exc:
        rt = runtime(request)
        return await _claim_page(request, rt, user, claim_id, {form_id: exc.message}, 422)
    return RedirectResponse(f"/adjuster/claims/{claim_id}#{form_id}", status_code=303)


async def _claim_page(
    request: Request,
    rt: Runtime,
    user: WebUser,
    claim_id: str,
    errors: dict[str, str] | None = None,
    status: int = 200,
) -> HTMLResponse:
    view = await run_in_threadpool(queries.claim_view, rt, claim_id)
    context = {
        "user": user,
        "view": view,
        "claim": view.claim,
        "body": view.body,
        "errors": errors or {},
        "editable": ClaimStatus(view.claim.status) in review.EDITABLE,
        "decidable": ClaimStatus(view.claim.status) in review.DECIDABLE,
        "overrides": view.body.get("operation_overrides", {}),
        "override_parts": sorted({f["part"] for f in view.body.get("findings", []) if f["part"]}),
        "operation_names": {o.value: o.value.replace("_", " ") for o in Operation},
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


def _safe_next(target: str) -> str:
    """Only paths inside the workspace: never an open redirect."""
    if target.startswith("/adjuster/") and not target.startswith("//"):
        return target
    return "/adjuster/"


def _login_form(
    request: Request, next: str, email: str, error: str, status: int = 200
) -> HTMLResponse:
    token = websession.secrets.token_urlsafe(24)
    context = {"next": _safe_next(next), "email": email, "error": error, "login_csrf": token}
    response = page(request, "login.html", context, status)
    response.set_cookie(LOGIN_CSRF_COOKIE, token, max_age=3600, **_cookie_args(runtime(request)))
    return response


def _error_pages(web: FastAPI) -> None:
    @web.exception_handler(NotSignedIn)
    async def not_signed_in(request: Request, exc: NotSignedIn) -> Response:
        if request.method == "GET":
            target = quote(
                request.url.path + (f"?{request.url.query}" if request.url.query else "")
            )
            return RedirectResponse(f"/adjuster/login?next={target}", status_code=303)
        return _error(request, 401, exc.message)

    @web.exception_handler(CdatError)
    async def domain_error(request: Request, exc: CdatError) -> Response:
        return _error(request, status_for(exc), exc.message)

    @web.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        message = {404: "There is no such page."}.get(exc.status_code, str(exc.detail))
        return _error(request, exc.status_code, message)

    @web.exception_handler(RequestValidationError)
    async def bad_request(request: Request, exc: RequestValidationError) -> Response:
        first = exc.errors()[0] if exc.errors() else {"msg": "invalid request"}
        return _error(request, 422, f"The request was not understood: {first['msg']}")


def _error(request: Request, status: int, message: str) -> HTMLResponse:
    context = {"status": status, "message": message}
    return templates.TemplateResponse(request, "error.html", context, status_code=status)
