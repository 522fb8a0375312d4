"""Service exceptions and the one place that maps them to HTTP status codes."""

from __future__ import annotations

from starlette.responses import JSONResponse

from cdat.corrections import CorrectionRefused, UnknownFinding
from cdat.errors import CdatError, ConfigurationError, InvalidTransition, ModelUnavailable
from mobile_api.queues.webhooks import WebhookRejected


class ApiError(CdatError):
    """An error a client caused or must know about; `status` is set by subclasses."""

    status = 400

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class Unauthenticated(ApiError):
    status = 401
    code = "unauthenticated"


class Forbidden(ApiError):
    status = 403
    code = "forbidden"


class NotFound(ApiError):
    status = 404
    code = "not_found"


class Conflict(ApiError):
    status = 409
    code = "conflict"


class TooManyPhotos(ApiError):
    status = 409
    code = "too_many_photos"


class PayloadTooLarge(ApiError):
    status = 413
    code = "payload_too_large"


class UnsupportedMediaType(ApiError):
    status = 415
    code = "unsupported_media_type"


class InvalidImage(ApiError):
    status = 422
    code = "invalid_image"


class ImageTooLarge(ApiError):
    status = 422
    code = "image_too_many_pixels"


class ImageTooSmall(ApiError):
    status = 422
    code = "image_too_small"


class ValidationFailed(ApiError):
    status = 422
    code = "validation_error"


class RateLimited(ApiError):
    status = 429
    code = "rate_limited"

    def __init__(self, message: str, *, retry_after: int = 60, field: str | None = None) -> None:
        super().__init__(message, field=field)
        self.retry_after = retry_after
        """Seconds until the limit lets the caller in again: the `Retry-After` header."""


class ServiceUnavailable(ApiError):
    status = 503
    code = "service_unavailable"


class StorageError(CdatError):
    code = "storage_unavailable"


class BrokerUnavailable(CdatError):
    code = "broker_unavailable"


STATUS_BY_DOMAIN_ERROR: dict[type[CdatError], int] = {
    WebhookRejected: 422,
    InvalidTransition: 409,
    CorrectionRefused: 422,
    UnknownFinding: 404,
    ModelUnavailable: 503,
    ConfigurationError: 500,
    StorageError: 503,
    BrokerUnavailable: 503,
}


def retry_after(error: CdatError, status: int) -> str | None:
    """The `Retry-After` header of an error: a limit's own wait, else 5 s for a 503."""
    if isinstance(error, RateLimited):
        return str(error.retry_after)
    return "5" if status == 503 else None


def status_for(error: CdatError) -> int:
    if isinstance(error, ApiError):
        return error.status
    for cls in type(error).__mro__:
        if cls in STATUS_BY_DOMAIN_ERROR:
            return STATUS_BY_DOMAIN_ERROR[cls]
    return 500


def error_response(
    status: int,
    code: str,
    message: str,
    field: str | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    body = {"error": {"code": code, "message": message, "field": field}}
    return JSONResponse(body, status_code=status, headers=headers)
