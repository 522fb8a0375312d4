"""Request dependencies: the runtime and the caller's identity."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Header, Request
from fastapi.concurrency import run_in_threadpool

from mobile_api import service
from mobile_api.auth import Principal
from mobile_api.errors import Forbidden
from mobile_api.runtime import Runtime


def get_runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]


def bearer_token(authorization: Annotated[str | None, Header()] = None) -> str | None:
    if not authorization:
        return None
    scheme, _, token = authorization.partition(" ")
    return token.strip() if scheme.lower() == "bearer" else None


async def get_principal(
    rt: RuntimeDep, token: Annotated[str | None, Depends(bearer_token)]
) -> Principal:
    return await run_in_threadpool(service.authenticate, rt, token)


PrincipalDep = Annotated[Principal, Depends(get_principal)]


async def require_staff(principal: PrincipalDep) -> Principal:
    if not principal.is_staff:
        raise Forbidden("adjuster credentials are required")
    return principal


StaffDep = Annotated[Principal, Depends(require_staff)]
