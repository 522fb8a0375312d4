"""The capture page's app, mounted at /capture on the API app:

    app.mount("/capture", create_capture_app(app))

It shares the API's runtime, rate limits and photo-check pool (`parent.state`) and the
workspace's security headers. Only a capture session cookie opens a claim here; bearer
tokens are never read. Errors are pages, or JSON for the page's scripts.
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, Response
from fastapi.staticfiles import StaticFiles

from mobile_api.capture import claim, entry
from mobile_api.capture.access import NotSignedIn
from mobile_api.capture.pages import HERE, error
from mobile_api.capture.strings import t
from mobile_api.web.headers import WorkspaceHeaders
from mobile_api.web.page_errors import install_page_errors


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

    install_page_errors(capture, error)
