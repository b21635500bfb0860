"""Tenant webhooks and dead letters: request and response bodies, and their errors."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

import msgspec

WebhookEvent = Literal[
    "message.offline", "notification", "support.session_started", "support.session_ended", "support.escalation",
    "support.ticket_created", "support.ticket_updated",
    "support.sla_breach",
]
WebhookUrl = Annotated[str, msgspec.Meta(min_length=8, max_length=2048, pattern=r"^https?://[^\s/?#]+[^\s]*$")]
# Long enough to resist guessing; the receiver keeps it to check X-Roomlog-Signature.
WebhookSecret = Annotated[str, msgspec.Meta(min_length=16, max_length=256)]


class CreateWebhook(msgspec.Struct, forbid_unknown_fields=True):
    url: WebhookUrl
    events: Annotated[list[WebhookEvent], msgspec.Meta(min_length=1, max_length=10)]
    secret: WebhookSecret | None = None


class Webhook(msgspec.Struct):
    """A webhook as listed: never its secret."""

    webhook_id: str
    url: str
    events: list[str]
    created_at: datetime


class CreatedWebhook(msgspec.Struct):
    """The answer to POST /webhooks: the only response that shows the secret."""

    webhook_id: str
    url: str
    events: list[str]
    secret: str
    created_at: datetime


class FailedMessage(msgspec.Struct):
    """A message.offline delivery that ran out of attempts (seed 002), with the `id` to retry or discard it."""

    id: str
    message_id: str | None
    user_id: str
    room_id: str | None
    attempts: int
    last_attempt_at: datetime
    error: str


class FailedNotification(msgspec.Struct):
    """A notification delivery that ran out of attempts (seed 002), with the `id` to retry or discard it."""

    id: str
    notification_id: str | None
    topic: str | None
    attempts: int
    last_attempt_at: datetime
    error: str


class DeadLetters(msgspec.Struct):
    failed_messages: list[FailedMessage]
    failed_notifications: list[FailedNotification]


DeadLetterStatus = Literal["open", "retried", "discarded"]


