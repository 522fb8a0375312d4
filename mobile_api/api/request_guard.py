"""Refusals that must come before a request body is read.

FastAPI reads and parses a body before it runs a route's dependencies, so a route cannot
refuse a stranger's 1.5 GB upload until it has been spooled to disk, nor a 200 MB JSON
document until it is in memory. This middleware answers first:

* a body over its limit gets 413: at once when Content-Length says so, else as soon as the
  bytes read pass the limit (Starlette's body-limit responder counts them);
* a photo upload is authenticated and authorised (401/403/404) before a byte is read.
"""

from __future__ import annotations

import re

from fastapi.concurrency import run_in_threadpool
from sqlalchemy.exc import InterfaceError, OperationalError
from starlette.datastructures import Headers
from starlette.middleware.body_limit import MAX_BODY_SIZE_SCOPE_KEY, RequestBodyLimitMiddleware
from starlette.requests import cookie_parser
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from cdat.settings import Settings
from mobile_api.api import claim_views
from mobile_api.api.routes.deps import bearer_token
from mobile_api.capture import access
from mobile_api.claims import service
from mobile_api.errors import ApiError, error_response

# Photo uploads, and replacements of one photo: the routes that take photo-sized bodies.
UPLOAD_PATH = re.compile(r"^/v1/claims/(?P<claim_id>[^/]+)/photos(/[^/]+)?/?$")
UPLOAD_METHODS = frozenset({"POST", "PUT"})
# The capture page's upload (mobile_api.capture): one photo, opened by a session cookie.
CAPTURE_UPLOAD_PATH = re.compile(r"^/capture/claim/photos/?$")


class RequestGuard:
    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.body_limit = settings.max_body_bytes
        self.upload_limit = settings.max_upload_request_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        upload = UPLOAD_PATH.match(scope["path"]) if scope["method"] in UPLOAD_METHODS else None
        if upload is not None:
            refusal = await _refuse_upload(scope, upload["claim_id"])
            if refusal is not None:
                await refusal(scope, receive, send)
                return
        capture = scope["method"] == "POST" and CAPTURE_UPLOAD_PATH.match(scope["path"])
        if capture:
            refusal = await _refuse_capture_upload(scope)
            if refusal is not None:
                await refusal(scope, receive, send)
                return
        limit = self.upload_limit if upload is not None or capture else self.body_limit
        if _declared_length(scope) > limit:
            scope[MAX_BODY_SIZE_SCOPE_KEY] = limit
            await too_large_response(scope)(scope, receive, send)
            return
        await RequestBodyLimitMiddleware(self.app, limit)(scope, receive, send)


def _declared_length(scope: Scope) -> int:
    try:
        return int(Headers(scope=scope).get("content-length") or 0)
    except ValueError:
        return 0


async def _refuse_upload(scope: Scope, claim_id: str) -> Response | None:
    """The answer a caller who may not upload to this claim gets, or None to go on."""
    rt = scope["app"].state.runtime
    token = bearer_token(Headers(scope=scope).get("authorization"))
    try:
        principal = await run_in_threadpool(service.authenticate, rt, token)
        service.authorize_claim(principal, claim_id)
        await run_in_threadpool(claim_views.claim_revision, rt, claim_id)
    except ApiError as exc:
        return error_response(exc.status, exc.code, exc.message, exc.field)
    except (OperationalError, InterfaceError):
        return database_unavailable_response()
    return None


async def _refuse_capture_upload(scope: Scope) -> Response | None:
    """As `_refuse_upload`, for the capture page: its session cookie, before the body."""
    rt = scope["app"].state.runtime
    cookies = cookie_parser(Headers(scope=scope).get("cookie", ""))
    try:
        who = await run_in_threadpool(access.claimant, rt, cookies.get(access.SESSION_COOKIE))
        await run_in_threadpool(claim_views.claim_revision, rt, who.claim_id)
    except ApiError as exc:
        return error_response(exc.status, exc.code, exc.message, exc.field)
    except (OperationalError, InterfaceError):
        return database_unavailable_response()
    return None


def database_unavailable_response() -> JSONResponse:
    message = "the database is unavailable; nothing was changed, retry shortly"
    return error_response(503, "database_unavailable", message, None, {"Retry-After": "5"})


def too_large_response(scope: Scope) -> JSONResponse:
    limit = scope.get(MAX_BODY_SIZE_SCOPE_KEY)
    message = f"the request body is over the {limit}-byte limit" if limit else "too large"
    return error_response(413, "payload_too_large", message)
