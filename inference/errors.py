"""Exceptions of the inference package."""

from __future__ import annotations

from cdat.errors import CdatError, ModelUnavailable

__all__ = ["InferenceError", "ModelUnavailable", "RegistryError", "UnreadableImage"]


class InferenceError(CdatError):
    code = "inference_error"


class RegistryError(InferenceError):
    code = "registry_error"


class UnreadableImage(InferenceError):
    code = "unreadable_image"
