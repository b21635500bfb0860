"""Turning every failure into the documented error body: {"success": false, "error": {code, message, field}}."""

from __future__ import annotations

import structlog
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from schemas.errors import ErrorBody, ErrorDetail, RoomlogError
from service.http import JSON

log = structlog.get_logger("roomlog.errors")

_HTTP_CODES = {404: "NOT_FOUND", 405: "METHOD_NOT_ALLOWED", 400: "VALIDATION_ERROR", 413: "PAYLOAD_TOO_LARGE"}


def error_response(status: int, code: str, message: str, field: str | None = None) -> Response:
    """A response carrying the documented error body."""
    return JSON(ErrorBody(error=ErrorDetail(code=code, message=message, field=field)), status_code=status)


async def roomlog_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RoomlogError)
    return JSON(exc.body(), status_code=exc.status)


async def http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    code = _HTTP_CODES.get(exc.status_code, "HTTP_ERROR")
    return error_response(exc.status_code, code, str(exc.detail), None)


async def unexpected_error(request: Request, exc: Exception) -> Response:
    # The cause goes to the log (type and traceback), never the request body or headers.
    log.error("unhandled error", path=request.url.path, exc_info=exc)
    return error_response(500, "INTERNAL_ERROR", "internal error")


EXCEPTION_HANDLERS = {
    RoomlogError: roomlog_error,
    HTTPException: http_error,
    Exception: unexpected_error,
}
