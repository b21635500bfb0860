"""One error tree: every failure a client can see carries a stable code, an HTTP status and maybe a field."""

from __future__ import annotations

from typing import Any

import msgspec


class ErrorDetail(msgspec.Struct, omit_defaults=True):
    code: str
    message: str
    field: str | None = None
    room_id: str | None = None


class ErrorBody(msgspec.Struct, kw_only=True):
    success: bool = False
    error: ErrorDetail


class RoomlogError(Exception):
    """Base of every error roomlog reports to a client."""

    code = "INTERNAL_ERROR"
    status = 500

    def __init__(self, message: str, *, field: str | None = None, **extra: Any) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        self.extra = extra

    def body(self) -> ErrorBody:
        """The documented error body for this error."""
        return ErrorBody(
            error=ErrorDetail(
                code=self.code, message=self.message, field=self.field, room_id=self.extra.get("room_id")
            )
        )


class ValidationError(RoomlogError):
    code = "VALIDATION_ERROR"
    status = 400


class MessageTooLong(ValidationError):
    code = "MESSAGE_TOO_LONG"


class AuthenticationError(RoomlogError):
    code = "AUTHENTICATION_ERROR"
    status = 401


class Forbidden(RoomlogError):
    code = "FORBIDDEN"
    status = 403


class NotAMember(Forbidden):
    code = "NOT_A_MEMBER"


class NotFound(RoomlogError):
    code = "NOT_FOUND"
    status = 404


class RoomNotFound(NotFound):
    code = "ROOM_NOT_FOUND"


class Conflict(RoomlogError):
    code = "CONFLICT"
    status = 409


class RoomExists(Conflict):
    code = "ROOM_EXISTS"


class WrongExpectedSeq(Conflict):
    """The stream moved on since the caller read it (optimistic concurrency)."""

    code = "SEQ_CONFLICT"


class PayloadTooLarge(RoomlogError):
    code = "PAYLOAD_TOO_LARGE"
    status = 413


class RequestTimeout(RoomlogError):
    code = "REQUEST_TIMEOUT"
    status = 408


class RateLimited(RoomlogError):
    code = "RATE_LIMIT_EXCEEDED"
    status = 429


class Unavailable(RoomlogError):
    code = "SERVICE_UNAVAILABLE"
    status = 503


class PostingRestricted(Forbidden):
    code = "POSTING_RESTRICTED"


class NotRoomAdmin(Forbidden):
    code = "NOT_ROOM_ADMIN"


class MessageNotFound(NotFound):
    code = "MESSAGE_NOT_FOUND"


class NotMessageSender(Forbidden):
    code = "NOT_MESSAGE_SENDER"


class MessageDeleted(Conflict):
    """The message was deleted: it can no longer be edited or reacted to."""

    code = "MESSAGE_DELETED"


class IdempotencyKeyReused(Conflict):
    """A client_msg_id the sender already used came with a different message."""

    code = "IDEMPOTENCY_KEY_REUSED"
