"""Message rules: what a valid message is, how a client retry is recognised, and who may edit, delete
or react."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal
from urllib.parse import quote

from schemas.api import MAX_CONTENT_CHARS, ROOM_MENTIONS, EditMessage, SendMessage
from schemas.errors import (
    Forbidden,
    IdempotencyKeyReused,
    MessageNotFound,
    MessageTooLong,
    MessageWasDeleted,
    NotMessageSender,
    ValidationError,
)
from schemas.events import Attachment, ForwardedFrom, MessageEdited, MessageSent, ReactionAdded, ReactionRemoved
from schemas.events import MessageDeleted as MessageDeletedEvent
from service.domain.authorization import Action, allowed
from service.domain.rooms import Actor, authorize_in_room


@dataclass(frozen=True)
class MessageState:
    """What the rules need to know about an existing message."""

    sender_id: str
    deleted: bool


# What the attachments of a typed message must be; `file` takes anything, `text` may carry attachments too.
_TYPE_PREFIX = {"image": "image/", "voice": "audio/"}


def decide_send(
    actor: str, cmd: SendMessage, message_id: str, *, attachments: Sequence[Attachment] = (),
    tenant_role: str = "member", forwarded_from: ForwardedFrom | None = None,
) -> MessageSent:
    """The event for a new message (a forwarded copy with `forwarded_from`); empty or over-long content, and a
    type its attachments do not fit, are refused.

    `attachments` are the confirmed media `cmd.attachments` names, in its order (the command loads them).
    """
    _check_content(cmd.content)
    check_message_type(cmd.type, attachments, tenant_role=tenant_role)
    return MessageSent(
        message_id=message_id, sender_id=actor, content=cmd.content, meta=cmd.meta, client_msg_id=cmd.client_msg_id,
        thread_id=cmd.thread_id, message_type=cmd.type, attachments=list(attachments),
        mentions=list(dict.fromkeys(cmd.mentions)), forwarded_from=forwarded_from,
    )


def check_message_type(message_type: str, attachments: Sequence[Attachment], *, tenant_role: str) -> None:
    """`system` is for tenant admins (and the service); image, voice and file messages need fitting attachments."""
    if message_type == "system" and tenant_role != "admin":
        raise Forbidden("only tenant admins and the service send system messages")
    if message_type in ("image", "voice", "file") and not attachments:
        raise ValidationError(f"a {message_type} message needs at least one attachment", field="attachments")
    prefix = _TYPE_PREFIX.get(message_type)
    if prefix and any(not a.content_type.startswith(prefix) for a in attachments):
        raise ValidationError(f"the attachments of a {message_type} message must be {prefix}*", field="attachments")


def check_attachable(wanted: Sequence[str], found: Sequence[str]) -> None:
    """Every media id named once, each a confirmed upload of the sender's own (`found`: those that are)."""
    if len(set(wanted)) != len(wanted):
        raise ValidationError("an attachment is named twice", field="attachments")
    missing = [m for m in wanted if m not in set(found)]
    if missing:
        raise ValidationError(f"{missing[0]} is not a confirmed upload of yours", field="attachments")


def mentions_user(mentions: list[str], user_id: str) -> bool:
    """Whether a message with these mentions mentions `user_id` (by id, or everyone by "@room" / "@here")."""
    return user_id in mentions or any(m in ROOM_MENTIONS for m in mentions)


def check_thread_root(thread_id: str, root_thread_id: str | None, *, found: bool) -> None:
    """A reply goes to a top-level message of the same room: threads are one level deep."""
    if not found:
        raise MessageNotFound("no such message in this room to reply to", field="thread_id")
    if root_thread_id is not None:
        raise ValidationError(f"{thread_id} is itself a reply: reply in its thread ({root_thread_id})",
                              field="thread_id")


def send_idempotency_key(actor: str, client_msg_id: str | None) -> str | None:
    """The append's idempotency key: a retry carries the same client_msg_id from the same sender.

    The sender is quoted so no (sender, id) pair can spell another's key ("a:b" + "c" vs "a" + "b:c").
    """
    return None if client_msg_id is None else f"msg:{quote(actor, safe='')}:{client_msg_id}"


def check_retry(first: MessageSent, cmd: SendMessage) -> None:
    """A retry repeats the first send: the same client_msg_id with other content, meta or thread is refused."""
    if (first.content, first.meta, first.thread_id, first.message_type, [a.media_id for a in first.attachments],
            first.mentions) != (cmd.content, cmd.meta, cmd.thread_id, cmd.type, cmd.attachments,
                                list(dict.fromkeys(cmd.mentions))):
        raise IdempotencyKeyReused("this client_msg_id was already used for a different message",
                                   field="client_msg_id")


def decide_edit(
    actor: Actor, room_role: str | None, message_id: str, message: MessageState | None, cmd: EditMessage
) -> MessageEdited:
    """Only the sender edits, a message that is not deleted, with content a new message could have."""
    authorize_in_room("message.edit", actor, room_role)
    _require_live(message)
    assert message is not None
    if message.sender_id != actor.user_id:
        raise NotMessageSender("only the sender may edit a message")
    _check_content(cmd.content)
    return MessageEdited(message_id=message_id, edited_by=actor.user_id, content=cmd.content)


def delete_action(actor: Actor, message: MessageState) -> Action:
    """Deleting one's own message is `message.delete`; anyone else's is moderation."""
    return "message.delete" if message.sender_id == actor.user_id else "message.moderate"


def membership_recheck(action: Action, actor: Actor, room_role: str | None) -> Literal["member", "admin"] | None:
    """The room role a change relies on, for the append to re-check under the room's lock.

    None when the caller's tenant role alone allows the action (a tenant admin moderating any room);
    "admin" when a room admin deletes someone else's message; "member" otherwise.
    """
    if allowed(action, actor.role, None) or room_role is None:
        return None
    return "admin" if action == "message.moderate" else "member"


def decide_delete(
    actor: Actor, room_role: str | None, message_id: str, message: MessageState | None
) -> list[MessageDeletedEvent]:
    """The sender, the room's admins and the tenant's admins delete; deleting twice records nothing more."""
    if message is None:
        # Only someone who could delete a message here learns that this one does not exist.
        if not (allowed("message.delete", actor.role, room_role) or allowed("message.moderate", actor.role, room_role)):
            authorize_in_room("message.delete", actor, room_role)
        raise MessageNotFound("no such message in this room", field="message_id")
    authorize_in_room(delete_action(actor, message), actor, room_role)
    if message.deleted:
        return []
    return [MessageDeletedEvent(message_id=message_id, deleted_by=actor.user_id)]


def decide_reaction(
    actor: Actor, room_role: str | None, message_id: str, message: MessageState | None, emoji: str, *,
    add: bool, reacted: bool,
) -> list[ReactionAdded | ReactionRemoved]:
    """Members react to messages that are not deleted; adding what is there (or removing what is not) is no event."""
    authorize_in_room("message.react", actor, room_role)
    _require_live(message)
    if add == reacted:
        return []
    if add:
        return [ReactionAdded(message_id=message_id, user_id=actor.user_id, emoji=emoji)]
    return [ReactionRemoved(message_id=message_id, user_id=actor.user_id, emoji=emoji)]


def _require_live(message: MessageState | None) -> None:
    if message is None:
        raise MessageNotFound("no such message in this room", field="message_id")
    if message.deleted:
        raise MessageWasDeleted("the message was deleted")


def _check_content(content: str) -> None:
    if not content.strip():
        raise ValidationError("content must not be empty", field="content")
    if len(content) > MAX_CONTENT_CHARS:
        raise MessageTooLong(f"content is longer than {MAX_CONTENT_CHARS} characters", field="content")
