"""Staff API: a one-time capture link for a claim, to send to its claimant by SMS or e-mail."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, Field

from mobile_api.api import schemas
from mobile_api.api.routes.deps import RuntimeDep, StaffDep, single_valued_query
from mobile_api.capture import access

router = APIRouter(
    prefix="/v1/adjuster",
    tags=["adjuster"],
    dependencies=[Depends(single_valued_query)],
    responses={code: {"model": schemas.ErrorBody} for code in (401, 403, 404, 422)},
)


class CaptureLink(BaseModel):
    url: str = Field(description="Opens the claim's capture page once, on one device. Shown once.")
    expires_at: datetime


@router.post("/claims/{claim_id}/capture-link", status_code=201, response_model=CaptureLink)
async def create_capture_link(
    claim_id: str,
    request: Request,
    rt: RuntimeDep,
    staff: StaffDep,
    valid_hours: Annotated[int, Query(ge=1, le=access.LINK_MAX_HOURS)] = access.LINK_HOURS,
) -> CaptureLink:
    """A link that signs the claimant into this claim's capture page: it works once, on
    the first device that opens it, and expires after `valid_hours` (72 by default)."""
    secret, expires = await run_in_threadpool(
        access.create_link, rt, claim_id, staff.display or staff.subject, valid_hours
    )
    # In the fragment: browsers never send it, so no server or proxy log holds the secret.
    url = str(request.base_url).rstrip("/") + f"/capture/link#{secret}"
    return CaptureLink(url=url, expires_at=expires)
