"""Staff API: a one-time capture link for a claim, to send to its claimant by SMS or e-mail,
and opening a claim with its link in one call (an insurer's system starting a claim)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from mobile_api.api import schemas
from mobile_api.api.routes.claims import ERRORS
from mobile_api.api.routes.deps import RuntimeDep, StaffDep, single_valued_query
from mobile_api.api.serialize import claim_created, new_claim
from mobile_api.auth import Principal
from mobile_api.capture import access
from mobile_api.claims import service

router = APIRouter(
    prefix="/v1/adjuster",
    tags=["adjuster"],
    dependencies=[Depends(single_valued_query)],
    responses={code: {"model": schemas.ErrorBody} for code in (401, 403, 404, 409, 422)},
)
ValidHours = Annotated[
    int,
    Query(ge=1, le=access.LINK_MAX_HOURS, description="How long the link may be redeemed."),
]


class CaptureLink(BaseModel):
    url: str = Field(description="Opens the claim's capture page once, on one device. Shown once.")
    expires_at: datetime


class ClaimWithLink(BaseModel):
    claim: schemas.ClaimCreated
    capture_link: CaptureLink


def _by(staff: Principal) -> str:
    return staff.display or staff.subject


async def _link(
    request: Request, rt: RuntimeDep, claim_id: str, by: str, hours: int
) -> CaptureLink:
    base = str(request.base_url)
    issued = await run_in_threadpool(access.issue_link, rt, base, claim_id, by, hours)
    return CaptureLink(url=issued.url, expires_at=issued.expires_at)


@router.post("/claims/{claim_id}/capture-link", status_code=201, response_model=CaptureLink)
async def create_capture_link(
    claim_id: str,
    request: Request,
    rt: RuntimeDep,
    staff: StaffDep,
    valid_hours: ValidHours = access.LINK_HOURS,
) -> CaptureLink:
    """A link that signs the claimant into this claim's capture page: it works once, on
    the first device that opens it, and expires after `valid_hours` (72 by default)."""
    return await _link(request, rt, claim_id, _by(staff), valid_hours)


@router.post("/claims", status_code=201, response_model=ClaimWithLink, responses=ERRORS)
async def open_claim_with_link(
    body: schemas.ClaimCreate,
    request: Request,
    rt: RuntimeDep,
    staff: StaffDep,
    valid_hours: ValidHours = access.LINK_HOURS,
    idempotency_key: Annotated[
        str | None,
        Header(
            alias="Idempotency-Key",
            description="A retry with the same key and body opens no second claim; it answers "
            "with the same claim and a new link (the first link's secret was never stored).",
        ),
    ] = None,
) -> JSONResponse:
    """Open a claim for a claimant and make its one-time capture link, in one call: the
    policyholder API's claim creation, then the link, as the two separate calls would."""
    status, created = await run_in_threadpool(
        service.create_claim, rt, new_claim(body), idempotency_key, claim_created
    )
    link = await _link(request, rt, created["id"], _by(staff), valid_hours)
    answer = {"claim": created, "capture_link": link.model_dump(mode="json")}
    return JSONResponse(answer, status_code=status)
