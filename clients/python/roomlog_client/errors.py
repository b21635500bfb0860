"""Typed errors: every error answer of the API becomes an `ApiError` subclass carrying its `code`."""

from __future__ import annotations

from typing import Any


class RoomlogError(Exception):
    """Anything this SDK raises."""


class ApiError(RoomlogError):
    """An error answer: `{"success": false, "error": {"code", "message", "field"?, …}}`.

    `details` is the whole `error` object, for the extra fields some codes carry (`room_id` of
    ROOM_EXISTS, `allowed` of INVALID_TRANSITION).
    """

    def __init__(self, status: int, code: str, message: str, field: str | None = None,
                 details: dict[str, Any] | None = None) -> None:
        super().__init__(f"{status} {code}: {message}" + (f" ({field})" if field else ""))
        self.status = status
        self.code = code
        self.message = message
        self.field = field
        self.details = details or {}


class BadRequest(ApiError):
    """400: the input was refused (`VALIDATION_ERROR`, `MESSAGE_TOO_LONG`, …); `field` names it."""


class AuthenticationFailed(ApiError):
    """401: no valid credentials."""


class PermissionDenied(ApiError):
    """403: authenticated but not allowed (`NOT_A_MEMBER`, `FORBIDDEN`, …)."""


class NotFound(ApiError):
    """404: no such thing in this tenant (another tenant's ids look the same)."""


class Conflict(ApiError):
    """409: the state does not allow it (`ROOM_EXISTS`, `MESSAGE_DELETED`, `INVALID_TRANSITION`, …)."""


class PayloadTooLarge(ApiError):
    """413."""


class RateLimited(ApiError):
    """429 that outlasted the client's retries; `retry_after` is the server's wait in seconds."""

    retry_after: float | None = None


class ServiceUnavailable(ApiError):
    """503 that outlasted the client's retries."""

    retry_after: float | None = None


_BY_STATUS: dict[int, type[ApiError]] = {
    400: BadRequest, 401: AuthenticationFailed, 403: PermissionDenied, 404: NotFound, 409: Conflict,
    413: PayloadTooLarge, 429: RateLimited, 503: ServiceUnavailable,
}


def api_error(status: int, body: Any, retry_after: float | None = None) -> ApiError:
    """The typed error for an error answer (a body that is not the documented format still gives one)."""
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict):
        error = {"code": "HTTP_ERROR", "message": str(body)[:200] or f"HTTP {status}"}
    kind = _BY_STATUS.get(status, ApiError)
    raised = kind(status, str(error.get("code", "HTTP_ERROR")), str(error.get("message", "")),
                  error.get("field"), error)
    if isinstance(raised, RateLimited | ServiceUnavailable):
        raised.retry_after = retry_after
    return raised


class ConnectionLost(RoomlogError):
    """The server could not be reached and the request was not safe to repeat (or retries ran out)."""
