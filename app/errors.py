"""The service's expected conditions, each with its HTTP status and machine code (API.md).

Plain exceptions, importable without FastAPI: the use cases raise them, and so the record model
(app/bulk/record_model.py) and the bulk jobs can run the use cases outside the service. app/error_handlers.py
turns them into the one error envelope.
"""

from __future__ import annotations

from typing import Any

from model_registry.contract import FieldError


class ServiceError(Exception):
    """An expected condition a client is told about; never a 500."""

    status_code = 400
    code = "bad_request"

    def __init__(self, message: str, details: list[dict[str, Any]] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details or []


class Unauthorized(ServiceError):
    status_code, code = 401, "unauthorized"


class Forbidden(ServiceError):
    status_code, code = 403, "forbidden"


class NotFound(ServiceError):
    status_code, code = 404, "not_found"


class InvalidRecords(ServiceError):
    status_code, code = 422, "validation_error"

    @classmethod
    def from_field_errors(cls, errors: list[FieldError]) -> InvalidRecords:
        details = [{"path": e.path, "message": e.message} for e in errors]
        return cls(f"{len(errors)} field(s) are invalid", details)


class BatchTooLarge(ServiceError):
    status_code, code = 413, "batch_too_large"


class ModelNotLoaded(ServiceError):
    status_code, code = 503, "model_not_loaded"


class VersionRefusedError(ServiceError):
    """A version failed to load or to score its stored example; the previous one keeps serving."""

    status_code, code = 409, "model_version_refused"


class RegistryUnreachableError(ServiceError):
    """The registry cannot be read now; what is loaded keeps serving."""

    status_code, code = 503, "registry_unavailable"


class DatabaseUnavailable(ServiceError):
    """The database is down, refuses connections, or did not answer in time: retry, not a bug."""

    status_code, code = 503, "database_unavailable"
