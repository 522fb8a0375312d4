"""API schemas, in families per resource (Create / Public ...), separate from domain types."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    EmailStr,
    Field,
    HttpUrl,
    ValidationInfo,
    field_validator,
)

from cdat.claims import BodyType, ClaimStatus
from mobile_api.api.assessment_schemas import AssessmentPublic, RetakeRequestPublic
from mobile_api.claims.text import PRINTABLE_PATTERN, printable

Text = Annotated[
    str, AfterValidator(printable), Field(json_schema_extra={"pattern": PRINTABLE_PATTERN})
]


class ErrorDetail(BaseModel):
    code: str
    message: str
    field: str | None = None


class ErrorBody(BaseModel):
    error: ErrorDetail


class VehicleIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    make: Text = Field(min_length=1, max_length=64)
    model: Text = Field(min_length=1, max_length=64)
    year: int = Field(ge=1950, le=2100)
    body_type: BodyType
    vin: str | None = Field(default=None, pattern=r"^[A-HJ-NPR-Z0-9]{17}$")

    @field_validator("year")
    @classmethod
    def _model_year_exists(cls, value: int) -> int:
        # Model years run at most one ahead of the calendar.
        if value > date.today().year + 1:
            raise ValueError(f"model year {value} is later than next year")
        return value

    market_value: Decimal | None = Field(default=None, gt=0, max_digits=14, decimal_places=2)


class ContactIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Text = Field(min_length=1, max_length=128)
    email: EmailStr | None = None
    phone: str | None = Field(default=None, pattern=r"^\+?[0-9 ()-]{6,20}$")


class LocationIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # Strict: lax mode would read a JSON true as 1.0 and store a point the caller never sent.
    latitude: float = Field(ge=-90, le=90, strict=True)
    longitude: float = Field(ge=-180, le=180, strict=True)


class ClaimCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    policy_number: str = Field(min_length=3, max_length=64, pattern=r"^[A-Za-z0-9/_-]+$")
    loss_date: date
    description: Text = Field(default="", max_length=4000)
    vehicle: VehicleIn
    contact: ContactIn
    loss_location: LocationIn | None = None
    webhook_url: HttpUrl | None = None

    @field_validator("loss_date")
    @classmethod
    def _not_in_future(cls, value: date) -> date:
        if value > date.today():
            raise ValueError("loss_date cannot be in the future")
        return value

    @field_validator("vehicle")
    @classmethod
    def _existed_at_the_loss(cls, value: VehicleIn, info: ValidationInfo) -> VehicleIn:
        # A model year goes on sale in the year before it at the earliest.
        loss = info.data.get("loss_date")
        if loss is not None and loss < date(value.year - 1, 1, 1):
            raise ValueError(
                f"a model year {value.year} vehicle did not exist on the loss date {loss}: "
                "check the year or the loss date"
            )
        return value


class ClaimCreated(BaseModel):
    id: str
    status: ClaimStatus
    access_token: str = Field(description="Claim-scoped bearer token. Shown once: keep it.")
    webhook_secret: str | None = Field(
        default=None, description="HMAC key for webhook signatures. Shown once."
    )


class PhotoPublic(BaseModel):
    id: str
    sha256: str
    content_type: str
    size_bytes: int
    width: int
    height: int
    exif: dict[str, Any]
    filename: str
    created_at: datetime


class PhotoReplaced(BaseModel):
    replaced: str = Field(description="Id of the photo taken off the claim")
    photo: PhotoPublic


class PhotosUploaded(BaseModel):
    photos: list[PhotoPublic]
    duplicates: list[str] = Field(
        description="Ids of photos that were already on this claim (same bytes): stored once."
    )


class PhotoIssue(BaseModel):
    code: str = Field(description="blurry, underexposed, overexposed, too_small, compressed, "
                      "unreadable, "
                      "no_vehicle, not_whole_car, not_a_closeup, duplicate_photo, "
                      "captured_before_loss")  # fmt: skip
    message: str = Field(description="What to do about it, in plain words for the claimant")


class PhotoCheckPublic(BaseModel):
    """The quick check of one uploaded photo, run by the worker within a second or two."""

    photo_id: str
    shot: str = Field(description="The shot it was uploaded as (`extra` when none was named)")
    state: Literal["pending", "done", "failed"] = Field(
        description="failed: it could not be checked now; the assessment still checks it"
    )
    issues: list[PhotoIssue] = Field(description="Empty when the photo looks good")


class JobPublic(BaseModel):
    id: str
    state: str
    attempts: int
    error_code: str | None
    error_message: str | None
    created_at: datetime
    finished_at: datetime | None


class SubmitAccepted(BaseModel):
    claim_id: str
    job: JobPublic
    status: ClaimStatus


class AssessmentSummary(BaseModel):
    version: int
    job_id: str | None
    created_at: datetime


class Progress(BaseModel):
    stage: ClaimStatus
    message: str
    photos: int
    job: JobPublic | None


class ClaimBase(BaseModel):
    """What every view of a claim holds: the claim as filed, its photos and versions."""

    id: str
    status: ClaimStatus
    status_reason: str
    revision: int
    policy_number: str
    loss_date: date
    description: str
    vehicle: dict[str, Any]
    contact: dict[str, Any]
    loss_location: LocationIn | None
    webhook_url: str | None
    photos: list[PhotoPublic]
    assessment_versions: list[AssessmentSummary]
    retake_request: RetakeRequestPublic | None
    created_at: datetime
    updated_at: datetime


class ClaimPublic(ClaimBase):
    """The staff view of a claim: everything, fraud evidence and other claims included."""

    current_version: int | None = Field(
        default=None, description="The assessment version the status stands on"
    )
    progress: Progress
    assessment: AssessmentPublic | None


class ClaimSummary(BaseModel):
    id: str
    status: ClaimStatus
    policy_number: str
    review_priority: int
    estimate_total: Decimal | None
    created_at: datetime
    updated_at: datetime


# -- The policyholder's view: their claim in plain language, nothing about other claims,
# fraud rules or staff.


class PolicyholderJob(BaseModel):
    id: str
    state: str
    created_at: datetime
    finished_at: datetime | None


class PolicyholderProgress(BaseModel):
    stage: ClaimStatus
    message: str
    photos: int
    job: PolicyholderJob | None


class PolicyholderEstimateLine(BaseModel):
    part: str | None
    operation: str
    description: str
    total: Decimal


class PolicyholderEstimate(BaseModel):
    currency: str
    total: Decimal
    low: Decimal
    high: Decimal
    lines: list[PolicyholderEstimateLine]


class PolicyholderFinding(BaseModel):
    part: str | None
    damage_type: str
    severity: str
    to_confirm: bool = Field(
        description="the damage's type cannot be on this part (a broken lamp on a hood): an "
        "adjuster confirms which of the two is wrong"
    )
    severity_to_confirm: bool = Field(
        description="every photo showing it is a close-up, where the severity read is not yet "
        "reliable: an adjuster confirms how severe it is"
    )


class PolicyholderPhoto(BaseModel):
    photo_id: str
    usable: bool
    retake_hints: list[str]


class PolicyholderAssessment(BaseModel):
    version: int
    job_id: str | None
    created_at: datetime
    photo_ids: list[str]
    outcome: Literal["estimate", "under_review", "total_loss", "superseded"] = Field(
        description="'estimate': the amount below stands; 'under_review': an adjuster "
        "decides the amount; 'total_loss': repair may cost more than the car is worth; "
        "'superseded': an older version, kept for the record"
    )
    message: str
    estimate: PolicyholderEstimate | None = Field(description="Only when the outcome is 'estimate'")
    reasons: list[str] = Field(description="Why an adjuster looks at it, in plain words")
    close_up_wanted: bool = Field(
        default=False,
        description="No damage was found on photos of the whole car alone, where small damage "
        "is rarely seen: add a close-up of each damaged area and submit the claim again",
    )
    findings: list[PolicyholderFinding]
    photos: list[PolicyholderPhoto]


class PolicyholderClaim(ClaimBase):
    status_reason: str = Field(description="What the status means for you, in plain words")
    progress: PolicyholderProgress
    assessment: PolicyholderAssessment | None
