"""The capture page's app, mounted at /capture on the API app:

    app.mount("/capture", create_capture_app(app))

It shares the API's runtime, rate limits and photo-check pool (`parent.state`) and the
workspace's security headers. Only a capture session cookie opens a claim here; bearer
tokens are never read. Errors are pages, or JSON for the page's scripts.
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, Response
from fastapi.staticfiles import StaticFiles
from sqlalchemy.exc import DataError
from starlette.exceptions import HTTPException as StarletteHTTPException

from cdat.errors import CdatError
from mobile_api.capture import claim, entry
from mobile_api.capture.access import NotSignedIn
from mobile_api.capture.pages import HERE, error
from mobile_api.capture.strings import t
from mobile_api.errors import retry_after, status_for
from mobile_api.web.headers import WorkspaceHeaders


def create_capture_app(parent: FastAPI) -> FastAPI:
    capture = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)
    capture.state.parent = parent
    # The API's own limits and photo-check pool, so the page costs what the API costs.
    capture.state.limits = parent.state.limits
    capture.state.photo_checks = parent.state.photo_checks
    capture.mount("/static", StaticFiles(directory=str(HERE / "static")), name="static")
    capture.add_middleware(WorkspaceHeaders)

    @capture.get("/sw.js", include_in_schema=False)
    async def service_worker() -> Response:
        # Served from /capture/ (not /static/) so that its scope is the whole page.
        headers = {"Cache-Control": "no-cache"}
        script = HERE / "static" / "sw.js"
        return FileResponse(script, media_type="text/javascript", headers=headers)

    capture.include_router(entry.router)
    capture.include_router(claim.router)
    _errors(capture)
    return capture


def _errors(capture: FastAPI) -> None:
    @capture.exception_handler(NotSignedIn)
    async def not_signed_in(request: Request, exc: NotSignedIn) -> Response:
        return error(request, 401, t("not_signed_in"), exc.code)

    @capture.exception_handler(CdatError)
    async def domain_error(request: Request, exc: CdatError) -> Response:
        response = error(request, status_for(exc), exc.message, exc.code)
        wait = retry_after(exc, response.status_code)
        if wait:
            response.headers["Retry-After"] = wait
        return response

    @capture.exception_handler(DataError)
    async def unstorable(request: Request, exc: DataError) -> Response:
        return error(request, 422, "The form holds a character that cannot be stored.")

    @capture.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        message = {404: "There is no such page."}.get(exc.status_code, str(exc.detail))
        return error(request, exc.status_code, message)

    @capture.exception_handler(RequestValidationError)
    async def bad_request(request: Request, exc: RequestValidationError) -> Response:
        first = exc.errors()[0] if exc.errors() else {"msg": "invalid request", "loc": ()}
        field = ".".join(str(p) for p in first.get("loc", ()) if p not in ("body", "query"))
        return error(request, 422, f"{field or 'request'}: {first['msg']}", "validation_error")
