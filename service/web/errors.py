"""Turning every failure into the documented error body: {"success": false, "error": {code, message, field}}."""

from __future__ import annotations

import asyncpg
import structlog
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response

from eventstore.append import translate_database_error
from schemas.errors import ErrorBody, ErrorDetail, RoomlogError
from service.web.request import JSON

log = structlog.get_logger("roomlog.errors")

# nginx's status for a client that closed the connection before the answer (no HTTP status fits).
CLIENT_DISCONNECTED = 499

_HTTP_CODES = {404: "NOT_FOUND", 405: "METHOD_NOT_ALLOWED", 400: "VALIDATION_ERROR", 413: "PAYLOAD_TOO_LARGE"}


def error_response(status: int, code: str, message: str, field: str | None = None) -> Response:
    """A response carrying the documented error body."""
    return JSON(ErrorBody(error=ErrorDetail(code=code, message=message, field=field)), status_code=status)


async def roomlog_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RoomlogError)
    retry_after = exc.extra.get("retry_after")  # a 429's wait in whole seconds
    headers = {"Retry-After": str(retry_after)} if retry_after is not None else None
    return JSON(exc.body(), status_code=exc.status, headers=headers)


async def http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    code = _HTTP_CODES.get(exc.status_code, "HTTP_ERROR")
    return error_response(exc.status_code, code, str(exc.detail), None)


async def database_error(request: Request, exc: Exception) -> Response:
    """Database errors are translated at the boundary: bad text is the client's, the rest is ours."""
    translated = translate_database_error(exc)
    if isinstance(translated, RoomlogError):
        return await roomlog_error(request, translated)
    return await unexpected_error(request, exc)


async def client_disconnected(request: Request, exc: Exception) -> Response:
    # Nobody reads this answer; its status tells the access line what happened. Not an error of ours.
    return Response(status_code=CLIENT_DISCONNECTED)


async def unexpected_error(request: Request, exc: Exception) -> Response:
    # The cause goes to the log (type and traceback), never the request body or headers.
    log.error("unhandled error", path=request.url.path, exc_info=exc)
    return error_response(500, "INTERNAL_ERROR", "internal error")


EXCEPTION_HANDLERS = {
    RoomlogError: roomlog_error,
    ClientDisconnect: client_disconnected,
    HTTPException: http_error,
    asyncpg.PostgresError: database_error,
    asyncpg.InterfaceError: database_error,
    asyncpg.exceptions.InternalClientError: database_error,
    OSError: database_error,
    Exception: unexpected_error,
}
