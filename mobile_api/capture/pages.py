"""What the capture page's routes share: templates, the runtime, the signed-in claimant,
CSRF, and answers that are HTML for a page and JSON for the page's scripts."""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, JSONResponse, Response
from fastapi.templating import Jinja2Templates

from mobile_api.capture import access
from mobile_api.capture.strings import t
from mobile_api.runtime import Runtime
from mobile_api.web.session import check_csrf

HERE = Path(__file__).resolve().parent
templates = Jinja2Templates(directory=str(HERE / "templates"))
templates.env.globals["t"] = t


def runtime(request: Request) -> Runtime:
    rt: Runtime = request.app.state.parent.state.runtime
    return rt


RuntimeDep = Annotated[Runtime, Depends(runtime)]


async def signed_in(request: Request, rt: RuntimeDep) -> access.Claimant:
    token = request.cookies.get(access.SESSION_COOKIE)
    return await run_in_threadpool(access.claimant, rt, token)


ClaimantDep = Annotated[access.Claimant, Depends(signed_in)]


def csrf_for(rt: Runtime, who: access.Claimant) -> str:
    return access.csrf_token(rt.settings.secret_key, who.session_id)


async def checked_form(request: Request, rt: RuntimeDep, who: ClaimantDep) -> access.Claimant:
    """The claimant of a POST whose CSRF token (form field or header) matches the session."""
    sent: object = request.headers.get("X-CSRF-Token")
    if sent is None:
        sent = (await request.form()).get("csrf_token")
    check_csrf(csrf_for(rt, who), sent)
    return who


FormClaimantDep = Annotated[access.Claimant, Depends(checked_form)]


def wants_json(request: Request) -> bool:
    return "application/json" in request.headers.get("accept", "")


def page(request: Request, name: str, context: dict[str, Any], status: int = 200) -> HTMLResponse:
    return templates.TemplateResponse(request, name, context, status_code=status)


def start_csrf(response: Response, token: str) -> None:
    """The double-submit cookie of a form shown before there is a session."""
    response.set_cookie(access.START_CSRF_COOKIE, token, max_age=3600, **access.cookie_args())  # type: ignore[arg-type]


def new_start_csrf() -> str:
    return secrets.token_urlsafe(24)


def error(request: Request, status: int, message: str, code: str = "error") -> Response:
    if wants_json(request):
        return JSONResponse({"error": {"code": code, "message": message}}, status_code=status)
    signed_out = status == 401
    context = {"status": status, "message": message, "signed_out": signed_out}
    return page(request, "error.html", context, status)
