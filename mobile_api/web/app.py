"""The adjuster workspace: server-rendered pages mounted at /adjuster on the API app.

    app.mount("/adjuster", create_web_app(app))

Only a signed-in staff user (cookie session) reaches any page or action here; bearer
tokens, the policyholder's claim token included, are never looked at. Every POST is a
form with a CSRF token. Errors render as HTML pages; form errors render inline.

This module builds the app, signs users in and out and renders errors; the claim pages
and actions are the flat router in `routes`, what they share is in `pages`.
"""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import quote

from fastapi import FastAPI, Form, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles

from mobile_api.errors import RateLimited
from mobile_api.runtime import Runtime
from mobile_api.web import routes
from mobile_api.web import session as websession
from mobile_api.web.headers import WorkspaceHeaders
from mobile_api.web.page_errors import install_page_errors
from mobile_api.web.pages import HERE, FormUserDep, RuntimeDep, page, runtime, templates
from mobile_api.web.session import (
    COOKIE_PATH,
    LOGIN_CSRF_COOKIE,
    SESSION_COOKIE,
    NotSignedIn,
)


def create_web_app(parent: FastAPI) -> FastAPI:
    web = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)
    web.state.parent = parent
    web.mount("/static", StaticFiles(directory=str(HERE / "static")), name="static")
    web.add_middleware(WorkspaceHeaders)
    _auth_routes(web)
    web.include_router(routes.router)
    _error_pages(web)
    return web


def _cookie_args(rt: Runtime) -> dict[str, Any]:
    return {"httponly": True, "secure": True, "samesite": "strict", "path": COOKIE_PATH}


def _auth_routes(web: FastAPI) -> None:
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
        throttle = request.app.state.parent.state.limits.signin
        try:  # counted before the password hash work, so concurrent guesses cannot overrun it
            await run_in_threadpool(throttle.attempt, client, email)
        except RateLimited as exc:
            refused = _login_form(request, next, email, exc.message, status=429)
            refused.headers["Retry-After"] = str(exc.retry_after)
            return refused
        try:
            token = await run_in_threadpool(websession.sign_in, rt, email, password)
        except websession.SignInFailed as exc:
            return _login_form(request, next, email, exc.message, status=401)
        await run_in_threadpool(throttle.succeeded, client, email)
        response = RedirectResponse(_safe_next(next), status_code=303)
        response.set_cookie(
            SESSION_COOKIE, token, max_age=websession.SESSION_SECONDS, **_cookie_args(rt)
        )
        response.delete_cookie(LOGIN_CSRF_COOKIE, path=COOKIE_PATH)
        return response

    @web.post("/logout")
    async def logout(request: Request, rt: RuntimeDep, _: FormUserDep) -> Response:
        await run_in_threadpool(websession.sign_out, rt, request.cookies.get(SESSION_COOKIE))
        response = RedirectResponse("/adjuster/login", status_code=303)
        response.delete_cookie(SESSION_COOKIE, **_cookie_args(rt))
        return response


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

    install_page_errors(web, _error)


def _error(request: Request, status: int, message: str, code: str = "error") -> HTMLResponse:
    # `code` is for the capture page's scripts; an adjuster reads the words.
    context = {"status": status, "message": message}
    return templates.TemplateResponse(request, "error.html", context, status_code=status)
