"""The FastAPI application: policyholder API under /v1, adjuster API, health endpoints."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DataError, InterfaceError, OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException

from cdat.errors import CdatError
from cdat.settings import Settings
from mobile_api import runtime as runtime_module
from mobile_api.api.docs import install_docs
from mobile_api.api.hardening import Hardening
from mobile_api.api.observability import Metrics, timing_middleware
from mobile_api.api.photo_checks import PhotoChecks
from mobile_api.api.ratelimit import Limits
from mobile_api.api.request_guard import (
    RequestGuard,
    database_unavailable_response,
    too_large_response,
)
from mobile_api.api.routes import adjuster, claims, health
from mobile_api.capture import staff as capture_staff
from mobile_api.capture.app import create_capture_app
from mobile_api.errors import error_response, retry_after, status_for
from mobile_api.runtime import Runtime
from mobile_api.web.app import create_web_app
from mobile_api.worker.celery_app import configure_celery

log = logging.getLogger("cdat.api")


def create_app(settings: Settings, rt: Runtime | None = None) -> FastAPI:
    settings.check_production_ready()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        active = rt or Runtime.build(settings)
        runtime_module.install(active)
        configure_celery(settings)
        app.state.runtime = active
        metrics.watch(active)
        # Load the models now, once, rather than on the first request that needs them.
        missing = await run_in_threadpool(active.try_load_analyzer)
        if missing:
            log.warning("serving without models, assessments will fail: %s", missing)
        yield
        if rt is None:
            active.dispose()

    app = FastAPI(
        title="CDAT claim assessment API",
        version="1.0",
        description="Open a claim, upload photos, get an explainable damage assessment.",
        lifespan=lifespan,
        docs_url=None,  # served from local assets by install_docs
        redoc_url=None,
    )
    metrics = Metrics()
    app.state.metrics = metrics
    app.state.limits = Limits(settings)
    app.state.photo_checks = PhotoChecks(settings.photo_check_workers, settings.photo_check_queue)
    app.middleware("http")(timing_middleware(metrics))
    app.add_middleware(RequestGuard, settings=settings)
    docs = frozenset(p for p in (app.docs_url, app.redoc_url, app.openapi_url) if p)
    app.add_middleware(Hardening, settings=settings, docs_paths=docs)
    app.include_router(claims.router)
    app.include_router(adjuster.router)
    app.include_router(capture_staff.router)
    app.include_router(health.router)
    app.mount("/adjuster", create_web_app(app))
    app.mount("/capture", create_capture_app(app))
    install_docs(app)
    _install_error_handlers(app)
    return app


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(CdatError)
    async def domain_error(request: Request, exc: CdatError) -> JSONResponse:
        status = status_for(exc)
        if request.method == "POST" and request.url.path.endswith("/photos") and status < 500:
            request.app.state.metrics.photos_rejected.labels(exc.code).inc()
        wait = retry_after(exc, status)
        headers = {"Retry-After": wait} if wait else None
        field = getattr(exc, "field", None)
        return error_response(status, exc.code, exc.message, field, headers)

    @app.exception_handler(OperationalError)
    @app.exception_handler(InterfaceError)
    async def database_unavailable(_: Request, exc: Exception) -> JSONResponse:
        # A restarting or unreachable database is transient: a 503 the app retries, not a 500.
        return database_unavailable_response()

    @app.exception_handler(DataError)
    async def unstorable_value(_: Request, exc: DataError) -> JSONResponse:
        # A value the database refuses (a NUL in text on PostgreSQL) that no schema caught.
        message = "a value in the request cannot be stored (a control character in text?)"
        return error_response(422, "validation_error", message)

    @app.exception_handler(RequestValidationError)
    async def validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {"loc": (), "msg": "invalid request"}
        field = ".".join(str(part) for part in first["loc"] if part not in ("body",)) or None
        message = f"{field}: {first['msg']}" if field else str(first["msg"])
        return error_response(422, "validation_error", message, field)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 413:
            return too_large_response(request.scope)
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return error_response(exc.status_code, code, str(exc.detail))
