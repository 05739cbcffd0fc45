"""One error root carrying its HTTP status, and one mapping from errors to responses."""

from __future__ import annotations

from typing import Any

import modelops_contract as contract


class ServiceError(Exception):
    """Root of every error the service answers with; carries its HTTP status code."""

    status_code = 500
    reason = "InternalError"

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class BadRequest(ServiceError):
    """The body cannot be read as JSON at all."""

    status_code = 400
    reason = "BadRequest"


class InvalidInput(ServiceError):
    """Valid JSON that does not match the model's input schema."""

    status_code = 422
    reason = "InvalidInput"


class PayloadTooLarge(ServiceError):
    """The body has more bytes or more rows than the configured limits."""

    status_code = 413
    reason = "PayloadTooLarge"


class InternalError(ServiceError):
    """A bug or an unexpected failure: answered as JSON with the request id, logged with its traceback."""

    status_code = 500
    reason = "InternalError"


class NotReady(ServiceError):
    """The models are not loaded yet (or failed to load)."""

    status_code = 503
    reason = "NotReady"


class ModelLoadError(ServiceError):
    """A model could not be loaded from the registry or the bento."""

    status_code = 503
    reason = contract.LOAD_FAILED  # what the operator looks for on a canary pod that is not ready


class NotFound(ServiceError):
    """No such model or version on this server (Open Inference Protocol paths)."""

    status_code = 404
    reason = "NotFound"


def error_body(error: ServiceError, v2: bool = False) -> dict[str, Any]:
    """The JSON document sent back for an error: on /predict {"error": kind, "message": ...}; on /v2 the
    Open Inference Protocol's error object, whose "error" is the message, with the kind as "reason"."""
    if v2:
        body: dict[str, Any] = {"error": error.message, "reason": error.reason}
    else:
        body = {"error": error.reason, "message": error.message}
    if error.field is not None:
        body["field"] = error.field
    return body
