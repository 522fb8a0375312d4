"""Liveness and readiness."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text

from mobile_api.api.routes.deps import RuntimeDep
from mobile_api.runtime import Runtime

router = APIRouter(tags=["health"])


@router.get("/healthz")
async def liveness() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/metrics", include_in_schema=False)
async def metrics(request: Request) -> Response:
    registry = request.app.state.metrics.registry
    body = await run_in_threadpool(generate_latest, registry)
    return Response(body, media_type=CONTENT_TYPE_LATEST)


@router.get("/readyz")
async def readiness(rt: RuntimeDep) -> JSONResponse:
    checks = await run_in_threadpool(readiness_checks, rt)
    ready = all(check["ok"] for check in checks.values())
    return JSONResponse({"ready": ready, "checks": checks}, status_code=200 if ready else 503)


def readiness_checks(rt: Runtime) -> dict[str, dict[str, Any]]:
    return {
        "database": _check(lambda: _ping_db(rt)),
        "storage": _check(rt.blobs.check),
        "broker": _check(lambda: _ping_broker()),
        "models": _models(rt),
    }


def _check(probe: Any) -> dict[str, Any]:
    try:
        probe()
    except Exception as exc:
        return {"ok": False, "detail": f"{type(exc).__name__}: {exc}"}
    return {"ok": True}


def _ping_db(rt: Runtime) -> None:
    with rt.engine.connect() as connection:
        connection.execute(text("SELECT 1"))


def _ping_broker() -> None:
    from mobile_api.worker.celery_app import celery

    with celery.connection_for_write() as connection:
        connection.ensure_connection(max_retries=1, timeout=2)


def _models(rt: Runtime) -> dict[str, Any]:
    reason = rt.try_load_analyzer()
    if reason:
        return {"ok": False, "detail": reason}
    return {"ok": True, "versions": rt.analyzer().model_versions}
