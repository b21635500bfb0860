"""Message rules: what a valid message is, and how a client retry is recognised."""

from __future__ import annotations

from urllib.parse import quote

from schemas.api import MAX_CONTENT_CHARS, SendMessage
from schemas.errors import MessageTooLong, ValidationError
from schemas.events import MessageSent


def decide_send(actor: str, cmd: SendMessage, message_id: str) -> MessageSent:
    """The event for a new message; empty or over-long content is refused."""
    if not cmd.content.strip():
        raise ValidationError("content must not be empty", field="content")
    if len(cmd.content) > MAX_CONTENT_CHARS:
        raise MessageTooLong(f"content is longer than {MAX_CONTENT_CHARS} characters", field="content")
    return MessageSent(
        message_id=message_id, sender_id=actor, content=cmd.content, meta=cmd.meta, client_msg_id=cmd.client_msg_id
    )


def send_idempotency_key(actor: str, client_msg_id: str | None) -> str | None:
    """The append's idempotency key: a retry carries the same client_msg_id from the same sender.

    The sender is quoted so no (sender, id) pair can spell another's key ("a:b" + "c" vs "a" + "b:c").
    """
    return None if client_msg_id is None else f"msg:{quote(actor, safe='')}:{client_msg_id}"
