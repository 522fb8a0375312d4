"""Adjuster API (staff credentials only)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query
from fastapi.concurrency import run_in_threadpool

from cdat.claims import ClaimStatus
from mobile_api.api import assessment_schemas, claim_views, schemas
from mobile_api.api.routes.claims import Version
from mobile_api.api.routes.deps import RuntimeDep, StaffDep, single_valued_query
from mobile_api.api.serialize import claim_summary
from mobile_api.claims import service

router = APIRouter(
    prefix="/v1/adjuster",
    tags=["adjuster"],
    dependencies=[Depends(single_valued_query)],
    responses={code: {"model": schemas.ErrorBody} for code in (401, 403, 404)},
)


@router.get("/claims", response_model=list[schemas.ClaimSummary])
async def list_claims(
    rt: RuntimeDep,
    _: StaffDep,
    status: ClaimStatus | None = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    # Bounded: an offset past the database's integer range is a 422, not a driver overflow (500).
    offset: Annotated[int, Query(ge=0, le=2**31 - 1)] = 0,
) -> list[schemas.ClaimSummary]:
    claims = await run_in_threadpool(service.list_claims, rt, status, limit, offset)
    return [claim_summary(claim) for claim in claims]


@router.get("/claims/{claim_id}", response_model=schemas.ClaimPublic)
async def get_claim(claim_id: str, rt: RuntimeDep, _: StaffDep) -> schemas.ClaimPublic:
    return await run_in_threadpool(claim_views.claim_public, rt, claim_id)


@router.get(
    "/claims/{claim_id}/assessments/{version}", response_model=assessment_schemas.AssessmentPublic
)
async def get_assessment(
    claim_id: str, version: Version, rt: RuntimeDep, _: StaffDep
) -> assessment_schemas.AssessmentPublic:
    return await run_in_threadpool(claim_views.assessment_version, rt, claim_id, version)
