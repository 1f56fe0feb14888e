"""Errors the service layer raises: what went wrong, in terms a client can act on, without HTTP.

Each carries a stable ``code`` (clients switch on it), a human ``message`` and structured
``details``. :mod:`app.api.errors` maps each class to its HTTP status; services and the
worker never import the web framework.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "ConflictError",
    "InvalidInputError",
    "NoActiveModelError",
    "NotFoundError",
    "OffNetworkError",
    "ServiceError",
    "TooLargeError",
    "TooManyRequestsError",
    "UnsupportedMediaTypeError",
    "field_error",
]


class ServiceError(Exception):
    """Base class: a request the service cannot carry out as asked."""

    default_code = "invalid_request"

    def __init__(self, message: str, details: Any = None, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details
        self.code = code or self.default_code


class InvalidInputError(ServiceError):
    """The input is malformed or out of range (HTTP 422)."""

    default_code = "invalid_input"


class OffNetworkError(InvalidInputError):
    """A point is farther from every road than the snap distance (HTTP 422)."""

    default_code = "point_off_network"


class NotFoundError(ServiceError):
    """No object with that id (HTTP 404); ``code`` is ``<what>_not_found``."""

    default_code = "not_found"

    @classmethod
    def of(cls, what: str, ident: object) -> NotFoundError:
        return cls(f"no {what} with id {ident}", {"id": ident}, f"{what}_not_found")


class ConflictError(ServiceError):
    """The request conflicts with the service's state (HTTP 409)."""

    default_code = "conflict"


class NoActiveModelError(ConflictError):
    """No model is active yet, so queries cannot be answered (HTTP 409)."""

    default_code = "no_active_model"

    def __init__(self) -> None:
        super().__init__("no model is active yet: post trips and train one (POST /v1/models), "
                         "or wait for the demo model")


class TooLargeError(ServiceError):
    """The input is over a configured limit (HTTP 413)."""

    default_code = "payload_too_large"


class TooManyRequestsError(ServiceError):
    """The service is at a capacity limit (e.g. queued jobs); try again after ``retry_after_s`` (HTTP 429)."""

    default_code = "too_many_requests"

    def __init__(self, message: str, details: Any = None, code: str | None = None, retry_after_s: int = 30) -> None:
        super().__init__(message, details, code)
        self.retry_after_s = retry_after_s


class UnsupportedMediaTypeError(ServiceError):
    """The upload's format cannot be told or is not supported (HTTP 415)."""

    default_code = "unsupported_media_type"


def field_error(field: str, message: str) -> InvalidInputError:
    """A ``validation_error`` naming one field, in the shape of the API's request validation errors."""
    return InvalidInputError(f"{field}: {message}", [{"field": field, "message": message}], "validation_error")
