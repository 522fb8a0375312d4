"""Errors as pages, shared by the adjuster workspace and the claimant's capture page.

Each app renders its own error page (`render`); what a failure means, its status and its
words, is decided here once, so the two kinds of page answer a bad request alike.
"""

from __future__ import annotations

from collections.abc import Callable

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from sqlalchemy.exc import DataError
from starlette.exceptions import HTTPException as StarletteHTTPException

from cdat.errors import CdatError
from mobile_api.errors import retry_after, status_for

RenderError = Callable[[Request, int, str, str], Response]
"""(request, status, message, code) -> the app's own error page."""

UNSTORABLE = "The form holds a character that cannot be stored."
NO_SUCH_PAGE = "There is no such page."


def validation_message(exc: RequestValidationError) -> str:
    """The first problem, naming the field it is in (a form field, or the query's)."""
    first = exc.errors()[0] if exc.errors() else {"msg": "invalid request", "loc": ()}
    field = ".".join(str(p) for p in first.get("loc", ()) if p not in ("body", "query"))
    return f"{field or 'request'}: {first['msg']}"


def install_page_errors(app: FastAPI, render: RenderError) -> None:
    @app.exception_handler(CdatError)
    async def domain_error(request: Request, exc: CdatError) -> Response:
        response = render(request, status_for(exc), exc.message, exc.code)
        wait = retry_after(exc, response.status_code)
        if wait:
            response.headers["Retry-After"] = wait
        return response

    @app.exception_handler(DataError)
    async def unstorable(request: Request, exc: DataError) -> Response:
        # A form value the database refuses, such as a NUL in text on PostgreSQL.
        return render(request, 422, UNSTORABLE, "unstorable_value")

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        message = NO_SUCH_PAGE if exc.status_code == 404 else str(exc.detail)
        return render(request, exc.status_code, message, "error")

    @app.exception_handler(RequestValidationError)
    async def bad_request(request: Request, exc: RequestValidationError) -> Response:
        return render(request, 422, validation_message(exc), "validation_error")
