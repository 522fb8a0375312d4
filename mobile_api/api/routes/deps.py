"""Request dependencies: the runtime and the caller's identity."""

from __future__ import annotations

import types
from collections.abc import Iterator
from typing import Annotated, Any, Union, get_args, get_origin

from fastapi import Depends, Header, Request
from fastapi.concurrency import run_in_threadpool

from mobile_api.auth import Principal
from mobile_api.claims import service
from mobile_api.errors import Forbidden, ValidationFailed
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


def single_valued_query(request: Request) -> None:
    """Refuse a one-valued query parameter given more than once. FastAPI would answer with
    the last value, so `?since_revision=1&since_revision=9` means whatever the client's
    URL builder happened to put last; the schema says one integer."""
    route = request.scope.get("route")
    dependant = getattr(route, "dependant", None)
    if dependant is None:
        return
    for param in _declared_query_params(dependant):
        if _takes_many(param.field_info.annotation):
            continue
        given = len(request.query_params.getlist(param.alias))
        if given > 1:
            raise ValidationFailed(
                f"{param.alias}: given more than once ({given} times); give it once",
                field=param.alias,
            )


def _declared_query_params(dependant: Any) -> Iterator[Any]:
    yield from dependant.query_params
    for sub in dependant.dependencies:
        yield from _declared_query_params(sub)


def _takes_many(annotation: object) -> bool:
    origin = get_origin(annotation)
    if origin in (Union, types.UnionType):
        return any(_takes_many(arg) for arg in get_args(annotation))
    return origin in (list, set, frozenset, tuple)
