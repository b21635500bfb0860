"""One error tree: every failure a client can see carries a stable code, an HTTP status and maybe a field."""

from __future__ import annotations

from typing import Any

import msgspec


class ErrorDetail(msgspec.Struct, omit_defaults=True):
    code: str
    message: str
    field: str | None = None
    room_id: str | None = None
    allowed: list[str] | None = None  # INVALID_TRANSITION: the actions the resource accepts now


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
                code=self.code, message=self.message, field=self.field, room_id=self.extra.get("room_id"),
                allowed=self.extra.get("allowed"),
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


class RoomWasDeleted(Conflict):
    """The room was deleted for everyone: it takes no more writes."""

    code = "ROOM_DELETED"


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


class PollsFull(Unavailable):
    """This instance holds as many waiting polls as it may (poll_max_waiting): retry, maybe elsewhere."""

    code = "POLLS_FULL"


class TooManyPolls(RateLimited):
    """The caller already has poll_max_per_user polls waiting on this instance."""

    code = "TOO_MANY_POLLS"


class PostingRestricted(Forbidden):
    code = "POSTING_RESTRICTED"


class NotRoomAdmin(Forbidden):
    code = "NOT_ROOM_ADMIN"


class MessageNotFound(NotFound):
    code = "MESSAGE_NOT_FOUND"


class NotMessageSender(Forbidden):
    code = "NOT_MESSAGE_SENDER"


class MessageWasDeleted(Conflict):
    """The message was deleted: it can no longer be edited or reacted to."""

    code = "MESSAGE_DELETED"


class IdempotencyKeyReused(Conflict):
    """A client_msg_id the sender already used came with a different message."""

    code = "IDEMPOTENCY_KEY_REUSED"


# Errors of identity, tenants, webhooks and dead letters.


class EmailTaken(Conflict):
    code = "EMAIL_TAKEN"


class SessionRequired(Forbidden):
    """The operation acts on a login session, so it needs a bearer access token, not an API key."""

    code = "SESSION_REQUIRED"


class WrongPassword(Forbidden):
    """The current password given to change-password is wrong (403: the caller is authenticated)."""

    code = "WRONG_PASSWORD"


class UserNotFound(NotFound):
    code = "USER_NOT_FOUND"


class UserExists(Conflict):
    code = "USER_EXISTS"


class LastAdmin(Conflict):
    code = "LAST_ADMIN"


class CannotBlockSelf(ValidationError):
    code = "CANNOT_BLOCK_SELF"


class RoleTooHigh(Forbidden):
    code = "ROLE_TOO_HIGH"


class ApiKeyNotFound(NotFound):
    code = "API_KEY_NOT_FOUND"


class WebhookNotFound(NotFound):
    code = "WEBHOOK_NOT_FOUND"


class DeadLetterNotFound(NotFound):
    code = "DEAD_LETTER_NOT_FOUND"


class TenantNotFound(NotFound):
    code = "TENANT_NOT_FOUND"


class Blocked(Forbidden):
    code = "BLOCKED"


class NotTenantAdmin(Forbidden):
    code = "NOT_TENANT_ADMIN"


class NotPlatformAdmin(Forbidden):
    code = "NOT_PLATFORM_ADMIN"


class ImportRefused(RoomlogError):
    """An export file that cannot be imported (format, checksum, counts, seqs, or the tenant's state)."""

    code = "IMPORT_REFUSED"
    status = 400


# Errors of the support desk.


class NoAgentsAvailable(ValidationError):
    """The tenant refuses new support sessions while no eligible agent is online (rather than queueing)."""

    code = "NO_AGENTS_AVAILABLE"


class SessionNotFound(NotFound):
    code = "SESSION_NOT_FOUND"


class SessionClosed(Conflict):
    """The support session has ended: it takes no more messages or changes."""

    code = "SESSION_CLOSED"


class InvalidTransition(Conflict):
    """The session's status does not allow this action; `allowed` lists the ones it does."""

    code = "INVALID_TRANSITION"


class TicketNotFound(NotFound):
    code = "TICKET_NOT_FOUND"


class TicketClosed(Conflict):
    """The ticket is closed, which is final: it takes no more changes or comments (open a follow-up)."""

    code = "TICKET_CLOSED"


class TeamNotFound(NotFound):
    code = "TEAM_NOT_FOUND"


class AgentNotFound(NotFound):
    code = "AGENT_NOT_FOUND"


class QuickActionNotFound(NotFound):
    code = "QUICK_ACTION_NOT_FOUND"


class QuickActionExists(Conflict):
    code = "QUICK_ACTION_EXISTS"


class QuickActionInProgress(Conflict):
    """An execute with this idempotency key was recorded but has not finished (or was interrupted)."""

    code = "QUICK_ACTION_IN_PROGRESS"


class QuickActionFailed(RoomlogError):
    """The integrator's endpoint refused the action, or could not be reached; the failure is recorded."""

    code = "QUICK_ACTION_FAILED"
    status = 502


class ArticleNotFound(NotFound):
    """No such knowledge-base article in this tenant (or, for a customer, none published)."""

    code = "ARTICLE_NOT_FOUND"


class AlreadyRated(Conflict):
    code = "ALREADY_RATED"


class TeamExists(Conflict):
    code = "TEAM_EXISTS"
class MediaNotFound(NotFound):
    code = "MEDIA_NOT_FOUND"


class MediaTypeNotAllowed(ValidationError):
    """The content type is not among the tenant's allowed types."""

    code = "MEDIA_TYPE_NOT_ALLOWED"


class MediaTooLarge(ValidationError):
    """The declared size is above the tenant's largest file."""

    code = "MEDIA_TOO_LARGE"


class MediaQuotaExceeded(RoomlogError):
    """The upload would take the tenant's stored bytes above its quota."""

    code = "MEDIA_QUOTA_EXCEEDED"
    status = 413


class MediaTypeMismatch(ValidationError):
    """The uploaded bytes are not of the content type that was declared."""

    code = "MEDIA_TYPE_MISMATCH"


class MediaSizeMismatch(ValidationError):
    """The uploaded object is missing or not of the declared size."""

    code = "MEDIA_SIZE_MISMATCH"


class MediaImageTooLarge(ValidationError):
    """An image with more pixels than the service decodes (a decompression bomb, or just too big)."""

    code = "MEDIA_IMAGE_TOO_LARGE"


class MediaUploadExpired(RoomlogError):
    """The upload URL expired before the upload was confirmed."""

    code = "MEDIA_UPLOAD_EXPIRED"
    status = 410


class MediaNotPending(Conflict):
    """The upload was already confirmed or rejected."""

    code = "MEDIA_NOT_PENDING"


class MediaUnavailable(Unavailable):
    """The object store cannot be reached (or none is configured)."""

    code = "MEDIA_UNAVAILABLE"


class MediaChecksumMismatch(ValidationError):
    """The stored bytes do not have the sha256 the client confirmed."""

    code = "MEDIA_CHECKSUM_MISMATCH"


class MediaNotUploaded(Conflict):
    """Confirm came before the bytes: the upload stays pending, so the client may PUT and confirm again."""

    code = "MEDIA_NOT_UPLOADED"


class BotNotFound(NotFound):
    code = "BOT_NOT_FOUND"


class BotExists(Conflict):
    """The user id is taken: by a registered bot, or by a user who is not a bot."""

    code = "BOT_EXISTS"


class SlaCalendarNotFound(NotFound):
    code = "SLA_CALENDAR_NOT_FOUND"


class SlaPolicyNotFound(NotFound):
    code = "SLA_POLICY_NOT_FOUND"


class SlaCalendarInUse(Conflict):
    """A calendar that a live policy uses cannot be deleted."""

    code = "SLA_CALENDAR_IN_USE"
