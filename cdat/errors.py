"""Domain exceptions. Each carries a stable machine-readable `code`."""

from __future__ import annotations


class CdatError(Exception):
    code = "cdat_error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidTransition(CdatError):
    code = "invalid_transition"


class ModelUnavailable(CdatError):
    """A model the assessment needs is not installed or cannot be loaded."""

    code = "model_unavailable"


class ConfigurationError(CdatError):
    code = "configuration_error"
